// Pruning the mobilenet preset.
//
// Planted: a mobilenet built by hand whose last conv (the features GlobalAveragePool hands
// to the head) has six units of which three carry the label, as DAPSearchTests' planted
// problem has sixteen features of which three do. Each image is constant, brightness b
// uniform; the label is [b > 0.5]. Every other group is one unit wide and carries b down the
// main path (1×1 convs and the depthwise centre taps are 1; BatchNorm γ = 1 with β = 2, so
// each ReLU6 stays linear on the standardised value), the adding blocks' bodies are silent
// (all zero: the identity carries b), and the head adds the three signal units. The three
// noise units are cut off exactly: every weight that writes or reads them is 0 and so is
// their β, so they are 0 at every pixel and dL/dz of their gates is exactly 0. The weights
// stay frozen during the search. With a params budget that affords exactly the signal units,
// DAP must keep exactly them.
//
// (Planting noise in the inner groups as well, with three input channels each carried by one
// unit per group, was tried: there every gate is followed by a training-mode BatchNorm that
// removes its scale, dL/dθ of an inner signal unit is weak and of either sign, and DAP kept
// the planted set in only 1–3 of 6–8 seeds (200–600 steps), dropping an inner signal unit
// whose θ ran below the noise units'. The last conv's gates reach the logits directly.)
//
// Methods: every PruneMethod on a tiny mobilenet returns a network that evaluates and
// whose widths fit the budget.

import SprigPrune
import SprigTestSupport
import SprigTrain
import XCTest

final class MobileNetPlantedDAPTests: XCTestCase {
    /// [stem, (expand, filters) × 5, last conv]: blocks 1, 3, 5 add their input (1 = 1, stride 1).
    static let widths = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 6]
    /// The groups by hand (docs/checkpoint-format.md, "Pruning groups"), in walk order:
    /// stem (tied to block 1's projection), b1.expand, b2.expand, b2.project (tied to b3's),
    /// b3.expand, b4.expand, b4.project (tied to b5's), b5.expand, last conv.
    static let groupSizes = [1, 1, 1, 1, 1, 1, 1, 1, 6]
    /// The last conv's units that carry the label; 1, 3 and 5 are noise.
    static let signal = [4, 0, 2]
    static let headScale: Float = 0.5

    /// The planted network: every weight 0, every BatchNorm γ 1 and β 0, then the signal path.
    func plantedNetwork(_ a: Architecture) throws -> Sequential {
        let network = try buildNetwork(a, seed: 1)
        var tensors = Dictionary(uniqueKeysWithValues: namedTensors(network).map { ($0.name, $0.get()) })
        let batchNorms = Set(tensors.keys.filter { $0.hasSuffix(".running_var") }.map { String($0.dropLast("running_var".count)) })
        for (name, t) in tensors where !name.hasSuffix("running_mean") && !name.hasSuffix("running_var") {
            let layer = String(name[...name.lastIndex(of: ".")!])
            tensors[name] = Tensor(shape: t.shape, repeating: batchNorms.contains(layer) && name.hasSuffix(".weight") ? 1 : 0)
        }
        func set(_ name: String, _ index: [Int], _ v: Float) {
            var t = tensors[name]!
            t.storage[t.offset(index)] = v
            tensors[name] = t
        }
        set("0.weight", [1, 1, 0, 0], 1)  // stem, centre tap
        set("1.bias", [0], 2)
        for block in ["4", "6"] {          // blocks 2 and 4 (stride 2, no add): expand, depthwise centre tap, project
            set("\(block).0.weight", [0, 0, 0, 0], 1)
            set("\(block).1.bias", [0], 2)
            set("\(block).3.weight", [1, 1, 0], 1)
            set("\(block).4.bias", [0], 2)
            set("\(block).6.weight", [0, 0, 0, 0], 1)
            set("\(block).7.bias", [0], 2)
        }
        // The last conv copies b to the signal units; logit 1 = s·Σ (x̂ + 2) − 6s = 3s·x̂.
        for u in Self.signal {
            set("8.weight", [0, 0, 0, u], 1)
            set("9.bias", [u], 2)
            set("12.weight", [1, u], Self.headScale)
        }
        set("12.bias", [1], -6 * Self.headScale)
        for entry in namedTensors(network) { entry.set(tensors[entry.name]!) }
        return network
    }

    /// Constant images, brightness b uniform; label [b > 0.5].
    func batch(_ n: Int, side: Int, _ rng: inout SprigRNG) -> (Tensor, [Int]) {
        var x = [Float](), y = [Int]()
        for _ in 0..<n {
            let b = rng.int(below: 256)
            y.append(b > 127 ? 1 : 0)
            x += [Float](repeating: (Float(b) / 255 - 0.5) / 0.3, count: side * side)
        }
        return (Tensor(shape: [n, side, side, 1], storage: x), y)
    }

    func testDAPKeepsExactlyThePlantedUnits() throws {
        let side = 4
        let input = InputSpec(height: side, width: side, channels: 1, mean: [0.5], std: [0.3])
        let a = try Architecture(preset: "mobilenet", widths: Self.widths, input: input, classes: 2, sourceClasses: [0, 1])
        let steps = 200, bs = 16
        for seed: UInt64 in [1, 2, 3] {
            let network = try plantedNetwork(a)
            let supernet = try GatedSupernet(network: network, architecture: a)
            let space = supernet.pruningSpace
            XCTAssertEqual(space.groups.map(\.size), Self.groupSizes)
            XCTAssertEqual(try a.plan().invertedResidualAdds, [true, false, true, false, true])
            let last = Self.groupSizes.dropLast().reduce(0, +)  // the last conv's first unit
            var planted = [Bool](repeating: true, count: space.unitCount)
            for u in 0..<6 where !Self.signal.contains(u) { planted[last + u] = false }
            let noise = planted.indices.filter { !planted[$0] }
            XCTAssertEqual(noise, [last + 1, last + 3, last + 5])
            var rng = SprigRNG(seed: 500 + seed)
            // The planted network classifies (BatchNorm in training mode, as the search runs it).
            let (x0, y0) = batch(64, side: side, &rng)
            let ones = Tensor(shape: [space.unitCount], repeating: 1)
            XCTAssertGreaterThan(SoftmaxCrossEntropy.accuracy(supernet.forward(x0, gates: ones, training: true), labels: y0), 0.85)
            // dL/dz is exactly 0 for every noise gate, and not for the signal gates.
            var z = Tensor(zeros: [64, space.unitCount])
            for i in z.storage.indices { z.storage[i] = 0.5 + 0.5 * rng.nextFloat() }
            let loss = SoftmaxCrossEntropy()
            _ = loss.forward(supernet.forward(x0, gates: z, training: true), labels: y0)
            let dz = supernet.backward(loss.backward())
            for u in noise { XCTAssertTrue((0..<64).allSatisfy { dz.storage[$0 * space.unitCount + u] == 0 }, "noise unit \(u)") }
            for u in Self.signal {
                XCTAssertTrue((0..<64).contains { dz.storage[$0 * space.unitCount + last + u] != 0 }, "signal unit \(u)")
            }
            var counts = Self.groupSizes
            counts[counts.count - 1] = Self.signal.count
            let budget = Budget(kind: .params, absolute: space.cost(.params, kept: counts))
            var config = DAPConfig()
            config.steps = steps
            config.weightLearningRate = 0  // the planted weights stay as they are
            config.seed = seed
            let search = DAPSearch(network: supernet, budget: budget, config: config)
            for _ in 0..<config.steps {
                let (xA, yA) = batch(bs, side: side, &rng), (xB, yB) = batch(bs, side: side, &rng)
                search.step(xA: xA, yA: yA, xB: xB, yB: yB)
            }
            let keep = try search.select()
            XCTAssertEqual(keep, planted, "seed \(seed): dropped \(keep.indices.filter { !keep[$0] }), planted noise \(noise)")
            let theta = search.relaxation.logits
            let margin = Self.signal.map { theta[last + $0] }.min()! - noise.map { theta[$0] }.max()!
            XCTAssertGreaterThan(margin, 0, "seed \(seed): a noise unit outranks a signal unit")
            // The extracted network is the planted one without its noise: same logits in training mode.
            let (small, smaller) = try supernet.extract(keep: keep)
            XCTAssertEqual(try smaller.plan().widths, counts)
            let masked = supernet.forward(x0, gates: Tensor(shape: [keep.count], storage: keep.map { $0 ? 1 : 0 }), training: true)
            let extracted = small.forward(x0, training: true)
            XCTAssertLessThan(zip(masked.storage, extracted.storage).map { abs($0 - $1) }.max()!, 1e-4)
        }
    }
}

final class MobileNetPruneMethodTests: XCTestCase {
    /// Random 8×8 gray images of 3 classes; class c brightens rows 2c…2c+1 so there is something to learn.
    func data(_ n: Int, seed: UInt64) throws -> Dataset {
        var rng = SprigRNG(seed: seed)
        let labels = (0..<n).map { UInt8($0 % 3) }
        var images = [UInt8](repeating: 0, count: n * 64)
        for s in 0..<n {
            for p in 0..<64 {
                let lit = (p / 8) / 2 == Int(labels[s])
                images[s * 64 + p] = UInt8(rng.int(below: 96) + (lit ? 150 : 0))
            }
        }
        return try Dataset(images: images, labels: labels, rows: 8, cols: 8, channels: 1)
    }

    func testEveryMethodReturnsAnEvaluatingNetworkWithinBudget() throws {
        let input = InputSpec(height: 8, width: 8, channels: 1, mean: [0.3], std: [0.25])
        let architecture = try Architecture(family: "mobilenet", classes: 3, width: 0.125, sourceClasses: [0, 1, 2], input: input)
        let space = try pruningSpace(for: architecture)
        let source = try data(24, seed: 3)
        XCTAssertEqual(PruneMethod.allCases.count, 5)
        for budgetText in ["40%", "macs:50%"] {
            let budget = try Budget(parsing: budgetText)
            let target = budget.target(full: space.fullCost(budget.kind))
            for method in PruneMethod.allCases {
                let label = "\(method) \(budgetText)"
                let network = try buildNetwork(architecture, seed: 4)
                var settings = PruneSettings(budget: budget)
                settings.method = method
                settings.batchSize = 8
                settings.dap.steps = 6
                let outcome = try pruneNetwork(network, architecture: architecture, source: source, settings: settings,
                                               finetuneEpochs: 1)
                let widths = try outcome.architecture.plan().widths
                XCTAssertEqual(widths.count, space.groups.count, label)
                XCTAssertTrue(zip(widths, space.groups).allSatisfy { $0 >= 1 && $0 <= $1.size }, "\(label): \(widths)")
                let cost = space.cost(budget.kind, kept: widths)
                XCTAssertLessThanOrEqual(cost, target, "\(label): \(widths) costs \(cost) > \(target)")
                XCTAssertEqual(outcome.achieved, cost, label)
                XCTAssertLessThan(cost, space.fullCost(budget.kind), label)
                // The adds survive pruning.
                XCTAssertEqual(try outcome.architecture.plan().invertedResidualAdds, [true, false, true, false, true], label)
                // The network is the architecture's (tensor shapes), evaluates, and gives finite logits.
                let shapes = namedTensors(outcome.network).map { $0.get().shape }
                XCTAssertEqual(shapes, namedTensors(try buildNetwork(outcome.architecture, seed: 0)).map { $0.get().shape }, label)
                let result = try evaluate(outcome.network, on: source, normalization: architecture.normalization)
                XCTAssertTrue(result.loss.isFinite, "\(label): loss \(result.loss)")
                XCTAssertTrue((0...1).contains(result.accuracy), label)
                let batch = source.makeBatch(indices: Array(0..<6), normalization: architecture.normalization)
                let logits = outcome.network.forward(Tensor(shape: batch.shape, storage: batch.images), training: false)
                XCTAssertEqual(logits.shape, [6, 3], label)
                XCTAssertTrue(logits.storage.allSatisfy(\.isFinite), label)
            }
        }
    }
}
