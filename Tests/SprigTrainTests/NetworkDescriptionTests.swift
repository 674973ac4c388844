// The network description (docs/checkpoint-format.md) against the document and hand
// counts: JSON round trips of every preset, hand-written JSON decoding to the defaults
// the document lists, a version-1 checkpoint loading as its preset, description errors
// that name the layer by its place, `tensorElements` against hand sums and the built
// network, and `withWidths` keeping the inverted residuals' add flags.

import Foundation
import SprigTestSupport
import SprigTrain
import XCTest

final class NetworkDescriptionTests: XCTestCase {
    func temporary(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("sprig-desc-\(getpid())-\(name)").path
    }

    static let handLayers = SharedDescriptions.handLayers

    static let gray8 = InputSpec(height: 8, width: 8, channels: 1, mean: [0.5], std: [0.3])
    static let colour32 = InputSpec(height: 32, width: 32, channels: 3, mean: [0.49, 0.48, 0.45], std: [0.25, 0.24, 0.26])

    func hand(_ input: InputSpec, classes: Int = 5) -> Architecture {
        Architecture(preset: nil, input: input, layers: Self.handLayers, classes: classes, sourceClasses: Array(0..<classes))
    }

    /// `layers` on `input` with a 3-class head.
    func custom(_ layers: [LayerSpec], input: InputSpec = gray8, classes: Int = 3) -> Architecture {
        Architecture(preset: nil, input: input, layers: layers, classes: classes, sourceClasses: Array(0..<max(classes, 0)))
    }

    // MARK: JSON

    func testEveryPresetRoundTripsThroughJSON() throws {
        var cases: [Architecture] = []
        for family in Architecture.presets + Architecture.internalPresets {
            for (width, input) in [(1.0, InputSpec.fashionMNIST), (0.25, Self.colour32), (0.5, Self.gray8)] {
                cases.append(try Architecture(family: family, classes: 4, width: width, sourceClasses: [3, 1, 4, 5], input: input))
            }
        }
        var named = try Architecture(family: "mobilenet", classes: 3, sourceClasses: [0, 2, 7])
        named.classNames = ["t-shirt", "pullover", "sneaker"]
        cases += [named, hand(.fashionMNIST), hand(Self.colour32)]
        for a in cases {
            let text = a.json
            let back = try Architecture.decode(json: text)
            XCTAssertEqual(back, a, "\(a.family): \(text)")
            XCTAssertEqual(back.json, text, "\(a.family): re-encoding changes the text")
            // Through plain Codable too, and the walk of the decoded description is the same.
            let viaCodable = try JSONDecoder().decode(Architecture.self, from: try JSONEncoder().encode(a))
            XCTAssertEqual(viaCodable, a, a.family)
            XCTAssertEqual(try back.plan().widths, try a.plan().widths, a.family)
            XCTAssertTrue(text.contains("\"version\":2"), text)
        }
    }

    /// Hand-written JSON with omitted fields decodes to the defaults docs/checkpoint-format.md lists.
    func testHandWrittenJSONTakesTheDocumentedDefaults() throws {
        let text = """
        {"version": 2, "input": {"height": 8, "width": 8, "channels": 1, "mean": [0.5], "std": [0.3]},
         "layers": [{"conv": {"filters": 4, "kernel": 5}}, "batch_norm", "relu6", {"depthwise": {}},
                    {"max_pool": {"kernel": 3}}, {"avg_pool": {}},
                    {"residual": {"body": [{"conv": {"filters": 4}}, "batch_norm"]}},
                    {"inverted_residual": {"expand": 8, "filters": 4}},
                    "flatten", {"dense": {"units": 6}}, "relu"],
         "head": {"classes": 2, "source_classes": [4, 9]}}
        """
        let a = try Architecture.decode(json: text)
        XCTAssertNil(a.preset)
        XCTAssertEqual(a.family, "custom")
        XCTAssertEqual(a.classes, 2)
        XCTAssertEqual(a.sourceClasses, [4, 9])
        XCTAssertNil(a.classNames)
        XCTAssertEqual(a.input, Self.gray8)
        let want: [LayerSpec] = [
            .conv(ConvSpec(filters: 4, kernel: 5, stride: 1, padding: 2, bias: false)), .batchNorm, .relu6,
            .depthwise(DepthwiseSpec(kernel: 3, stride: 1, padding: 1, bias: false)),
            .maxPool(PoolSpec(kernel: 3, stride: 3, padding: 0)), .avgPool(PoolSpec(kernel: 2, stride: 2, padding: 0)),
            .residual(ResidualSpec(body: [.conv(ConvSpec(filters: 4, kernel: 3, stride: 1, padding: 1)), .batchNorm],
                                   shortcut: .identity, activation: .relu)),
            .invertedResidual(InvertedResidualSpec(expand: 8, filters: 4, kernel: 3, stride: 1, residual: nil)),
            .flatten, .dense(DenseSpec(units: 6, bias: true)), .relu,
        ]
        XCTAssertEqual(a.layers, want)
        // 8 → max_pool 3 → 2 → avg_pool 2 → 1: the plan's shapes follow.
        let plan = try a.plan()
        XCTAssertEqual(plan.outputShape, [2])
        XCTAssertEqual(plan.invertedResidualAdds, [true])
    }

    // MARK: Version-1 checkpoints

    /// A checkpoint whose `architecture` is the version-1 form loads as the preset at its widths.
    func testVersion1CheckpointLoadsAsItsPreset() throws {
        let input = InputSpec(height: 28, width: 28, channels: 1, mean: [0.286], std: [0.353])
        let cases: [(json: String, preset: String, widths: [Int])] = [
            (#"{"classes":5,"family":"cnn","mean":0.286,"sourceClasses":[0,1,2,3,4],"std":0.353,"widths":[4,5,6,7]}"#,
             "cnn", [4, 5, 6, 7]),
            (#"{"classes":5,"family":"mlp","mean":0.286,"sourceClasses":[0,1,2,3,4],"std":0.353,"widths":[9,3]}"#,
             "mlp", [9, 3]),
            (#"{"classes":5,"family":"resnet","mean":0.286,"sourceClasses":[0,1,2,3,4],"std":0.353,"widths":[5,3,7,9,11,13]}"#,
             "resnet", [5, 3, 7, 9, 11, 13]),
        ]
        for (json, preset, widths) in cases {
            let expected = try Architecture(preset: preset, widths: widths, input: input, classes: 5, sourceClasses: [0, 1, 2, 3, 4])
            let network = try buildNetwork(expected, seed: 8)
            var rng = SprigRNG(seed: 81)
            var file = SafetensorsFile(metadata: ["architecture": json])
            for entry in namedTensors(network) {
                var t = entry.get()
                if entry.get().rank == 1 {
                    for i in t.storage.indices {
                        t.storage[i] = entry.name.hasSuffix("running_var") ? 0.5 + rng.nextFloat() : 0.3 * rng.normal()
                    }
                    entry.set(t)
                }
                file.tensors[entry.name] = try SafetensorsTensor(shape: t.shape, floats: t.storage)
            }
            let path = temporary("v1-\(preset).safetensors")
            defer { try? FileManager.default.removeItem(atPath: path) }
            try file.write(path: path)
            let (loaded, architecture) = try loadCheckpoint(path: path)
            XCTAssertEqual(architecture, expected, preset)
            XCTAssertEqual(architecture.preset, preset)
            XCTAssertEqual(architecture.input, input, preset)
            XCTAssertEqual(architecture.json.contains("\"version\":2"), true)
            for (a, b) in zip(namedTensors(network), namedTensors(loaded)) {
                XCTAssertEqual(a.name, b.name)
                XCTAssertEqual(a.get().storage.map(\.bitPattern), b.get().storage.map(\.bitPattern), "\(preset) \(a.name)")
            }
            let x = Tensor(shape: [2, 28, 28, 1], storage: (0..<(2 * 784)).map { _ in rng.normal() })
            XCTAssertEqual(loaded.forward(x, training: false), network.forward(x, training: false), preset)
        }
        // The cnn widths by hand: conv weights [3][3][Cin][Cout] for 1→4→5→6→7, head [5][7].
        let a = try Architecture.decode(json: cases[0].json)
        let n = try buildNetwork(a, seed: 1)
        let shapes = Dictionary(uniqueKeysWithValues: namedTensors(n).map { ($0.name, $0.get().shape) })
        XCTAssertEqual(shapes["0.weight"], [3, 3, 1, 4])
        XCTAssertEqual(shapes["4.weight"], [3, 3, 4, 5])
        XCTAssertEqual(shapes["8.weight"], [3, 3, 5, 6])
        XCTAssertEqual(shapes["12.weight"], [3, 3, 6, 7])
        XCTAssertEqual(shapes["16.weight"], [5, 7])
    }

    // MARK: Errors name the layer

    func assertSpecError(_ a: Architecture, place: String, contains words: [String], file: StaticString = #filePath,
                         line: UInt = #line) {
        XCTAssertThrowsError(try a.plan(), file: file, line: line) { error in
            guard let e = error as? NetworkSpecError else { return XCTFail("not a NetworkSpecError: \(error)", file: file, line: line) }
            XCTAssertEqual(e.place, place, "\(e)", file: file, line: line)
            for w in words { XCTAssertTrue(e.description.contains(w), "'\(w)' not in: \(e)", file: file, line: line) }
        }
        XCTAssertThrowsError(try buildNetwork(a, seed: 1), file: file, line: line) {
            XCTAssertEqual(($0 as? NetworkSpecError)?.place, place, "\($0)", file: file, line: line)
        }
    }

    func testAKernelLargerThanItsInputIsNamed() {
        let a = custom([.conv(ConvSpec(filters: 4, kernel: 9, padding: 0)), .globalAveragePool])
        assertSpecError(a, place: "layers[0] (conv)", contains: ["layers[0]", "larger than its input"])
        XCTAssertThrowsError(try a.plan()) {
            XCTAssertEqual("\($0)", "layers[0] (conv): kernel 9×9 is larger than its input 8×8 with padding 0")
        }
        // Inside a block, the place is the path to it.
        let nested = custom([.conv(ConvSpec(filters: 4)), .residual(ResidualSpec(body: [
            .conv(ConvSpec(filters: 4, stride: 2)), .maxPool(PoolSpec(kernel: 5)), .conv(ConvSpec(filters: 4))])), .globalAveragePool])
        assertSpecError(nested, place: "layers[1].residual.body[1] (max_pool)", contains: ["larger than its input 4×4"])
        // Padding lets a kernel as large as the padded input fit: 8 + 2·1 = 10 ≥ 9.
        XCTAssertNoThrow(try custom([.conv(ConvSpec(filters: 4, kernel: 9, padding: 1)), .globalAveragePool]).plan())
    }

    func testADenseOnAnUnflattenedMapIsNamed() {
        let a = custom([.conv(ConvSpec(filters: 4)), .dense(DenseSpec(units: 3)), .flatten])
        assertSpecError(a, place: "layers[1] (dense)", contains: ["needs a flat input", "[8, 8, 4]", "flatten or global_average_pool"])
    }

    func testAnIdentityResidualThatChangesItsInputIsNamed() {
        // Channels: body ends in 6 filters on a 4-channel input.
        let channels = custom([.conv(ConvSpec(filters: 4)), .batchNorm, .relu,
                               .residual(ResidualSpec(body: [.conv(ConvSpec(filters: 6)), .batchNorm])), .globalAveragePool])
        assertSpecError(channels, place: "layers[3].residual.body[0] (conv)", contains: ["layers[3]", "6", "4 input channels", "identity"])
        // Resolution: a stride-2 body with the identity shortcut.
        let stride = custom([.conv(ConvSpec(filters: 4)),
                             .residual(ResidualSpec(body: [.conv(ConvSpec(filters: 4, stride: 2)), .batchNorm])), .globalAveragePool])
        assertSpecError(stride, place: "layers[1] (residual)", contains: ["[4, 4, 4]", "[8, 8, 4]", "projection"])
        // An inverted residual told to add where it cannot.
        let inverted = custom([.conv(ConvSpec(filters: 4)),
                               .invertedResidual(InvertedResidualSpec(expand: 8, filters: 6, residual: true)), .globalAveragePool])
        assertSpecError(inverted, place: "layers[1] (inverted_residual)", contains: ["adds its input", "\"residual\": false"])
        // The projection shortcut makes both legal.
        XCTAssertNoThrow(try custom([.conv(ConvSpec(filters: 4)), .residual(ResidualSpec(body: [
            .conv(ConvSpec(filters: 6, stride: 2)), .batchNorm], shortcut: .projection)), .globalAveragePool]).plan())
    }

    func testABackboneThatDoesNotEndFlatIsNamed() {
        assertSpecError(custom([.conv(ConvSpec(filters: 4)), .relu]), place: "head",
                        contains: ["[8, 8, 4]", "global_average_pool or flatten"])
        assertSpecError(custom([]), place: "head", contains: ["[8, 8, 1]"])
    }

    func testClassesZeroIsNamed() throws {
        assertSpecError(custom([.flatten], classes: 0), place: "head", contains: ["classes is 0"])
        let preset = try Architecture(family: "cnn", classes: 0, width: 0.25, sourceClasses: [])
        assertSpecError(preset, place: "head", contains: ["classes is 0"])
    }

    func testAnUnknownLayerKindInJSONIsNamed() throws {
        for layer in [#""swish""#, #"{"swish": {"beta": 1}}"#] {
            let text = #"{"version": 2, "input": {"height": 8, "width": 8, "channels": 1, "mean": [0.5], "std": [0.3]}, "#
                + #""layers": [{"conv": {"filters": 4}}, "batch_norm", "# + layer + #", "global_average_pool"], "#
                + #""head": {"classes": 2, "source_classes": [0, 1]}}"#
            XCTAssertThrowsError(try Architecture.decode(json: text)) { error in
                let message = "\(error)"
                XCTAssertTrue(message.contains("unknown layer 'swish'"), message)
                XCTAssertTrue(message.contains("inverted_residual"), "the message lists the kinds: \(message)")
            }
            // In a checkpoint, the load error names the file and the layer's place.
            let path = try checkpointWithArchitecture(text, name: "unknown")
            defer { try? FileManager.default.removeItem(atPath: path) }
            XCTAssertThrowsError(try loadCheckpoint(path: path)) { error in
                let message = "\(error)"
                XCTAssertTrue(message.contains(path) && message.contains("layers[2]"), message)
            }
        }
        // A parameterless kind given as an object, and a known kind needing fields given as a string.
        XCTAssertThrowsError(try JSONDecoder().decode(LayerSpec.self, from: Data(#""conv""#.utf8))) {
            XCTAssertTrue("\($0)".contains("'conv' needs an object with its fields"), "\($0)")
        }
        XCTAssertEqual(try JSONDecoder().decode(LayerSpec.self, from: Data(#"{"relu6": {}}"#.utf8)), .relu6)
        XCTAssertThrowsError(try JSONDecoder().decode(LayerSpec.self, from: Data(#"{"conv": {"filters": 2}, "relu": {}}"#.utf8))) {
            XCTAssertTrue("\($0)".contains("one key"), "\($0)")
        }
    }

    /// A checkpoint file (one dummy tensor) whose `architecture` is `json`.
    func checkpointWithArchitecture(_ json: String, name: String) throws -> String {
        let path = temporary("\(name).safetensors")
        var file = SafetensorsFile(metadata: ["architecture": json, "format": "sprig-checkpoint-2"])
        file.tensors["0.weight"] = try SafetensorsTensor(shape: [3, 3, 1, 4], floats: [Float](repeating: 0.1, count: 36))
        try file.write(path: path)
        return path
    }

    /// Through a checkpoint, an unknown kind's message says what is wrong ("unknown layer 'swish'"),
    /// as `Architecture.decode` does, not only that layers[2] "has an invalid value".
    func testUnknownLayerKindInACheckpointIsNamed() throws {
        let text = #"{"version": 2, "input": {"height": 8, "width": 8, "channels": 1, "mean": [0.5], "std": [0.3]}, "#
            + #""layers": [{"conv": {"filters": 4}}, "batch_norm", "swish", "global_average_pool"], "#
            + #""head": {"classes": 2, "source_classes": [0, 1]}}"#
        let path = try checkpointWithArchitecture(text, name: "unknown-bug")
        defer { try? FileManager.default.removeItem(atPath: path) }
        XCTAssertThrowsError(try loadCheckpoint(path: path)) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("swish"), "the load error does not name the unknown kind: \(message)")
        }
    }

    /// A checkpoint of a newer description version says why it is refused, as the decoder does:
    /// "version 3 is not one this Sprig reads (2, or the older family form)".
    func testUnsupportedVersionInACheckpointSaysWhy() throws {
        let text = #"{"version": 3, "input": {"height": 8, "width": 8, "channels": 1, "mean": [0.5], "std": [0.3]}, "#
            + #""layers": ["global_average_pool"], "head": {"classes": 2, "source_classes": [0, 1]}}"#
        XCTAssertThrowsError(try Architecture.decode(json: text)) {
            XCTAssertTrue("\($0)".contains("version 3 is not one this Sprig reads"), "\($0)")
        }
        let path = try checkpointWithArchitecture(text, name: "version-bug")
        defer { try? FileManager.default.removeItem(atPath: path) }
        XCTAssertThrowsError(try loadCheckpoint(path: path)) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("version 3"), "the load error does not say which version is unsupported: \(message)")
        }
    }

    // MARK: tensorElements

    /// The hand-written description by hand (input 1 channel; the flatten reads the last map):
    ///   conv 3×3 1→6 + bias 60, BN 6 24, depthwise 3×3·6 + bias 60, BN 24                    = 168
    ///   residual: conv 3×3 6→8 432, BN 32, conv 3×3 8→10 720, BN 40, shortcut 1×1 6→10 60, BN 40 = 1324
    ///   inverted residual: 1×1 10→12 120, BN 48, dw 3×3·12 108, BN 48, 1×1 12→10 120, BN 40    = 484
    ///   dense (flattened map)→7 + bias, head 7→5 + bias 40
    /// 8×8: the last map is 1×1×10, dense 77: 2093. 28×28: 4×4×10 = 160, dense 1127: 3143.
    ///
    /// mobilenet ×0.25 (widths 4; (16,4) (16,6) (24,6) (24,8) (32,8); 32), 1 channel, 5 classes:
    ///   stem 36 + BN 16 = 52; a block c→e→f is c·e + 4e + 9e + 4e + e·f + 4f:
    ///   416 + 456 + 720 + 776 + 1088; conv 1×1 8→32 256 + BN 128; head 32·5 + 5 = 165: 4057.
    func testTensorElementsEqualsHandCountsAndTheBuiltNetwork() throws {
        let mobilenet = try Architecture(family: "mobilenet", classes: 5, width: 0.25, sourceClasses: [0, 1, 2, 3, 4])
        let expected: [(Architecture, Int?)] = [
            (hand(Self.gray8), 2093), (hand(.fashionMNIST), 3143), (hand(Self.colour32), nil),
            (mobilenet, 4057),
            (try Architecture(family: "mobilenet", classes: 5, width: 1, sourceClasses: [0, 1, 2, 3, 4]), nil),
            (try Architecture(family: "mobilenet", classes: 3, width: 0.5, sourceClasses: [0, 1, 2], input: Self.colour32), nil),
        ]
        for (a, hand) in expected {
            let built = try buildNetwork(a, seed: 2)
            let held = namedTensors(built).reduce(0) { $0 + $1.get().count }
            XCTAssertEqual(a.tensorElements, held, "\(a.family) \(a.input.shape)")
            if let hand { XCTAssertEqual(a.tensorElements, hand, "\(a.family) \(a.input.shape)") }
        }
        // A description that does not walk holds nothing.
        XCTAssertEqual(custom([.conv(ConvSpec(filters: 2, kernel: 9, padding: 0)), .flatten]).tensorElements, 0)
    }

    // MARK: withWidths

    /// mobilenet's groups (docs: expansions are their own groups, an adding block's projection is
    /// its input's): stem (tied to block 1's projection), b1.expand, b2.expand, b2.project (tied
    /// to block 3's), b3.expand, b4.expand, b4.project (tied to block 5's), b5.expand, last conv.
    func testWithWidthsOnMobilenetGivesThoseWidthsAndKeepsTheAddFlags() throws {
        let a = try Architecture(family: "mobilenet", classes: 5, sourceClasses: [0, 1, 2, 3, 4])
        XCTAssertEqual(try a.plan().widths, [16, 64, 64, 24, 96, 96, 32, 128, 128])
        XCTAssertEqual(try a.plan().invertedResidualAdds, [true, false, true, false, true])
        let widths = [3, 10, 12, 5, 7, 9, 6, 11, 20]
        let b = try a.withWidths(widths)
        let plan = try b.plan()
        XCTAssertEqual(plan.widths, widths)
        XCTAssertEqual(plan.invertedResidualAdds, [true, false, true, false, true])
        // The description itself, by hand: every block's add is now explicit.
        let blocks = b.layers.compactMap { spec -> InvertedResidualSpec? in
            if case .invertedResidual(let r) = spec { return r } else { return nil }
        }
        XCTAssertEqual(blocks, [
            InvertedResidualSpec(expand: 10, filters: 3, stride: 1, residual: true),
            InvertedResidualSpec(expand: 12, filters: 5, stride: 2, residual: false),
            InvertedResidualSpec(expand: 7, filters: 5, stride: 1, residual: true),
            InvertedResidualSpec(expand: 9, filters: 6, stride: 2, residual: false),
            InvertedResidualSpec(expand: 11, filters: 6, stride: 1, residual: true),
        ])
        XCTAssertEqual(b.layers[0], .conv(ConvSpec(filters: 3)))
        XCTAssertEqual(b.layers[8], .conv(ConvSpec(filters: 20, kernel: 1)))
        // The built network: Residual where a block adds, a plain chain where it does not, and the
        // tensor shapes of those widths.
        let n = try buildNetwork(b, seed: 3)
        XCTAssertTrue(n.layers[3] is Residual && n.layers[5] is Residual && n.layers[7] is Residual)
        XCTAssertTrue(n.layers[4] is Sequential && n.layers[6] is Sequential)
        XCTAssertFalse(n.layers[4] is Residual)
        let shapes = Dictionary(uniqueKeysWithValues: namedTensors(n).map { ($0.name, $0.get().shape) })
        XCTAssertEqual(shapes["0.weight"], [3, 3, 1, 3])
        XCTAssertEqual(shapes["3.body.0.weight"], [1, 1, 3, 10])
        XCTAssertEqual(shapes["3.body.6.weight"], [1, 1, 10, 3])
        XCTAssertEqual(shapes["4.3.weight"], [3, 3, 12])
        XCTAssertEqual(shapes["4.6.weight"], [1, 1, 12, 5])
        XCTAssertEqual(shapes["6.6.weight"], [1, 1, 9, 6])
        XCTAssertEqual(shapes["7.body.6.weight"], [1, 1, 11, 6])
        XCTAssertEqual(shapes["8.weight"], [1, 1, 6, 20])
        XCTAssertEqual(shapes["12.weight"], [5, 20])
        // And it round-trips through JSON with the flags.
        XCTAssertEqual(try Architecture.decode(json: b.json), b)
        // Wrong counts are refused.
        XCTAssertThrowsError(try a.withWidths(Array(widths.dropLast())))
    }

    /// A stride-1 block that does not add (filters ≠ input) keeps not adding when pruning makes
    /// the counts equal; one that adds keeps adding.
    func testWithWidthsKeepsANonAddingBlockNonAdding() throws {
        let a = custom([.conv(ConvSpec(filters: 8)), .batchNorm, .relu6,
                        .invertedResidual(InvertedResidualSpec(expand: 16, filters: 6)),
                        .invertedResidual(InvertedResidualSpec(expand: 12, filters: 6)), .globalAveragePool])
        let plan = try a.plan()
        XCTAssertEqual(plan.invertedResidualAdds, [false, true])
        XCTAssertEqual(plan.widths, [8, 16, 6, 12])  // conv, b1.expand, b1.project (tied to b2's), b2.expand
        let b = try a.withWidths([5, 10, 5, 4])
        XCTAssertEqual(try b.plan().invertedResidualAdds, [false, true])
        XCTAssertEqual(try b.plan().widths, [5, 10, 5, 4])
        let n = try buildNetwork(b, seed: 1)
        XCTAssertTrue(n.layers[3] is Sequential && !(n.layers[3] is Residual))
        XCTAssertTrue(n.layers[4] is Residual)
        // Without the explicit flag, the pruned shapes would have made block 1 add.
        var implicit = b
        implicit.layers[3] = .invertedResidual(InvertedResidualSpec(expand: 10, filters: 5))
        XCTAssertEqual(try implicit.plan().invertedResidualAdds, [true, true])
    }
}
