// `sprig fixtures`: regenerates the reference fixtures in Tests/Fixtures.

import Foundation
import SprigCompile
import SprigRuntime
import SprigWriter
import SprigTrain

let fixturesCommand = Command(
    name: "fixtures",
    summary: "Regenerate the reference fixtures (ref-cnn blobs, inputs, expected outputs).",
    usage: "sprig fixtures [--out DIR] [--data builtin|fashion-mnist|DIR] [--images N]",
    positionals: 0...0,
    options: [
        OptionSpec(name: "out", value: "DIR", help: "Where to write the fixtures.", defaultValue: "Tests/Fixtures"),
        OptionSpec(name: "data", value: "SOURCE", help: "Where the reference images come from.", defaultValue: "builtin"),
        OptionSpec(name: "images", value: "N", help: "Reference images (the first N of the test split).", defaultValue: "16"),
        OptionSpec(name: "calibration", value: "N", help: "Calibration images for q8 (test split, after the references).", defaultValue: "1000"),
        OptionSpec(name: "epochs", value: "N", help: "Training epochs of the reference CNN.", defaultValue: "3"),
    ],
    details: """
        Writes ref-cnn-f32.sprig (the reference CNN trained on the training split of all ten classes,
        family `refcnn` in SprigTrain/Networks), its int8
        twin ref-cnn-q8.sprig calibrated on real images, ref-input.idx and ref-labels.idx (uncompressed
        Fashion-MNIST test images), and ref-expected-f32.txt / ref-expected-q8.txt: for each image, the
        output vector as hexadecimal IEEE-754 bit patterns (exact), then the argmax. It also writes
        all-ops-f32.sprig and all-ops-q8.sprig, a tiny network that uses every op.
        """,
    run: runFixtures)

func runFixtures(_ a: ParsedArguments) throws {
    let out = a.string("out", default: "Tests/Fixtures")
    let count = try a.int("images", default: 16, range: 1...1000)
    let calibrationCount = try a.int("calibration", default: 1000, range: 1...10000)
    let source = DataSource(argument: a.string("data", default: "builtin"))
    let test = try source.load().test
    guard test.count >= count + 1 else {
        throw CommandError(description: "data \(source): the test split has \(test.count) images, need more than \(count)")
    }
    try Interrupt.createOutputDirectory(out)
    let references = test.subset(Array(0..<count))
    try references.write(imagesPath: "\(out)/ref-input.idx", labelsPath: "\(out)/ref-labels.idx")
    let calibration = (count..<min(test.count, count + calibrationCount)).map { Array(test.image($0)) }
    let images = (0..<count).map { Array(references.image($0)) }

    // The reference CNN, trained for a few epochs on the training split of every class.
    let trainSplit = try source.load().train
    let architecture = try Architecture(family: "refcnn", classes: 10, sourceClasses: Array(0..<10))
    let reference = try buildNetwork(architecture, seed: 1)
    var options = TrainOptions()
    options.epochs = try a.int("epochs", default: 3, range: 1...100)
    options.augmentShift = 1
    let result = try SprigTrain.train(reference, on: trainSplit, options: options)
    printError(String(format: "fixtures: trained refcnn for %d epochs on %d images (train accuracy %.3f)",
                      options.epochs, trainSplit.count, result.trainAccuracy))
    let referenceBuilder = try lowerNetwork(try loweringSteps(reference), input: architecture.input, name: "ref-cnn",
                                            labels: ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt",
                                                     "sneaker", "bag", "boot"])
    for (name, builder) in [("ref-cnn", referenceBuilder), ("all-ops", allOpsNetwork(seed: 3))] {
        let samples = name == "ref-cnn" ? calibration : allOpsSamples(calibrationCount)
        let ranges = try calibrate(blob: try builder.build(), samples: samples)
        let f32 = try withFineTunePlan(builder, maxClasses: 10, maxShots: 20)
        let q8 = try withFineTunePlan(try quantizeNetwork(builder, ranges: ranges), maxClasses: 10, maxShots: 20)
        for (precision, blob) in [("f32", f32), ("q8", q8)] {
            try writeFileAtomically(blob, to: "\(out)/\(name)-\(precision).sprig")
            if name == "ref-cnn" {
                let lines = try runBlob(blob, images: images).map { outputs in
                    outputs.map { String(format: "%08x", $0.bitPattern) }.joined(separator: " ")
                        + " argmax=\(argmaxIndex(outputs))"
                }
                try writeFileAtomically(Array((lines.joined(separator: "\n") + "\n").utf8),
                                        to: "\(out)/\(name)-expected-\(precision).txt")
            }
            print("wrote \(out)/\(name)-\(precision).sprig (\(blob.count) bytes)")
        }
    }
    // Five shots of each of classes 5-9 (labels 0-4) from the train split, for fine-tuning conformance.
    let train = try source.load().train.filtered(classes: [5, 6, 7, 8, 9])
    var shots: [Int] = []
    for c in 0..<5 { shots += (0..<train.count).filter { Int(train.labels[$0]) == c }.prefix(5) }
    try train.subset(shots).write(imagesPath: "\(out)/shots-input.idx", labelsPath: "\(out)/shots-labels.idx")
    // Inputs of the all-ops network, for the cross-target conformance suite.
    let small = allOpsSamples(8)
    try writeFileAtomically(try IDX.encode(IDXArray(dimensions: [small.count, 8, 8, 2], data: small.flatMap { $0 })),
                            to: "\(out)/all-ops-input.idx")
    print("wrote \(out)/ref-input.idx, ref-labels.idx (\(count) images), all-ops-input.idx")
}

/// Deterministic 8×8×2 inputs for the all-ops network.
func allOpsSamples(_ n: Int) -> [[UInt8]] {
    var rng = SplitMix64(seed: 17)
    return (0..<min(n, 64)).map { _ in (0..<128).map { _ in UInt8(truncatingIfNeeded: rng.next()) } }
}

/// Runs a blob on 8-bit images and returns every output vector.
func runBlob(_ blob: [UInt8], images: [[UInt8]]) throws -> [[Float]] {
    let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: blob.count, alignment: 16)
    defer { bytes.deallocate() }
    bytes.copyBytes(from: blob)
    let model = try Model(bytes: UnsafeRawBufferPointer(bytes))
    let arena = UnsafeMutableRawBufferPointer.allocate(byteCount: max(model.arenaBytes, 16), alignment: 16)
    defer { arena.deallocate() }
    let interpreter = try Interpreter(model: model, arena: arena)
    return try images.map { image in
        try image.withUnsafeBytes { try interpreter.setInput(pixels: $0) }
        interpreter.invoke()
        return (0..<interpreter.outputCount).map { interpreter.output($0) }
    }
}

func argmaxIndex(_ v: [Float]) -> Int {
    var best = 0
    for i in v.indices where v[i] > v[best] { best = i }
    return best
}

/// Builds `builder` with a fine-tuning plan (method `head`) sized for the given classes and shots.
/// A network without a classifier head (the all-ops network) is built without a plan.
func withFineTunePlan(_ builder: BlobBuilder, maxClasses: Int, maxShots: Int) throws -> [UInt8] {
    let plain = try builder.build()
    let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: plain.count, alignment: 16)
    defer { bytes.deallocate() }
    bytes.copyBytes(from: plain)
    let model = try Model(bytes: UnsafeRawBufferPointer(bytes))
    guard let plan = try? FineTunePlan.required(model: model, maxClasses: maxClasses, maxShots: maxShots, method: .head) else {
        return plain
    }
    var planned = builder
    planned.finetune = (plan.arenaBytes, plan.maxClasses, plan.maxShots)
    planned.finetuneDetail = (plan.augmentation ?? 0, plan.maxLayers ?? 0)
    return try planned.build()
}
