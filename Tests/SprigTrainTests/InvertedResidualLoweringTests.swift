// A MobileNet-style net built by hand (stem conv, an inverted residual with an identity shortcut,
// a stride-2 block without one, GAP, Dense; BatchNorm with random statistics) through
// loweringSteps and lowerNetwork: the f32 blob equals the trainer's eval forward, the q8 blob
// keeps the argmax, the depthwise op is quantized per channel on axis 2, and the layers'
// tensors round-trip through a checkpoint file.

import Foundation
import SprigCompile
import SprigRuntime
import SprigTestSupport
import SprigTrain
import XCTest

final class InvertedResidualLoweringTests: XCTestCase {
    var rng = SprigRNG(seed: 57)

    func bn(_ c: Int) -> BatchNorm2D {
        let b = BatchNorm2D(channels: c)
        for j in 0..<c {
            b.weight.value.storage[j] = 0.5 + rng.nextFloat()
            b.bias.value.storage[j] = rng.nextFloat() - 0.5
            b.runningMean.storage[j] = rng.nextFloat() - 0.5
            b.runningVariance.storage[j] = 0.2 + rng.nextFloat()
        }
        return b
    }

    func pointwise(_ cin: Int, _ cout: Int) -> Conv2D {
        Conv2D(inputChannels: cin, outputChannels: cout, kernelSize: 1, bias: false, rng: &rng)
    }

    func depthwise(_ c: Int, stride: Int) -> DepthwiseConv2D {
        DepthwiseConv2D(channels: c, kernelSize: 3, stride: stride, padding: 1, bias: false, rng: &rng)
    }

    /// stem 3×3 → 8 + BN + ReLU6; [1×1 8→24 + BN + ReLU6, dw 3×3 s1 + BN + ReLU6, 1×1 24→8 + BN] + x;
    /// 1×1 8→24 + BN + ReLU6, dw 3×3 s2 + BN + ReLU6, 1×1 24→12 + BN; GAP; Dense 12→5.
    func network(channels: Int) -> Sequential {
        let block = Residual(body: Sequential([
            pointwise(8, 24), bn(24), ReLU6(),
            depthwise(24, stride: 1), bn(24), ReLU6(),
            pointwise(24, 8), bn(8),
        ]), activation: .none)
        return Sequential([
            Conv2D(inputChannels: channels, outputChannels: 8, kernelSize: 3, padding: 1, bias: false, rng: &rng), bn(8), ReLU6(),
            block,
            Sequential([pointwise(8, 24), bn(24), ReLU6(), depthwise(24, stride: 2), bn(24), ReLU6(), pointwise(24, 12), bn(12)]),
            GlobalAveragePool(),
            Dense(inputDimensions: 12, outputDimensions: 5, rng: &rng),
        ])
    }

    let shapes = [(28, 28, 1), (8, 8, 1), (32, 32, 3)]
    let mean: Float = 0.3, std: Float = 0.4

    func images(_ count: Int, _ n: Int) -> [[UInt8]] {
        (0..<count).map { _ in (0..<n).map { _ in UInt8(rng.int(below: 256)) } }
    }

    func testCompiledF32MatchesTheTrainer() throws {
        for (h, w, c) in shapes {
            let net = network(channels: c)
            let builder = try lowerNetwork(loweringSteps(net), height: h, width: w, channels: c, name: "mobile", mean: mean, std: std)
            // The structure: two depthwise ops, ReLU6 fused five times, one Add without activation.
            let ops = builder.ops
            XCTAssertEqual(ops.filter { $0.opcode == .depthwiseConv2d }.count, 2)
            XCTAssertEqual(ops.filter { $0.activation == .relu6 }.count, 5)
            XCTAssertEqual(ops.filter { $0.opcode == .add }.map(\.activation), [.none])
            XCTAssertEqual(ops.count, 10)  // stem, 3 + 3 convs, add, GAP, dense
            let blob = try builder.build()
            let inputs = images(4, h * w * c)
            let outputs = try runBlob(blob, inputs)
            for (i, image) in inputs.enumerated() {
                let x = Tensor(shape: [1, h, w, c], storage: image.map { (Float($0) / 255 - mean) / std })
                let want = net.forward(x, training: false).storage
                let got = outputs[i]
                XCTAssertEqual(got.count, want.count)
                let scale = max(1, want.map { abs($0) }.max() ?? 0)
                let diff = zip(got, want).map { abs($0 - $1) }.max() ?? .infinity
                XCTAssertLessThan(diff / scale, 1e-5, "\(h)×\(w)×\(c) image \(i): max |diff| \(diff)")
            }
        }
    }

    func testQuantizedKeepsTheArgmax() throws {
        for (h, w, c) in shapes {
            let net = network(channels: c)
            let builder = try lowerNetwork(loweringSteps(net), height: h, width: w, channels: c, name: "mobile", mean: mean, std: std)
            let f32 = try builder.build()
            let samples = images(140, h * w * c)
            let ranges = try calibrate(blob: f32, samples: Array(samples[0..<40]))  // 40 keeps the debug run short
            let q8Builder = try quantizeNetwork(builder, ranges: ranges)
            XCTAssertEqual(q8Builder.ops.filter { $0.opcode == .depthwiseConv2d }.count, 2)
            let q8 = try q8Builder.build()
            let a = try runBlob(f32, Array(samples[40...])), b = try runBlob(q8, Array(samples[40...]))
            let agree = zip(a, b).filter { argmax($0) == argmax($1) }.count
            XCTAssertGreaterThanOrEqual(Double(agree) / 100, 0.9, "\(h)×\(w)×\(c): q8 agrees with f32 on \(agree)/100")
        }
    }

    /// The q8 depthwise weights: int8 `[3][3][C]`, one symmetric scale per channel (axis 2) of
    /// max|W[..][c]| / 127, and each value the rounded quotient, checked against the f32 blob's
    /// folded weights.
    func testDepthwiseIsQuantizedPerChannelOnAxis2() throws {
        let net = network(channels: 1)
        let builder = try lowerNetwork(loweringSteps(net), height: 8, width: 8, channels: 1, name: "mobile", mean: mean, std: std)
        let ranges = try calibrate(blob: try builder.build(), samples: images(20, 64))
        let q8 = try quantizeNetwork(builder, ranges: ranges)
        let f32Ops = builder.ops.filter { $0.opcode == .depthwiseConv2d }
        let q8Ops = q8.ops.filter { $0.opcode == .depthwiseConv2d }
        XCTAssertEqual(q8Ops.count, 2)
        for (fo, qo) in zip(f32Ops, q8Ops) {
            let wf = builder.tensors[fo.inputs[1]], wq = q8.tensors[qo.inputs[1]]
            XCTAssertEqual(wq.dtype, .i8)
            XCTAssertEqual(wq.shape, [3, 3, 24])
            XCTAssertEqual(wq.quantAxis, 2)
            XCTAssertEqual(wq.quant.count, 24)
            let real = floats(wf.data)
            let ints = wq.data.map { Int8(bitPattern: $0) }
            for ch in 0..<24 {
                var maxAbs: Float = 0
                for t in 0..<9 { maxAbs = max(maxAbs, abs(real[t * 24 + ch])) }
                XCTAssertEqual(wq.quant[ch].scale, maxAbs / 127, accuracy: maxAbs * 1e-6)
                XCTAssertEqual(wq.quant[ch].zeroPoint, 0)
                for t in 0..<9 {
                    let want = (real[t * 24 + ch] / wq.quant[ch].scale).rounded(.toNearestOrAwayFromZero)
                    XCTAssertEqual(Float(ints[t * 24 + ch]), want, "tap \(t) channel \(ch)")
                }
            }
            XCTAssertEqual(qo.inputs.count, 5)  // x, W, bias (i32), multipliers, shifts
            XCTAssertEqual(q8.tensors[qo.inputs[2]].dtype, .i32)
            XCTAssertEqual(qo.params, fo.params)
        }
    }

    /// namedTensors names the depthwise weights by position, and a second network with other
    /// weights, filled from the saved file, computes the same function.
    func testCheckpointRoundTrip() throws {
        let net = network(channels: 3)
        let names = namedTensors(net).map(\.name)
        XCTAssertTrue(names.contains("3.body.3.weight"))      // the block's depthwise conv
        XCTAssertTrue(names.contains("4.3.weight"))           // the stride-2 block's depthwise conv
        XCTAssertTrue(names.contains("4.4.running_var"))
        XCTAssertFalse(names.contains("3.body.3.bias"))
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("sprig-mobile-\(getpid()).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let architecture = try Architecture(family: "cnn", classes: 5, sourceClasses: [0, 1, 2, 3, 4])  // metadata only here
        try saveCheckpoint(net, architecture: architecture, to: path)
        let file = try SafetensorsFile.read(path: path)
        XCTAssertEqual(try file.floats("3.body.3.weight").shape, [3, 3, 24])
        let other = network(channels: 3)
        for entry in namedTensors(other) {
            let (shape, values) = try file.floats(entry.name)
            XCTAssertEqual(shape, entry.get().shape, entry.name)
            entry.set(Tensor(shape: shape, storage: values))
        }
        let x = Tensor(shape: [2, 8, 8, 3], storage: (0..<384).map { _ in rng.normal() })
        XCTAssertEqual(other.forward(x, training: false).storage, net.forward(x, training: false).storage)
    }

    func testReLU6WithoutALayerBeforeItIsAnError() {
        XCTAssertThrowsError(try lowerNetwork([.relu6], height: 4, width: 4, channels: 1, name: "x", mean: 0, std: 1)) {
            XCTAssertTrue("\($0)".contains("ReLU6 must follow"))
        }
    }
}
