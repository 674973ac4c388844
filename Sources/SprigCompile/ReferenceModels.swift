// Reference networks with seeded weights, for tests that need a blob without
// training one.
//
// ref-cnn: input 28×28×1 → Conv3×3 16 + ReLU → MaxPool 2 → Conv3×3 32 + ReLU
//          → MaxPool 2 → Conv3×3 64 + ReLU → GlobalAveragePool → Dense 10
// 'same' padding, He-normal weights from a seeded generator, small biases.
// The committed fixture of the same architecture is trained instead: `sprig
// fixtures` trains SprigTrain's `refcnn` family and lowers it.

import Foundation
import SprigRuntime
import SprigTrain
import SprigWriter

/// SplitMix64: a tiny seeded generator for reproducible weights.
public struct SplitMix64 {
    var state: UInt64
    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    public mutating func uniform() -> Double { Double(next() >> 11) * 0x1p-53 }

    /// Standard normal (Box–Muller).
    public mutating func normal() -> Double {
        let u = max(uniform(), 1e-300), v = uniform()
        return (-2 * log(u)).squareRoot() * cos(2 * Double.pi * v)
    }
}

/// The reference CNN as a Float32 network description, with seeded weights.
public func referenceCNN(seed: UInt64 = 1) -> BlobBuilder {
    var rng = SplitMix64(seed: seed)
    var b = BlobBuilder()
    b.setMetadata("name", "ref-cnn")
    b.setMetadata("precision", "f32")
    b.setMetadata("labels", "t-shirt,trouser,pullover,dress,coat,sandal,shirt,sneaker,bag,boot")
    // Fashion-MNIST's images and normalisation, as the presets' default input.
    let input = InputSpec.fashionMNIST
    let side = input.height
    let x = b.addActivation("input", dtype: .f32, shape: input.shape)
    b.addInput(x, mean: input.mean[0], std: input.std[0])

    func conv(_ name: String, _ input: Int, _ h: Int, _ cin: Int, _ cout: Int) -> Int {
        let fanIn = Double(9 * cin)
        let w = (0..<(9 * cin * cout)).map { _ in Float(rng.normal() * (2 / fanIn).squareRoot()) }
        let bias = (0..<cout).map { _ in Float(rng.normal() * 0.05) }
        let wt = b.addConstant(name + ".weight", floats: w, shape: [3, 3, cin, cout])
        let bt = b.addConstant(name + ".bias", floats: bias, shape: [cout])
        let y = b.addActivation(name, dtype: .f32, shape: [h, h, cout])
        b.addOp(.conv2d, activation: .relu, inputs: [input, wt, bt], output: y, params: [1, 1, 1, 1, 1, 1])
        return y
    }
    func pool(_ name: String, _ input: Int, _ h: Int, _ c: Int) -> Int {
        let y = b.addActivation(name, dtype: .f32, shape: [h / 2, h / 2, c])
        b.addOp(.maxPool2d, inputs: [input], output: y, params: [2, 2, 2, 2, 0, 0, 0, 0])
        return y
    }
    let c1 = conv("conv1", x, side, input.channels, 16)
    let p1 = pool("pool1", c1, side, 16)
    let c2 = conv("conv2", p1, side / 2, 16, 32)
    let p2 = pool("pool2", c2, side / 2, 32)
    let c3 = conv("conv3", p2, side / 4, 32, 64)
    let g = b.addActivation("gap", dtype: .f32, shape: [64])
    b.addOp(.globalAveragePool, inputs: [c3], output: g)
    let w = (0..<(64 * 10)).map { _ in Float(rng.normal() * (1.0 / 64).squareRoot()) }
    let wt = b.addConstant("fc.weight", floats: w, shape: [10, 64])
    let bt = b.addConstant("fc.bias", floats: [Float](repeating: 0, count: 10), shape: [10])
    let y = b.addActivation("logits", dtype: .f32, shape: [10])
    b.addOp(.dense, inputs: [g, wt, bt], output: y)
    b.addOutput(y)
    return b
}

/// A tiny network that uses every op: the conformance and corruption suites
/// run it in f32 and q8.
///
/// ```
/// input[8,8,2] → Conv3×3 4 +ReLU → Depthwise3×3 s2 +ReLU6 → d[4,4,4]
/// d → Conv1×1 4 → c2 ;  Add(d, c2) +ReLU → MaxPool 2 → AvgPool3×3 s1 p1 → v[2,2,4]
/// v → GAP → Dense 3 → f1 ;  v → Reshape[16] → Dense 3 → f2 ;  Add(f1, f2) → Softmax → out[3]
/// ```
public func allOpsNetwork(seed: UInt64 = 3) -> BlobBuilder {
    var rng = SplitMix64(seed: seed)
    func values(_ n: Int, _ scale: Double) -> [Float] { (0..<n).map { _ in Float(rng.normal() * scale) } }
    var b = BlobBuilder()
    b.setMetadata("name", "all-ops")
    b.setMetadata("precision", "f32")
    let x = b.addActivation("input", dtype: .f32, shape: [8, 8, 2])
    b.addInput(x, mean: 0.5, std: 0.25)
    let w1 = b.addConstant("conv1.weight", floats: values(3 * 3 * 2 * 4, 0.4), shape: [3, 3, 2, 4])
    let b1 = b.addConstant("conv1.bias", floats: values(4, 0.1), shape: [4])
    let c1 = b.addActivation("conv1", dtype: .f32, shape: [8, 8, 4])
    b.addOp(.conv2d, activation: .relu, inputs: [x, w1, b1], output: c1, params: [1, 1, 1, 1, 1, 1])
    let wd = b.addConstant("dw.weight", floats: values(3 * 3 * 4, 0.5), shape: [3, 3, 4])
    let bd = b.addConstant("dw.bias", floats: values(4, 0.1), shape: [4])
    let d = b.addActivation("dw", dtype: .f32, shape: [4, 4, 4])
    b.addOp(.depthwiseConv2d, activation: .relu6, inputs: [c1, wd, bd], output: d,
            params: [2, 2, 1, 1, 0, 0])
    let w2 = b.addConstant("conv2.weight", floats: values(4 * 4, 0.5), shape: [1, 1, 4, 4])
    let c2 = b.addActivation("conv2", dtype: .f32, shape: [4, 4, 4])
    b.addOp(.conv2d, inputs: [d, w2, -1], output: c2, params: [1, 1, 0, 0, 0, 0])
    let a1 = b.addActivation("add1", dtype: .f32, shape: [4, 4, 4])
    b.addOp(.add, activation: .relu, inputs: [d, c2], output: a1)
    let m1 = b.addActivation("maxpool", dtype: .f32, shape: [2, 2, 4])
    b.addOp(.maxPool2d, inputs: [a1], output: m1, params: [2, 2, 2, 2, 0, 0, 0, 0])
    let v = b.addActivation("avgpool", dtype: .f32, shape: [2, 2, 4])
    b.addOp(.avgPool2d, inputs: [m1], output: v, params: [3, 3, 1, 1, 1, 1, 1, 1])
    let g = b.addActivation("gap", dtype: .f32, shape: [4])
    b.addOp(.globalAveragePool, inputs: [v], output: g)
    let wf1 = b.addConstant("fc1.weight", floats: values(3 * 4, 0.6), shape: [3, 4])
    let bf1 = b.addConstant("fc1.bias", floats: values(3, 0.1), shape: [3])
    let f1 = b.addActivation("fc1", dtype: .f32, shape: [3])
    b.addOp(.dense, inputs: [g, wf1, bf1], output: f1)
    let r = b.addActivation("flat", dtype: .f32, shape: [16])
    b.addOp(.reshape, inputs: [v], output: r)
    let wf2 = b.addConstant("fc2.weight", floats: values(3 * 16, 0.3), shape: [3, 16])
    let f2 = b.addActivation("fc2", dtype: .f32, shape: [3])
    b.addOp(.dense, inputs: [r, wf2, -1], output: f2)
    let s = b.addActivation("sum", dtype: .f32, shape: [3])
    b.addOp(.add, inputs: [f1, f2], output: s)
    let y = b.addActivation("probs", dtype: .f32, shape: [3])
    b.addOp(.softmax, inputs: [s], output: y)
    b.addOutput(y)
    return b
}
