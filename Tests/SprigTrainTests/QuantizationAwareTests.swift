// Quantization-aware training (Layers/FakeQuant.swift) against hand-computed values, naive
// loops and the compiler: the weight rounding is the compiler's, the activation rounding is the
// int8 grid of the tracked range with a straight-through gradient, and a network that leaves
// `withQuantizationAwareness` compiles to a q8 blob whose weights are its f32 blob's weights.

import SprigCompile
import SprigRuntime
import SprigTrain
import XCTest

final class QuantizationAwareTests: XCTestCase {
    /// A width-0.25 mobilenet on `input` (8×8×3) with weights from `seed`, and `images` random
    /// images (from seed + 1) labelled 0…4 in turn, as raw bytes and as a data set.
    private func tinyMobileNet(_ input: InputSpec, seed: UInt64, images count: Int) throws
        -> (Architecture, Sequential, [[UInt8]], Dataset) {
        let architecture = try Architecture(family: "mobilenet", classes: 5, width: 0.25, sourceClasses: [0, 1, 2, 3, 4], input: input)
        let network = try buildNetwork(architecture, seed: seed)
        var rng = SprigRNG(seed: seed + 1)
        let size = input.height * input.width * input.channels
        let images = (0..<count).map { _ in (0..<size).map { _ in UInt8(rng.int(below: 256)) } }
        let data = try Dataset(images: images.flatMap { $0 }, labels: (0..<count).map { UInt8($0 % 5) },
                               rows: input.height, cols: input.width, channels: input.channels)
        return (architecture, network, images, data)
    }

    func testWeightsRoundPerOutputChannelAsComputedByHand() {
        // Dense [Out 2][In 3]: channel 0 has max |w| = 1, so s = 1/127; channel 1 is all zero.
        let (levels, scales) = quantizeWeightsPerChannel([0.5, -1.0, 0.26, 0, 0, 0], shape: [2, 3], axis: 0)
        XCTAssertEqual(levels, [64, -127, 33, 0, 0, 0])  // 63.5 rounds away from zero; 33.02 to 33
        XCTAssertEqual(scales[0], 1.0 / 127, accuracy: 1e-9)
        XCTAssertEqual(levels.map(Int.init).min(), -127, "the level -128 is never used")
        // HWIO [1][1][2][2]: the channel is the last axis, so elements 0 and 2 share a scale.
        let hwio = quantizeWeightsPerChannel([2, -0.5, -1, 0.25], shape: [1, 1, 2, 2], axis: 3)
        XCTAssertEqual(hwio.scales[0], 2.0 / 127, accuracy: 1e-9)
        XCTAssertEqual(hwio.scales[1], 0.5 / 127, accuracy: 1e-9)
        XCTAssertEqual(hwio.levels, [127, -127, -64, 64])  // -1 / (2/127) = -63.5
    }

    func testFakeQuantOutputRoundsToTheGridOfItsRangeAndPassesTheGradientInsideIt() {
        let identity = Sequential([])
        let fq = FakeQuantOutput(identity)
        // The first training batch sets the range to its [min, max] = [-1, 3]: s = 4/255, z = -64.
        _ = fq.forward(Tensor(shape: [4], storage: [-1, 0, 0.5, 3]), training: true)
        XCTAssertEqual(fq.range, ActivationRange(min: -1, max: 3))
        // Eval mode keeps the range. -2 clamps to q = -128, 5 to q = 127.
        let s: Float = 4.0 / 255
        let y = fq.forward(Tensor(shape: [4], storage: [-2, 0.01, 1.0, 5]), training: false)
        let want: [Float] = [-64 * s, 1 * s, 64 * s, 191 * s]  // (q − z)·s with q = -128, -63, 0, 127
        for (g, w) in zip(y.storage, want) { XCTAssertEqual(g, w, accuracy: 1e-6) }
        XCTAssertEqual(fq.range, ActivationRange(min: -1, max: 3), "eval mode does not move the range")
        let dx = fq.backward(Tensor(shape: [4], storage: [1, 2, 3, 4]))
        XCTAssertEqual(dx.storage, [0, 2, 3, 0], "the gradient stops where the output was clipped")
        // A second training batch moves the range by the momentum: min −1 + 0.01·(−3 + 1).
        _ = fq.forward(Tensor(shape: [2], storage: [-3, 13]), training: true)
        XCTAssertEqual(fq.range!.min, -1.02, accuracy: 1e-6)
        XCTAssertEqual(fq.range!.max, 3.1, accuracy: 1e-6)
    }

    /// `calibrate` measures every rounded output as the compiler measures the f32 blob's tensors:
    /// the frozen ranges equal `SprigCompile.calibrate`'s ranges of the network's own f32 blob on
    /// the same images (its int8 tensors, matched by name), and training no longer moves them.
    func testCalibrationFreezesTheRangesTheCompilerWillMeasure() throws {
        let input = InputSpec(height: 8, width: 8, channels: 3, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25])
        let (architecture, network, images, data) = try tinyMobileNet(input, seed: 9, images: 12)
        let batches = data.batches(size: 5, normalization: architecture.normalization).map { Tensor(shape: $0.shape, storage: $0.images) }
        try withQuantizationAwareness(network) { qat in
            qat.calibrate(on: batches)
            let frozen = qat.outputs.map(\.range)
            XCTAssertTrue(qat.outputs.allSatisfy(\.frozen))
            var options = TrainOptions()
            options.epochs = 1
            options.batchSize = 6
            options.normalization = architecture.normalization
            _ = try train(network, on: data, options: options)
            XCTAssertEqual(qat.outputs.map(\.range), frozen, "training moves no frozen range")
        }
        // The weights are now snapped, as they were rounded during the calibration above.
        let f32 = try lowerNetwork(try loweringSteps(network), input: input, name: "qat")
        let ranges = try calibrate(blob: try f32.build(), samples: images)
        // Recalibrate on the snapped network (the weights moved in training) and compare tensor by tensor.
        try withQuantizationAwareness(network) { qat in
            qat.calibrate(on: batches)
            // Pools, GlobalAveragePool and Reshape keep their input's grid in the q8 blob, so
            // they have no range of their own.
            let written = f32.ops.filter { ![.maxPool2d, .avgPool2d, .globalAveragePool, .reshape].contains($0.opcode) }
                .map(\.output).filter { f32.tensors[$0].name != "normalize" }
            XCTAssertEqual(qat.outputs.count, written.count, "one rounded output per int8 activation the blob writes")
            for (o, t) in zip(qat.outputs, written) {
                let want = try XCTUnwrap(ranges[t]), got = try XCTUnwrap(o.range)
                let tolerance = 1e-4 * Swift.max(1, abs(want.max - want.min))
                XCTAssertEqual(got.min, want.min, accuracy: tolerance, f32.tensors[t].name)
                XCTAssertEqual(got.max, want.max, accuracy: tolerance, f32.tensors[t].name)
            }
        }
    }

    func testFakeQuantWeightsIsTheLayerWithRoundedWeightsAndTrainsTheFloatWeights() throws {
        var rng = SprigRNG(seed: 11)
        let dense = Dense(inputDimensions: 4, outputDimensions: 3, rng: &rng)
        for i in dense.bias!.value.storage.indices { dense.bias!.value.storage[i] = rng.normal() }
        let float = dense.weight.value.storage
        let fq = try XCTUnwrap(FakeQuantWeights(dense))
        XCTAssertNil(FakeQuantWeights(ReLU6()), "a layer without weights is not wrapped")
        let x = Tensor(shape: [2, 4], storage: (0..<8).map { _ in rng.normal() })
        let dy = Tensor(shape: [2, 3], storage: (0..<6).map { _ in rng.normal() })
        let y = fq.forward(x, training: true)
        XCTAssertEqual(dense.weight.value.storage, float, "forward puts the float weight back")
        let dx = fq.backward(dy)
        XCTAssertEqual(dense.weight.value.storage, float, "backward puts the float weight back")
        // Naive reference in Double: each row of W rounded to max|row|/127 steps.
        var rounded = [Double](repeating: 0, count: 12)
        for o in 0..<3 {
            let row = (0..<4).map { Double(float[o * 4 + $0]) }
            let step = row.map(abs).max()! / 127
            for i in 0..<4 { rounded[o * 4 + i] = (row[i] / step).rounded(.toNearestOrAwayFromZero) * step }
        }
        for n in 0..<2 {
            for o in 0..<3 {
                var sum = Double(dense.bias!.value.storage[o])
                for i in 0..<4 { sum += rounded[o * 4 + i] * Double(x.storage[n * 4 + i]) }
                XCTAssertEqual(Double(y.storage[n * 3 + o]), sum, accuracy: 1e-5, "y[\(n)][\(o)]")
            }
            for i in 0..<4 {
                var sum = 0.0
                for o in 0..<3 { sum += Double(dy.storage[n * 3 + o]) * rounded[o * 4 + i] }
                XCTAssertEqual(Double(dx.storage[n * 4 + i]), sum, accuracy: 1e-5, "dx[\(n)][\(i)]: through the rounded weight")
            }
        }
        // The straight-through weight gradient: dW = dyᵀ·x, as if W were not rounded.
        for o in 0..<3 {
            for i in 0..<4 {
                let want = (0..<2).reduce(0.0) { $0 + Double(dy.storage[$1 * 3 + o]) * Double(x.storage[$1 * 4 + i]) }
                XCTAssertEqual(Double(dense.weight.grad.storage[o * 4 + i]), want, accuracy: 1e-5)
            }
        }
        fq.snap()
        for (g, w) in zip(dense.weight.value.storage, rounded) { XCTAssertEqual(Double(g), w, accuracy: 1e-6) }
    }

    /// After a few quantization-aware steps the network is its own layers again, and its weights
    /// sit on the int8 grid: the q8 blob's weights (levels × scales, BatchNorm folded) equal the
    /// f32 blob's to float rounding. Without the snap they differ by up to half a step.
    func testAQuantizationAwareNetworkCompilesToInt8WeightsEqualToItsF32Weights() throws {
        let input = InputSpec(height: 8, width: 8, channels: 3, mean: [0.5, 0.4, 0.3], std: [0.3, 0.3, 0.3])
        let (architecture, network, images, data) = try tinyMobileNet(input, seed: 5, images: 16)
        let before = network.layers.map(ObjectIdentifier.init)
        var options = TrainOptions()
        options.epochs = 2
        options.batchSize = 8
        options.learningRate = 0.05
        options.normalization = architecture.normalization
        var sawWrapped = false
        try withQuantizationAwareness(network) { _ in
            sawWrapped = network.layers.contains { $0 is FakeQuantOutput || $0 is FakeQuantWeights }
            _ = try train(network, on: data, options: options)
        }
        XCTAssertTrue(sawWrapped, "the layers are wrapped inside the body")
        XCTAssertEqual(network.layers.map(ObjectIdentifier.init), before, "the network has its own layers back")

        let f32 = try lowerNetwork(try loweringSteps(network), input: input, name: "qat")
        let q8 = try quantizeNetwork(f32, ranges: try calibrate(blob: try f32.build(), samples: images))
        var weighted = 0
        for (op, qop) in zip(f32.ops, q8.ops.dropFirst()) where [.conv2d, .depthwiseConv2d, .dense].contains(op.opcode) {
            weighted += 1
            let w = floats(f32.tensors[op.inputs[1]].data)
            let q = q8.tensors[qop.inputs[1]]
            let levels = q.data.map { Int8(bitPattern: $0) }
            let axis = op.opcode == .dense ? 0 : op.opcode == .conv2d ? 3 : 2
            let inner = q.shape[(axis + 1)...].reduce(1, *)
            for i in w.indices {
                let c = (i / inner) % q.shape[axis]
                let scale = q.quant[c].scale
                XCTAssertEqual(Float(levels[i]) * scale, w[i], accuracy: 1e-5 * scale * 127,
                               "\(f32.tensors[op.inputs[1]].name)[\(i)]: the int8 weight is not the f32 weight")
            }
        }
        XCTAssertEqual(weighted, f32.ops.filter { [.conv2d, .depthwiseConv2d, .dense].contains($0.opcode) }.count)
        XCTAssertGreaterThan(weighted, 5)
    }
}
