// The vocabulary of on-device fine-tuning: methods, options, the plan and
// the errors. docs/finetune.md describes the method and the knobs.

/// How the classifier is adapted to the new classes.
public enum FineTuneMethod: UInt8, CaseIterable, Sendable {
    /// Weight imprinting: each class's row is the normalised mean of its
    /// shots' L2-normalised features, times ``FineTuneOptions/scale``. No backprop.
    case imprint = 1
    /// Imprint, then train the head (W, b) on the cached normalised features
    /// with Adam or SGD, pulled toward the imprinted weights.
    case head = 2
    /// TinyTL: imprint, then train every bias of the backbone plus the head,
    /// backpropagating through the whole backbone (Float32 blobs only).
    case bias = 3
    /// Imprint, then train the weights and biases of the last
    /// ``FineTuneOptions/layers`` parameterised layers of the backbone plus the
    /// head, backpropagating through them (Float32 blobs only).
    case last = 4
    /// The seed's second transfer mode: re-initialise every parameterised layer
    /// of the backbone (He-uniform from ``FineTuneOptions/seed``, biases 0), imprint
    /// the head on the random features, then train them all with the head, as
    /// `last` with every layer (Float32 blobs only; Reinitialise.swift).
    case reinit = 5

    public var name: StaticString {
        switch self {
        case .imprint: return "imprint"
        case .head: return "head"
        case .bias: return "bias"
        case .last: return "last"
        case .reinit: return "reinit"
        }
    }

    /// The method called `name` ("imprint", "head", "bias", "last", "reinit"), or nil.
    public init?(name: UnsafeRawBufferPointer) {
        for m in FineTuneMethod.allCases where bytesEqual(name, m.name) {
            self = m
            return
        }
        return nil
    }

    /// Augmentation level the plan assumes when none is given: 1 for `head`
    /// (each shot plus its four 1-pixel shifts), 0 otherwise (`bias`, `last` and `reinit`
    /// run the backbone forward and backward for every sample of every epoch,
    /// so each copy costs as much as a shot).
    public var defaultAugmentation: Int { self == .head ? 1 : 0 }

    /// The backbone's step size when none is given: 0.01 for `last`, which on the
    /// DAP-pruned nets beat 0.001 by 3–5 points at 5 shots; 0.003 for `reinit`
    /// (random weights from scratch); 0.001 for `bias`
    /// (docs/finetune.md, "last on a mixed int8 blob" and "reinit").
    public var defaultBackboneLearningRate: Float { defaultBackboneLearningRate(optimizer: .adam) }

    /// The backbone's step size when none is given, for `optimizer`. With Adam
    /// as above. With SGD (momentum 0.9) `last` takes 0.5: on the DAP-10% mixed
    /// int8 cnn at 5 shots it gave 79.4, 81.2, 81.8 and 82.2% at 0.1, 0.3, 0.5
    /// and 1 against Adam's 82.4%, and diverged at 2, so 0.5 keeps a margin
    /// (docs/finetune.md, "`last` in an SGD plan"). `bias` and `reinit` keep their
    /// Adam values under SGD: not measured.
    public func defaultBackboneLearningRate(optimizer: HeadOptimizer) -> Float {
        switch (self, optimizer) {
        case (.last, .adam): return 0.01
        case (.last, .sgd): return 0.5
        case (.reinit, _): return 0.003
        default: return 0.001
        }
    }

    /// True for the methods that train inside the backbone (`bias`, `last`, `reinit`).
    public var trainsBackbone: Bool { self == .bias || self == .last || self == .reinit }
}

/// The optimizer of the trained methods (`head`, `bias`, `last`).
public enum HeadOptimizer: UInt8, Sendable {
    /// Adam (β1 0.9, β2 0.999, ε 1e-8) with bias correction.
    case adam = 1
    /// SGD with momentum ``FineTuneOptions/momentum``.
    case sgd = 2
}

/// The knobs of fine-tuning, with the defaults of docs/finetune.md.
///
/// ```swift
/// var options = FineTuneOptions(method: .head)
/// options.seed = 7
/// try tuner.fineTune(shots: pixels, labels: labels, classCount: 5, options: options)
/// ```
public struct FineTuneOptions: Equatable, Sendable {
    public var method: FineTuneMethod
    /// Passes over the samples (`head`, `bias`, `last`). 1 … 10,000.
    public var epochs: Int
    /// Step size of the head (W, b). Finite, > 0, ≤ 10.
    public var learningRate: Float
    /// Step size of the backbone's parameters (`bias`, `last`). Finite, > 0, ≤ 10.
    public var backboneLearningRate: Float
    /// Parameterised layers (Dense, Conv2D, DepthwiseConv2D) of the backbone
    /// that `last` trains, counted back from the head. 1 … 255. (`reinit` trains
    /// every layer and reads no count.)
    public var layers: Int
    public var optimizer: HeadOptimizer
    /// SGD momentum, 0 ≤ m < 1.
    public var momentum: Float
    /// Samples per step; 0 = all cached samples (full batch). With a smaller
    /// batch the order is shuffled each epoch by a generator seeded with ``seed``.
    public var batchSize: Int
    /// Length of each imprinted row: the cosine classifier's scale. Finite, > 0, ≤ 1,000.
    public var scale: Float
    /// Strength λ of the pull toward the imprinted weights, `λ/2·‖W − W₀‖²`. Finite, ≥ 0.
    public var anchor: Float
    /// Shifted copies of every shot: 0 none; 1 adds the four 1-pixel shifts;
    /// 2 adds the four 2-pixel shifts too. Needs a `[H][W][C]` input.
    public var augmentation: Int
    /// Seeds the batch order. The same blob, shots and options give a byte-identical tuned blob.
    public var seed: UInt64

    /// The defaults for `method` with `optimizer`. ``FineTuner/plannedOptions(method:layers:augmentation:)``
    /// gives the ones that fit a blob's plan.
    public init(method: FineTuneMethod = .head, optimizer: HeadOptimizer = .adam) {
        self.method = method
        // Chosen on Fashion-MNIST 5-way 5-shot, classes 5–9, with a backbone
        // trained on classes 0–4 (docs/finetune.md, "Knobs").
        epochs = 30
        learningRate = 0.05
        backboneLearningRate = method.defaultBackboneLearningRate(optimizer: optimizer)
        layers = 1
        self.optimizer = optimizer
        momentum = 0.9
        batchSize = 32
        scale = 10
        anchor = 0
        augmentation = method.defaultAugmentation
        seed = 0
    }
}

/// What a fine-tuning arena was sized for: its bytes, the most classes and
/// shots per class it holds, and (plan record version 1) the augmentation
/// level and the most layers `last` may train. Read from the blob header
/// (`finetune_arena_bytes`, `finetune_max_classes`, `finetune_max_shots`,
/// `finetune_plan_version`, `finetune_augmentation`, `finetune_max_layers`), or
/// computed with ``FineTunePlan/required(model:maxClasses:maxShots:method:augmentation:layers:optimizer:)``.
public struct FineTunePlan: Equatable, Sendable {
    public var arenaBytes: Int
    public var maxClasses: Int
    public var maxShots: Int
    /// The highest augmentation level the plan was sized for; nil for a plan
    /// written before the field existed (version 0: unknown).
    public var augmentation: Int?
    /// The most layers `last` may train (0: `last` was not planned); `reinit`
    /// needs it to reach every parameterised layer of the backbone; nil for a
    /// version-0 plan (unknown: only the bytes are checked).
    public var maxLayers: Int?

    public init(arenaBytes: Int, maxClasses: Int, maxShots: Int, augmentation: Int? = nil, maxLayers: Int? = nil) {
        self.arenaBytes = arenaBytes
        self.maxClasses = maxClasses
        self.maxShots = maxShots
        self.augmentation = augmentation
        self.maxLayers = maxLayers
    }

    /// The plan in the blob's header, or nil when the blob has none.
    public init?(model: Model) {
        guard model.finetuneArenaBytes > 0 else { return nil }
        let recorded = model.finetunePlanVersion >= 1
        self.init(arenaBytes: model.finetuneArenaBytes, maxClasses: model.finetuneMaxClasses,
                  maxShots: model.finetuneMaxShots, augmentation: recorded ? model.finetuneAugmentation : nil,
                  maxLayers: recorded ? model.finetuneMaxLayers : nil)
    }

    /// The augmentation level to use for `method` when the caller names none:
    /// the method's default, lowered to the level the plan was sized for.
    ///
    /// ```swift
    /// plan.augmentation = 0
    /// plan.defaultAugmentation(for: .head)   // 0, not head's usual 1
    /// ```
    public func defaultAugmentation(for method: FineTuneMethod) -> Int {
        min(method.defaultAugmentation, augmentation ?? method.defaultAugmentation)
    }

    /// A plan that holds both `self` and `other` (same classes and shots): the
    /// larger bytes, augmentation level and layer count.
    public func covering(_ other: FineTunePlan) -> FineTunePlan {
        func larger(_ a: Int?, _ b: Int?) -> Int? {
            guard let a, let b else { return nil }
            return max(a, b)
        }
        return FineTunePlan(arenaBytes: max(arenaBytes, other.arenaBytes), maxClasses: max(maxClasses, other.maxClasses),
                            maxShots: max(maxShots, other.maxShots), augmentation: larger(augmentation, other.augmentation),
                            maxLayers: larger(maxLayers, other.maxLayers))
    }
}

/// A knob of ``FineTuneOptions``, named in errors.
public enum FineTuneOption: UInt8, Sendable {
    case epochs, learningRate, momentum, batchSize, scale, anchor, augmentation, maxClasses, maxShots
    case backboneLearningRate, layers

    public var name: StaticString {
        switch self {
        case .epochs: return "epochs"
        case .learningRate: return "learning rate"
        case .momentum: return "momentum"
        case .batchSize: return "batch size"
        case .scale: return "scale"
        case .anchor: return "anchor"
        case .augmentation: return "augmentation"
        case .maxClasses: return "max classes"
        case .maxShots: return "max shots"
        case .backboneLearningRate: return "backbone learning rate"
        case .layers: return "layers"
        }
    }
}

/// A limit of format version 1 that a tuned blob could pass.
public enum FormatLimit: UInt8, Sendable {
    case tensors, ops, fileBytes, arenaBytes

    public var name: StaticString {
        switch self {
        case .tensors: return "tensor count"
        case .ops: return "op count"
        case .fileBytes: return "file_bytes"
        case .arenaBytes: return "arena bytes"
        }
    }
}

/// Why fine-tuning refused. Every case is raised by a prepare step, before
/// the arena, the model or any output buffer changes.
public enum FineTuneError: Equatable, Sendable {
    /// No Dense op reaches the graph output through only Softmax and
    /// Dequantize ops; `op` is where the walk back from the output stopped (-1: no output).
    case noClassifierHead(op: Int)
    /// Fine-tuning needs exactly one graph input and one graph output.
    case ioCount(inputs: Int, outputs: Int)
    /// Op `op` runs after the classifier but is not part of it.
    case opAfterHead(op: Int)
    /// The blob has no fine-tuning plan and the caller gave none.
    case noPlan
    /// More classes than the plan holds.
    case tooManyClasses(requested: Int, planned: Int)
    /// Class `classIndex` has more shots than the plan holds per class.
    case tooManyShots(classIndex: Int, requested: Int, planned: Int)
    /// The method (with its augmentation) needs more arena bytes than the plan reserves.
    case planTooSmall(need: Int, planned: Int)
    /// No shots were given.
    case noShots
    /// The shot buffer is not a whole number of images of the model's input size.
    case shotSizeMismatch(expected: Int, found: Int)
    /// Shots and labels disagree in number.
    case labelCountMismatch(shots: Int, labels: Int)
    /// Shot `shot` has a label outside `0 ..< classes`.
    case labelOutOfRange(shot: Int, label: Int, classes: Int)
    /// Class `classIndex` (below the class count) has no shot.
    case classWithoutShots(classIndex: Int)
    /// The method trains inside the backbone, which needs a Float32 blob.
    case methodNeedsFloat32(method: FineTuneMethod)
    /// `last` was asked to train more layers than the plan was sized for.
    case tooManyLayers(requested: Int, planned: Int)
    /// `reinit` trains all `layers` parameterised layers of the backbone, and
    /// the plan was sized for fewer (`planned`; 0: for no backbone training).
    case reinitNotPlanned(layers: Int, planned: Int)
    /// `last` was asked to train more layers than the backbone has
    /// (Dense, Conv2D and DepthwiseConv2D ops before the head).
    case notEnoughLayers(requested: Int, available: Int)
    /// `bias` found no backbone layer with a bias.
    case noBiasToTrain
    /// Op `op` lies between the first trained layer and the features, and has
    /// no backward in this runtime (or does not lead to the features).
    case cannotBackprop(op: Int)
    /// An option is outside its range (`value` as given; floats rounded toward zero).
    case invalidOption(option: FineTuneOption, value: Int)
    /// Augmentation shifts need an image input `[H][W][C]`; this input has `rank` dims.
    case augmentationNeedsImage(rank: Int)
    /// The class names are not one per class.
    case classNamesMismatch(names: Int, classes: Int)
    /// The tuned blob was asked for before a successful fine-tune.
    case notTuned
    /// The caller's output buffer is smaller than the tuned blob.
    case bufferTooSmall(need: Int, have: Int)
    /// The tuned blob would pass a limit of the format.
    case formatLimit(limit: FormatLimit, value: Int, maximum: Int)

    /// One sentence naming the problem and its values.
    public var message: String { messageString(write) }

    /// Writes ``message`` into `w` (see ``SprigError/write(to:)``).
    public func write(to w: inout MessageWriter) {
        switch self {
        case let .noClassifierHead(op):
            w.say("no classifier head: the graph output is not computed by a Dense op followed only by Softmax/Dequantize (the walk stopped at op #%)", op)
        case let .ioCount(inputs, outputs):
            w.say("fine-tuning needs one input and one output; the graph has % and %", inputs, outputs)
        case let .opAfterHead(op):
            w.say("op #% runs after the classifier but is not part of it", op)
        case .noPlan:
            w.text("finetune plan: the blob has no fine-tuning plan (finetune_arena_bytes is 0)")
        case let .tooManyClasses(requested, planned):
            w.say("finetune_max_classes: % classes, the plan holds %", requested, planned)
        case let .tooManyShots(classIndex, requested, planned):
            w.say("finetune_max_shots: class % has % shots, the plan holds % per class", classIndex, requested, planned)
        case let .planTooSmall(need, planned):
            w.say("finetune_arena_bytes: the method needs % bytes, the plan reserves %", need, planned)
        case .noShots:
            w.text("no shots: fine-tuning needs at least one labelled image per class")
        case let .shotSizeMismatch(expected, found):
            w.say("shots: % bytes is not a whole number of %-pixel images", found, expected)
        case let .labelCountMismatch(shots, labels):
            w.say("labels: % labels for % shots", labels, shots)
        case let .labelOutOfRange(shot, label, classes):
            w.say("label[%]: is %, the classes are 0..<%", shot, label, classes)
        case let .classWithoutShots(classIndex):
            w.say("labels: class % has no shot", classIndex)
        case let .methodNeedsFloat32(method):
            w.text("method "); w.text(method.name)
            w.text(" trains the backbone and needs a Float32 blob; this one is int8 (its backbone stays integer-only: use imprint or head)")
        case let .tooManyLayers(requested, planned):
            w.say("finetune_max_layers: last with % layers, the plan holds %", requested, planned)
            if planned == 0 { w.text(" (the blob was not planned for last)") }
        case let .reinitNotPlanned(layers, planned):
            w.say("finetune_max_layers: reinit trains all % layers of the backbone, the plan holds %", layers, planned)
            w.text(" (the blob was not planned for reinit)")
        case let .notEnoughLayers(requested, available):
            w.say("layers: last with % layers, the backbone has % (Dense, Conv2D, DepthwiseConv2D)", requested, available)
        case .noBiasToTrain:
            w.text("method bias: no layer of the backbone has a bias")
        case let .cannotBackprop(op):
            w.say("op #% lies between the trained layers and the features and has no backward (or does not reach them)", op)
        case let .invalidOption(option, value):
            w.text(option.name); w.say(": % is out of range", value)
        case let .augmentationNeedsImage(rank):
            w.say("augmentation shifts need an image input [H][W][C]; the input has rank %", rank)
        case let .classNamesMismatch(names, classes):
            w.say("class names: % names for % classes", names, classes)
        case .notTuned:
            w.text("no tuned model: fine-tune first")
        case let .bufferTooSmall(need, have):
            w.say("output buffer: the tuned blob needs % bytes, the buffer has %", need, have)
        case let .formatLimit(limit, value, maximum):
            w.text("tuned blob: "); w.text(limit.name); w.say(" would be %, more than the format's %", value, maximum)
        }
    }
}

/// True when `bytes` equals the UTF-8 of `text`.
func bytesEqual(_ bytes: UnsafeRawBufferPointer, _ text: StaticString) -> Bool {
    guard bytes.count == text.utf8CodeUnitCount else { return false }
    let p = text.utf8Start
    var i = 0
    while i < bytes.count {
        if bytes[i] != p[i] { return false }
        i &+= 1
    }
    return true
}
