// The compiler's lowering: a network of trainer layers (BatchNorm in eval
// mode, residual blocks, pools, flatten) and its compiled f32 blob compute
// the same function; q8 keeps the argmax on most inputs; a q8 blob with a
// Float32 tail (the device's `last` trains it) computes what its parts say.

import SprigCompile
import SprigRuntime
import SprigTestSupport
import SprigTrain
import XCTest

final class LoweringTests: XCTestCase {
    var rng = SprigRNG(seed: 31)

    func randomize(_ bn: BatchNorm2D) {
        for c in 0..<bn.channels {
            bn.weight.value.storage[c] = 0.5 + rng.nextFloat()
            bn.bias.value.storage[c] = rng.nextFloat() - 0.5
            bn.runningMean.storage[c] = rng.nextFloat() - 0.5
            bn.runningVariance.storage[c] = 0.2 + rng.nextFloat()
        }
    }

    func conv(_ cin: Int, _ cout: Int, k: Int = 3, stride: Int = 1, pad: Int = 1, bias: Bool = false) -> Conv2D {
        Conv2D(inputChannels: cin, outputChannels: cout, kernelSize: k, stride: stride, padding: pad, bias: bias, rng: &rng)
    }

    func bn(_ c: Int) -> BatchNorm2D {
        let b = BatchNorm2D(channels: c)
        randomize(b)
        return b
    }

    /// The trainer's eval-mode forward of `steps`, written independently of the lowering.
    func forward(_ steps: [LoweringStep], _ x: Tensor) -> Tensor {
        var v = x
        for step in steps {
            switch step {
            case .conv(let l): v = l.forward(v, training: false)
            case .depthwiseConv(let l): v = l.forward(v, training: false)
            case .batchNorm(let l): v = l.forward(v, training: false)
            case .relu: v = ReLU().forward(v, training: false)
            case .relu6: v = ReLU6().forward(v, training: false)
            case .maxPool(let l): v = l.forward(v, training: false)
            case .avgPool(let l): v = l.forward(v, training: false)
            case .globalAveragePool: v = GlobalAveragePool().forward(v, training: false)
            case .flatten: v = Flatten().forward(v, training: false)
            case .dense(let l): v = l.forward(v, training: false)
            case .residual(let body, let shortcut):
                v = Add.sum(forward(body, v), shortcut.isEmpty ? v : forward(shortcut, v))
            }
        }
        return v
    }

    func networks() -> [(String, [LoweringStep], Int)] {
        let resnetLike: [LoweringStep] = [
            .conv(conv(1, 4, bias: true)), .batchNorm(bn(4)), .relu, .maxPool(MaxPool2D(kernelSize: 2)),
            .residual(body: [.conv(conv(4, 4)), .batchNorm(bn(4)), .relu, .conv(conv(4, 4)), .batchNorm(bn(4))], shortcut: []),
            .relu,
            .residual(body: [.conv(conv(4, 8, stride: 2)), .batchNorm(bn(8)), .relu, .conv(conv(8, 8)), .batchNorm(bn(8))],
                      shortcut: [.conv(conv(4, 8, k: 1, stride: 2, pad: 0)), .batchNorm(bn(8))]),
            .relu, .avgPool(AvgPool2D(kernelSize: 3, stride: 1, padding: 1)), .globalAveragePool,
            .dense(Dense(inputDimensions: 8, outputDimensions: 5, rng: &rng)),
        ]
        let mlpLike: [LoweringStep] = [
            .conv(conv(1, 3, k: 5, stride: 2, pad: 2, bias: true)), .relu, .flatten,
            .dense(Dense(inputDimensions: 6 * 6 * 3, outputDimensions: 16, rng: &rng)), .relu,
            .dense(Dense(inputDimensions: 16, outputDimensions: 4, rng: &rng)),
        ]
        return [("resnet-like", resnetLike, 12), ("mlp-like", mlpLike, 12)]
    }

    func testCompiledF32MatchesTheTrainer() throws {
        let mean: Float = 0.3, std: Float = 0.4
        for (name, steps, side) in networks() {
            let builder = try lowerNetwork(steps, height: side, width: side, channels: 1, name: name, mean: mean, std: std)
            let blob = try builder.build()
            var images: [[UInt8]] = []
            for _ in 0..<4 { images.append((0..<(side * side)).map { _ in UInt8(rng.int(below: 256)) }) }
            let outputs = try runBlob(blob, images)
            for (i, image) in images.enumerated() {
                let x = Tensor(shape: [1, side, side, 1], storage: image.map { (Float($0) / 255 - mean) / std })
                let want = forward(steps, x).storage
                let got = outputs[i]
                XCTAssertEqual(got.count, want.count, name)
                let scale = max(1, want.map { abs($0) }.max() ?? 0)
                let diff = zip(got, want).map { abs($0 - $1) }.max() ?? .infinity
                XCTAssertLessThan(diff / scale, 1e-5, "\(name) image \(i): max |diff| \(diff)")
            }
        }
    }

    func testQuantizedKeepsTheArgmax() throws {
        for (name, steps, side) in networks() {
            let builder = try lowerNetwork(steps, height: side, width: side, channels: 1, name: name, mean: 0.3, std: 0.4)
            let f32 = try builder.build()
            let images = (0..<200).map { _ in (0..<(side * side)).map { _ in UInt8(rng.int(below: 256)) } }
            let ranges = try calibrate(blob: f32, samples: Array(images[0..<100]))
            let q8 = try quantizeNetwork(builder, ranges: ranges).build()
            let a = try runBlob(f32, Array(images[100...])), b = try runBlob(q8, Array(images[100...]))
            let agree = zip(a, b).filter { argmax($0) == argmax($1) }.count
            XCTAssertGreaterThanOrEqual(Double(agree) / 100, 0.9, "\(name): q8 agrees with f32 on \(agree)/100")
        }
    }

    /// `floatLayers` over every layer leaves only the input's Quantize in int8: the blob then
    /// computes the trainer's forward of the quantized-and-dequantized image, by the
    /// Quantize and Dequantize rules of docs/blob-format.md, written out here.
    func testAFloatTailOverEveryLayerIsTheTrainerOnTheQuantizedInput() throws {
        let (_, steps, side) = networks()[1]  // conv, dense, dense
        let mean: Float = 0.3, std: Float = 0.4
        let builder = try lowerNetwork(steps, height: side, width: side, channels: 1, name: "mlp-like", mean: mean, std: std)
        let images = (0..<60).map { _ in (0..<(side * side)).map { _ in UInt8(rng.int(below: 256)) } }
        let ranges = try calibrate(blob: try builder.build(), samples: Array(images[0..<30]))
        let mixed = try quantizeNetwork(builder, ranges: ranges, floatLayers: 2)
        XCTAssertEqual(mixed.ops.map(\.opcode), [.quantize, .dequantize] + builder.ops.map(\.opcode))
        let q = try XCTUnwrap(mixed.tensors[mixed.ops[0].output].quant.first)
        let outputs = try runBlob(try mixed.build(), Array(images[30...]))
        for (i, image) in images[30...].enumerated() {
            let x = image.map { p -> Float in
                let v = (Float(p) / 255 - mean) / std
                let code = max(-128, min(127, (v / q.scale).rounded(.toNearestOrAwayFromZero) + Float(q.zeroPoint)))
                return q.scale * (code - Float(q.zeroPoint))
            }
            let want = forward(steps, Tensor(shape: [1, side, side, 1], storage: x)).storage
            let scale = max(1, want.map { abs($0) }.max() ?? 0)
            let diff = zip(outputs[i], want).map { abs($0 - $1) }.max() ?? .infinity
            XCTAssertLessThan(diff / scale, 1e-5, "image \(i): max |diff| \(diff)")
        }
    }

    /// One Float32 layer: the head of the net is the q8 blob's, byte for byte; the last
    /// hidden layer and the classifier keep the trainer's weights; the outputs are nearer
    /// the f32 blob's than the all-int8 blob's are.
    func testOneFloatLayerKeepsTheRestInt8() throws {
        let (_, steps, side) = networks()[1]
        let builder = try lowerNetwork(steps, height: side, width: side, channels: 1, name: "mlp-like", mean: 0.3, std: 0.4)
        let f32 = try builder.build()
        let images = (0..<200).map { _ in (0..<(side * side)).map { _ in UInt8(rng.int(below: 256)) } }
        let ranges = try calibrate(blob: f32, samples: Array(images[0..<100]))
        let q8 = try quantizeNetwork(builder, ranges: ranges)
        let mixed = try quantizeNetwork(builder, ranges: ranges, floatLayers: 1)
        XCTAssertEqual(mixed.metadata.first { $0.key == "precision" }?.value, "mixed")
        // q8: Quantize, Conv2D, Reshape, Dense, Dense, Dequantize. mixed: the first three, then
        // a Dequantize and both Dense ops in Float32.
        XCTAssertEqual(q8.ops.map(\.opcode), [.quantize, .conv2d, .reshape, .dense, .dense, .dequantize])
        XCTAssertEqual(mixed.ops.map(\.opcode), [.quantize, .conv2d, .reshape, .dequantize, .dense, .dense])
        for o in 0..<3 {
            for (a, b) in zip(q8.ops[o].inputs, mixed.ops[o].inputs) where a >= 0 {
                XCTAssertEqual(q8.tensors[a].data, mixed.tensors[b].data, "op \(o)")
                XCTAssertEqual(q8.tensors[a].dtype, mixed.tensors[b].dtype, "op \(o)")
            }
        }
        for (source, tail) in zip(builder.ops.suffix(2), mixed.ops.suffix(2)) {
            XCTAssertEqual(mixed.tensors[tail.output].dtype, .f32)
            for (a, b) in zip(source.inputs.dropFirst(), tail.inputs.dropFirst()) where a >= 0 {
                XCTAssertEqual(builder.tensors[a].data, mixed.tensors[b].data)
                XCTAssertEqual(mixed.tensors[b].dtype, .f32)
            }
        }
        let test = Array(images[100...])
        let want = try runBlob(f32, test), all8 = try runBlob(try q8.build(), test), part8 = try runBlob(try mixed.build(), test)
        func error(_ got: [[Float]]) -> Float {
            var sum: Float = 0
            for (g, w) in zip(got, want) {
                for (a, b) in zip(g, w) { sum += (a - b) * (a - b) }
            }
            return sum
        }
        XCTAssertLessThan(error(part8), error(all8))
        XCTAssertThrowsError(try quantizeNetwork(builder, ranges: ranges, floatLayers: 3)) {
            XCTAssertEqual("\($0)", "a Float32 tail of 3 layers before the classifier was asked for, but the network has 2 "
                + "Dense/Conv2D/DepthwiseConv2D layers before it")
        }
    }

    /// A Float32 classifier: the backbone is the q8 blob's; the global average pool and
    /// the classifier run in Float32 on the dequantized int8 feature map. The reference is
    /// built apart: the q8 blob of the backbone alone (conv and ReLU, the same ranges)
    /// gives the dequantized feature map, averaged and put through the trainer's Dense here.
    func testAFloatClassifierPoolsTheDequantizedFeatureMapInFloat32() throws {
        let side = 10, mean: Float = 0.3, std: Float = 0.4
        let backbone: [LoweringStep] = [.conv(conv(1, 6, bias: true)), .relu]
        let dense = Dense(inputDimensions: 6, outputDimensions: 4, rng: &rng)
        let steps = backbone + [.globalAveragePool, .dense(dense)]
        let builder = try lowerNetwork(steps, height: side, width: side, channels: 1, name: "gap", mean: mean, std: std)
        let head = try lowerNetwork(backbone, height: side, width: side, channels: 1, name: "backbone", mean: mean, std: std)
        let images = (0..<130).map { _ in (0..<(side * side)).map { _ in UInt8(rng.int(below: 256)) } }
        let calibration = Array(images[0..<30]), test = Array(images[30...])
        let f32 = try builder.build()
        let ranges = try calibrate(blob: f32, samples: calibration)
        let mixed = try quantizeNetwork(builder, ranges: ranges, floatClassifier: true)
        XCTAssertEqual(mixed.ops.map(\.opcode), [.quantize, .conv2d, .dequantize, .globalAveragePool, .dense])
        XCTAssertEqual(mixed.metadata.first { $0.key == "precision" }?.value, "mixed")
        let featureMaps = try runBlob(try quantizeNetwork(head, ranges: try calibrate(blob: try head.build(), samples: calibration)).build(), test)
        let got = try runBlob(try mixed.build(), test)
        let want = try runBlob(f32, test), all8 = try runBlob(try quantizeNetwork(builder, ranges: ranges).build(), test)
        var mixedError: Float = 0, int8Error: Float = 0
        for i in test.indices {
            var pooled = [Float](repeating: 0, count: 6)
            for (k, v) in featureMaps[i].enumerated() { pooled[k % 6] += v / Float(side * side) }
            let reference = dense.forward(Tensor(shape: [1, 6], storage: pooled), training: false).storage
            let scale = max(1, reference.map { abs($0) }.max() ?? 0)
            let diff = zip(got[i], reference).map { abs($0 - $1) }.max() ?? .infinity
            XCTAssertLessThan(diff / scale, 1e-5, "image \(i): max |diff| \(diff)")
            for k in 0..<4 {
                mixedError += (got[i][k] - want[i][k]) * (got[i][k] - want[i][k])
                int8Error += (all8[i][k] - want[i][k]) * (all8[i][k] - want[i][k])
            }
        }
        // The pooled mean and the logits are no longer rounded to int8 steps.
        XCTAssertLessThan(mixedError, int8Error)
        // With `floatLayers`, the tail is the one `last` trains, whatever floatClassifier says.
        XCTAssertEqual(try quantizeNetwork(builder, ranges: ranges, floatLayers: 1, floatClassifier: true).ops.map(\.opcode),
                       [.quantize, .dequantize, .conv2d, .globalAveragePool, .dense])
        XCTAssertEqual(try quantizeNetwork(builder, ranges: ranges).ops.map(\.opcode),
                       [.quantize, .conv2d, .globalAveragePool, .dense, .dequantize])
    }

    func testBatchNormWithoutALayerBeforeItIsAnError() {
        XCTAssertThrowsError(try lowerNetwork([.batchNorm(bn(1))], height: 4, width: 4, channels: 1, name: "x", mean: 0, std: 1)) {
            XCTAssertTrue("\($0)".contains("BatchNorm2D must follow"))
        }
    }
}
