// Few-shot episodes on the device runtime: the measurement behind `sprig finetune`,
// `sprig demo` and `sprig transfer`'s inherited arm. One implementation of every
// method: the runtime's own FineTuner, inside one arena of the blob's fine-tuning plan.
//
//   for e in 0 ..< episodes:
//       shots  = K per class from `train` (EpisodeSampler, seed + e)
//       tune   = FineTuner.fineTune(shots)            (options.seed = seed + e)
//       score  = accuracy over every image of `test`  (features once for a frozen backbone)

import Dispatch
import Foundation
import SprigRuntime
import SprigTrain

/// A few-shot measurement's settings; the defaults are the device's.
public struct FewShotSettings: Sendable {
    public var options: FineTuneOptions
    public var shots = 5
    public var episodes = 10
    /// Episode e draws its shots and its training order from `seed + e`.
    public var seed: UInt64 = 0
    /// Shift copies per shot (nil: the plan's default for the method).
    public var augmentation: Int?
    /// The optimizer (nil: Adam when the plan holds it, else SGD, as on the
    /// device); it replaces `options.optimizer`.
    public var optimizer: HeadOptimizer?
    /// The backbone's step size (nil: the method's default for the optimizer);
    /// it replaces `options.backboneLearningRate`.
    public var backboneLearningRate: Float?
    /// Ignore the blob's plan and size one for this request (host simulation only).
    public var replan = false
    /// The names of the new classes, in the order of `classes`, for the tuned blob's labels
    /// (from the data: an image folder's folder names, …). Nil: looked up in the blob's labels.
    public var classNames: [String]?

    public init(method: FineTuneMethod = .head) {
        options = FineTuneOptions(method: method)
    }
}

/// What a run of few-shot episodes on the device runtime measured.
public struct FewShotReport: Sendable {
    public var method: FineTuneMethod
    public var options: FineTuneOptions
    public var classes: Int
    public var shots: Int
    public var testCount: Int
    public var accuracies: [Double]
    /// Wall time of each adaptation.
    public var seconds: [Double]
    public var planBytes: Int
    public var arenaUsed: Int
    /// The tuned blob of episode 0, when asked for.
    public var tunedBlob: [UInt8]?
    public var lossInitial: Float
    public var lossFinal: Float
    /// Set when the plan was sized here (no plan in the blob, or `replan`).
    public var planNote: String?

    public var mean: Double { accuracies.reduce(0, +) / Double(max(accuracies.count, 1)) }
    public var meanSeconds: Double { seconds.reduce(0, +) / Double(max(seconds.count, 1)) }
}

/// A pipeline failure, in one sentence naming the file and what is at fault.
public struct PipelineError: Error, CustomStringConvertible, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Few-shot requests the data or the blob's plan cannot meet; the CLI names its options.
public enum FewShotError: Error, Equatable, CustomStringConvertible {
    /// `class` (as the user numbers it) has `available` training images, fewer than `shots`.
    case notEnoughImages(class: Int, available: Int, shots: Int)
    /// The plan of the blob at `path` reserves `planned` shots per class; `class` asks `requested`.
    case tooManyShots(path: String, class: Int, planned: Int, requested: Int)
    /// The plan's arena cannot be allocated.
    case arena(path: String, bytes: Int)

    public var description: String {
        switch self {
        case .notEnoughImages(let c, let available, let shots):
            return "\(shots) shots: class \(c) has only \(available) training images"
        case .tooManyShots(let path, let c, let planned, let requested):
            return "\(path): finetune_max_shots: is \(planned), \(requested) shots ask more for class \(c)"
        case .arena(let path, let bytes):
            return "\(path): finetune_arena_bytes: is \(bytes), more memory than can be allocated"
        }
    }
}

/// The name of a method as the CLI spells it.
public func methodName(_ m: FineTuneMethod) -> String {
    switch m {
    case .imprint: return "imprint"
    case .head: return "head"
    case .bias: return "bias"
    case .last: return "last"
    case .reinit: return "reinit"
    }
}

/// Runs `settings.episodes` episodes of `blob` adapting to the classes of `train`/`test`
/// (labels 0 ..< n, already filtered; `classes` are their original labels, for messages
/// and the tuned blob's names).
///
/// - Parameters:
///   - path: names the blob in errors.
///   - keepTunedBlob: return the tuned blob of episode 0.
///   - progress: called after each episode with (episodes done, mean accuracy so far).
/// - Throws: ``FewShotError`` for too few images of a class, more shots than the plan, an
///   arena that cannot be allocated; ``PipelineError`` naming the blob for anything else the
///   runtime refuses, or images of another size than the blob's input.
public func fewShotEpisodes(blob bytes: [UInt8], path: String, train: Dataset, test: Dataset, classes: [Int],
                            settings: FewShotSettings, keepTunedBlob: Bool = false,
                            progress: (Int, Double) -> Void = { _, _ in }) throws -> FewShotReport {
    var options = settings.options
    let method = options.method
    let blob = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 16), alignment: 16)
    defer { blob.deallocate() }
    blob.copyBytes(from: bytes)
    func fail(_ e: SprigError) -> PipelineError { PipelineError("\(path): \(e.message)") }
    let model: Model
    do {
        model = try Model(bytes: UnsafeRawBufferPointer(rebasing: blob[0..<bytes.count]))
    } catch {
        throw fail(error)
    }
    // The plan: the blob's, or one sized for this request.
    var plan = settings.replan ? nil : FineTunePlan(model: model)
    var planNote: String?
    if plan == nil {
        do {
            plan = try FineTunePlan.required(model: model, maxClasses: classes.count, maxShots: settings.shots, method: method,
                                             augmentation: settings.augmentation, layers: options.layers,
                                             optimizer: settings.optimizer ?? .adam)
        } catch {
            throw fail(error)
        }
        planNote = (settings.replan ? "--replan" : "no fine-tuning plan in the blob")
            + ": sized one for \(classes.count) classes × \(settings.shots) shots, \(methodName(method))"
            + (method == .last ? " \(options.layers)" : "")
    }
    guard let plan else { throw PipelineError("\(path): no fine-tuning plan") }
    options.augmentation = settings.augmentation ?? plan.defaultAugmentation(for: method)
    // A plan the file declares may be more than this machine has: refuse it, never abort.
    guard let start = calloc(1, max(plan.arenaBytes, 16)) else { throw FewShotError.arena(path: path, bytes: plan.arenaBytes) }
    defer { free(start) }
    let arena = UnsafeMutableRawBufferPointer(start: start, count: max(plan.arenaBytes, 16))
    var tuner: FineTuner
    do {
        tuner = try FineTuner(model: model, arena: UnsafeMutableRawBufferPointer(rebasing: arena[0..<plan.arenaBytes]), plan: plan)
    } catch {
        throw fail(error)
    }
    // The device's defaults for this plan, unless named.
    let planned = tuner.plannedOptions(method: method, layers: options.layers, augmentation: options.augmentation)
    options.optimizer = settings.optimizer ?? planned.optimizer
    options.backboneLearningRate = settings.backboneLearningRate
        ?? method.defaultBackboneLearningRate(optimizer: options.optimizer)
    guard test.valuesPerImage == tuner.inputElements, train.valuesPerImage == tuner.inputElements else {
        let input = model.input(0).map { model.tensor($0.tensor) }
        let dims = input.map { t in Array([t.dims.0, t.dims.1, t.dims.2, t.dims.3].prefix(t.rank)) } ?? []
        throw PipelineError("\(path) takes \(shapeText(dims)) images, but the data's are \(shapeText(train.shape))")
    }
    let sampler = EpisodeSampler(dataset: train)

    // Test features: once for a frozen backbone, after every episode for bias and last.
    let d = tuner.featureCount
    var testFeatures = [Float](repeating: 0, count: test.count * d)
    func computeTestFeatures() throws {
        try testFeatures.withUnsafeMutableBufferPointer { all in
            for i in 0..<test.count {
                let image = Array(test.image(i))
                do {
                    try image.withUnsafeBytes { p in
                        try tuner.features(pixels: p, into: UnsafeMutableBufferPointer(rebasing: all[(i * d)..<((i + 1) * d)]))
                    }
                } catch let e as SprigError {
                    throw fail(e)
                }
            }
        }
    }
    if !method.trainsBackbone { try computeTestFeatures() }

    // Class names for the tuned blob: the original labels of these classes, if the blob has them.
    var names = classes.map { "class\($0)" }
    if let given = settings.classNames, given.count == classes.count {
        names = given
    } else if let labels = model.metadata(key: "labels") {
        let all = String(decoding: labels, as: UTF8.self).split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        if classes.allSatisfy({ $0 < all.count }) { names = classes.map { all[$0] } }
    }

    var accuracies: [Double] = [], seconds: [Double] = []
    var tuned: [UInt8]?
    var used = 0
    for e in 0..<settings.episodes {
        let episode: Episode
        do {
            episode = try sampler.sample(nWay: classes.count, kShot: settings.shots, query: .perClass(0), seed: settings.seed &+ UInt64(e))
        } catch DataError.notEnoughSamples(let c, let available, _) where c < classes.count {
            // The sampler counts in episode labels (0 ..< n); name the class as the user gave it.
            throw FewShotError.notEnoughImages(class: classes[c], available: available, shots: settings.shots)
        }
        var pixels: [UInt8] = []
        pixels.reserveCapacity(episode.supportIndices.count * tuner.inputElements)
        for i in episode.supportIndices { pixels += train.image(i) }
        let labels = episode.supportLabels.map { UInt8($0) }
        options.seed = settings.seed &+ UInt64(e)
        let start = DispatchTime.now().uptimeNanoseconds
        do {
            try pixels.withUnsafeBytes { p in
                try labels.withUnsafeBytes { l in
                    try tuner.fineTune(shots: p, labels: l, classCount: classes.count, options: options)
                }
            }
        } catch SprigError.fineTune(.tooManyShots(let k, let requested, let planned)) where k < classes.count {
            throw FewShotError.tooManyShots(path: path, class: classes[k], planned: planned, requested: requested)
        } catch let error as SprigError {
            throw fail(error)
        }
        seconds.append(Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9)
        used = tuner.layout?.total ?? 0
        if method.trainsBackbone { try computeTestFeatures() }
        var correct = 0
        try testFeatures.withUnsafeBufferPointer { all in
            for i in 0..<test.count {
                do {
                    let k = try tuner.classify(features: UnsafeBufferPointer(rebasing: all[(i * d)..<((i + 1) * d)]))
                    if k == Int(test.labels[i]) { correct += 1 }
                } catch let e as SprigError {
                    throw fail(e)
                }
            }
        }
        accuracies.append(Double(correct) / Double(max(test.count, 1)))
        if e == 0 && keepTunedBlob {
            var nameBytes = Array(names.joined(separator: ",").utf8)
            tuned = try nameBytes.withUnsafeMutableBytes { n in
                do {
                    let size = try tuner.tunedBlobBytes(classNames: UnsafeRawBufferPointer(n))
                    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 16)
                    defer { buffer.deallocate() }
                    let written = try tuner.writeTunedBlob(into: buffer, classNames: UnsafeRawBufferPointer(n))
                    return Array(buffer[0..<written])
                } catch let e as SprigError {
                    throw PipelineError("tuned blob: \(e.message)")
                }
            }
        }
        progress(e + 1, accuracies.reduce(0, +) / Double(accuracies.count))
    }
    return FewShotReport(method: method, options: options, classes: classes.count, shots: settings.shots, testCount: test.count,
                         accuracies: accuracies, seconds: seconds, planBytes: plan.arenaBytes, arenaUsed: used, tunedBlob: tuned,
                         lossInitial: tuner.loss.initial, lossFinal: tuner.loss.final, planNote: planNote)
}
