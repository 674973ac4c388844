// The fine-tuning arena: one caller buffer, carved into regions by a plan.
//
//   0                 A = model.arenaBytes
//   +-----------------+  inference: the backbone runs here (the blob's own plan)
//   | inference       |
//   +-----------------+  order      N × i32     sample order of the current epoch (bias, last)
//   +-----------------+  features   N × D f32   cached L2-normalised features      (head)
//   | features        |             N = maxClasses · maxShots · copies,
//   |                 |             copies = 1 + 4 · augmentation
//   +-----------------+  labels     N × i32     class of each cached feature      (head)
//   | labels | order  |  order      N × i32     sample order of the current epoch (head)
//   +-----------------+  weights    C × D f32   the new classifier rows, C = maxClasses
//   | W | b           |  bias       C f32
//   +-----------------+  anchor     C × D f32   the imprinted W₀ the head is pulled to (head)
//   | W₀              |                                                          (head, bias, last)
//   +-----------------+  grads      C × D + C f32                                 (head, bias, last)
//   | dW | db         |
//   +-----------------+  optimizer  2 × (C × D + C) f32: Adam m and v (SGD: m only) (head, bias, last)
//   | m | v           |
//   +-----------------+  slots      T × 16 B    per tensor: activation, gradient, parameter offsets (bias, last, reinit)
//   | slots           |
//   +-----------------+  activations   every arena tensor of the trained segment (BackboneSegment)
//   | activations     |
//   +-----------------+  activation gradients   every tensor the segment writes
//   | act. gradients  |
//   +-----------------+  parameters, their gradients, Adam m and v (4 × parameter bytes; SGD: 3 ×, no v)
//   | θ | dθ | m | v  |
//   +-----------------+  feature gradient   D f32 (∂L/∂ of the normalised features)
//   | dfeature        |
//   +-----------------+  scratch    counts C × i32, logits C f32, probs C f32,
//   | scratch         |             feature D f32, shifted image P bytes,
//   +-----------------+             remap T × 16 bytes (tensor renumbering for the writer)
//                     total = plan bytes
//
// Every region starts on a 16-byte boundary. `imprint` needs only the
// inference arena, W, b and the scratch: it sums features straight into W.
// `bias` and `last` keep no feature cache: each step runs the samples through
// the backbone again (memory for one sample's activations, not N).
// The sizes depend only on the model's geometry (A, D, T, P), the plan's
// maxClasses and maxShots, the method (for `bias` and `last` its segment),
// the augmentation level and the optimizer, so the
// compiler can write the total into the blob header
// (`finetune_arena_bytes`), and the device knows its need before it starts.

/// Offset and length of one region of the fine-tuning arena.
public struct ArenaRegion: Equatable, Sendable {
    public var offset: Int
    public var bytes: Int
}

/// The regions of a fine-tuning arena (see the map above).
public struct FineTuneLayout: Equatable, Sendable {
    public var inference: ArenaRegion
    public var features: ArenaRegion
    public var labels: ArenaRegion
    public var order: ArenaRegion
    public var weights: ArenaRegion
    public var bias: ArenaRegion
    public var anchor: ArenaRegion
    public var gradWeights: ArenaRegion
    public var gradBias: ArenaRegion
    public var momentWeights: ArenaRegion
    public var momentBias: ArenaRegion
    public var varianceWeights: ArenaRegion
    public var varianceBias: ArenaRegion
    public var counts: ArenaRegion
    public var logits: ArenaRegion
    public var probs: ArenaRegion
    public var feature: ArenaRegion
    public var image: ArenaRegion
    public var remap: ArenaRegion
    public var slots: ArenaRegion
    public var activations: ArenaRegion
    public var activationGradients: ArenaRegion
    public var parameters: ArenaRegion
    public var parameterGradients: ArenaRegion
    public var parameterMoments: ArenaRegion
    public var parameterVariances: ArenaRegion
    public var featureGradient: ArenaRegion
    /// Bytes of the whole arena.
    public var total: Int
    /// Cached samples the features region holds (0 for `imprint`).
    public var cachedSamples: Int

    /// Lays out the arena for `method`.
    ///
    /// - Parameters:
    ///   - geometry: the model's inference arena bytes, feature count, tensor count and input size.
    ///   - maxClasses, maxShots: the plan's limits.
    ///   - augmentation: 0, 1 or 2 (copies per shot: 1, 5, 9).
    ///   - segment: what `bias` or `last` trains (nil for `imprint` and `head`).
    ///   - optimizer: SGD keeps one moment, so its regions for Adam's v are empty.
    /// - Returns: nil when a size overflows `Int`.
    init?(geometry: FineTuneGeometry, maxClasses: Int, maxShots: Int, method: FineTuneMethod, augmentation: Int,
          segment: BackboneSegment? = nil, optimizer: HeadOptimizer = .adam) {
        let copies = 1 + 4 * augmentation
        let c = maxClasses, d = geometry.featureCount
        let trains = method != .imprint
        let backbone = method.trainsBackbone && segment != nil
        let caches = method == .head
        let adam = optimizer == .adam
        let s = segment ?? BackboneSegment.empty
        let (shots, o1) = c.multipliedReportingOverflow(by: maxShots)
        let (n, o2) = shots.multipliedReportingOverflow(by: copies)
        let (cd, o3) = c.multipliedReportingOverflow(by: d)
        let (nd, o4) = n.multipliedReportingOverflow(by: d)
        guard !o1, !o2, !o3, !o4, n <= Int.max / 16, nd <= Int.max / 16, cd <= Int.max / 16,
              geometry.tensorCount <= Int.max / 64, geometry.arenaBytes <= Int.max / 4,
              geometry.inputElements <= Int.max / 4, s.activationBytes <= Int.max / 8,
              s.gradientBytes <= Int.max / 8, s.parameterBytes <= Int.max / 8 else { return nil }
        // A cursor struct, not a closure over local vars: no capture boxes, even in debug builds.
        var place = RegionCursor()
        inference = place.take(geometry.arenaBytes)
        cachedSamples = caches ? n : 0
        features = place.take(caches ? nd * 4 : 0)
        labels = place.take(caches ? n * 4 : 0)
        order = place.take(trains ? n * 4 : 0)
        weights = place.take(cd * 4)
        bias = place.take(c * 4)
        anchor = place.take(trains ? cd * 4 : 0)
        gradWeights = place.take(trains ? cd * 4 : 0)
        gradBias = place.take(trains ? c * 4 : 0)
        momentWeights = place.take(trains ? cd * 4 : 0)
        momentBias = place.take(trains ? c * 4 : 0)
        varianceWeights = place.take(trains && adam ? cd * 4 : 0)
        varianceBias = place.take(trains && adam ? c * 4 : 0)
        counts = place.take(c * 4)
        logits = place.take(c * 4)
        probs = place.take(c * 4)
        feature = place.take(d * 4)
        image = place.take(geometry.inputElements)
        remap = place.take(geometry.tensorCount * FineTuneLayout.remapEntryBytes)
        slots = place.take(backbone ? geometry.tensorCount * FineTuneLayout.slotEntryBytes : 0)
        activations = place.take(backbone ? s.activationBytes : 0)
        activationGradients = place.take(backbone ? s.gradientBytes : 0)
        parameters = place.take(backbone ? s.parameterBytes : 0)
        parameterGradients = place.take(backbone ? s.parameterBytes : 0)
        parameterMoments = place.take(backbone ? s.parameterBytes : 0)
        parameterVariances = place.take(backbone && adam ? s.parameterBytes : 0)
        featureGradient = place.take(backbone ? d * 4 : 0)
        total = place.cursor
        if place.overflow { return nil }
    }

    /// Bytes per tensor in the writer's renumbering table (four i32). The
    /// writer uses the first (the new index) since BlobEmitter places data,
    /// quantization and names itself; the entry keeps its 16 bytes because
    /// every plan in a blob header was sized with them.
    static let remapEntryBytes = 16
    /// Bytes per tensor in the segment's slot table (four i32, see ``BackboneSegment``).
    static let slotEntryBytes = 16
}

/// Hands out consecutive 16-aligned regions.
struct RegionCursor {
    var cursor = 0
    var overflow = false

    mutating func take(_ bytes: Int) -> ArenaRegion {
        let r = ArenaRegion(offset: cursor, bytes: bytes)
        let (next, o) = cursor.addingReportingOverflow(roundUp(bytes, BlobLayout.alignment))
        if o { overflow = true } else { cursor = next }
        return r
    }
}

/// The sizes of a model that fix its fine-tuning arena.
public struct FineTuneGeometry: Equatable, Sendable {
    /// The inference arena (`model.arenaBytes`).
    public var arenaBytes: Int
    /// D, the feature count of the classifier head.
    public var featureCount: Int
    /// Tensors of the blob (the writer renumbers them).
    public var tensorCount: Int
    /// Elements of the input image (one shifted copy lives in the scratch).
    public var inputElements: Int

    public init(model: Model, head: ClassifierHead) {
        arenaBytes = model.arenaBytes
        featureCount = head.featureCount
        tensorCount = model.tensorCount
        inputElements = model.tensor(model.input(0)?.tensor ?? 0).elementCount
    }
}

extension FineTunePlan {
    /// The plan a fine-tuning of `model` with `method` needs, for up to
    /// `maxClasses` classes of up to `maxShots` shots each. The compiler writes
    /// it into the blob header; a device reads it from there. Combine the plans
    /// of several methods with ``FineTunePlan/covering(_:)``.
    ///
    /// ```swift
    /// let plan = try FineTunePlan.required(model: model, maxClasses: 5, maxShots: 5, method: .head)
    /// plan.arenaBytes   // 56_784 for Tests/Fixtures/ref-cnn-q8.sprig (18_544 with .imprint)
    /// ```
    ///
    /// - Parameters:
    ///   - augmentation: shift copies per shot (0, 1, 2); nil takes the method's default.
    ///   - layers: the layers `last` trains (ignored by the other methods; the
    ///     plan of `reinit` holds every parameterised layer of the backbone).
    ///   - optimizer: the optimizer the device will train with; an SGD plan
    ///     has no room for Adam's second moment (`head` and `last` 1 on the
    ///     DAP-10% cnn at 5 classes × 5 shots: 206,368 bytes against Adam's 266,160).
    /// - Throws: the head-finding errors of ``ClassifierHead/init(model:)``;
    ///   ``FineTuneError/invalidOption(option:value:)`` for limits below 1 or
    ///   above 65,535, an augmentation outside 0 … 2 or layers outside 1 … 255;
    ///   for `bias` and `last` the errors of ``BackboneSegment/init(model:head:method:layers:)``
    ///   (``FineTuneError/methodNeedsFloat32(method:)`` for an int8 blob);
    ///   ``FineTuneError/formatLimit(limit:value:maximum:)`` past 4 GiB.
    public static func required(model: Model, maxClasses: Int, maxShots: Int, method: FineTuneMethod,
                                augmentation: Int? = nil, layers: Int = 1,
                                optimizer: HeadOptimizer = .adam) throws(SprigError) -> FineTunePlan {
        let head = try ClassifierHead(model: model)
        let level = augmentation ?? method.defaultAugmentation
        try checkLimits(maxClasses: maxClasses, maxShots: maxShots, augmentation: level)
        guard layers >= 1 && layers <= 255 else { throw .fineTune(.invalidOption(option: .layers, value: layers)) }
        let segment = try segment(model: model, head: head, method: method, layers: layers)
        // The header's finetune_max_layers is one byte: reinit past 255 layers cannot be planned.
        let planned = method == .last ? layers : method == .reinit ? segment?.trainedLayers ?? 0 : 0
        guard planned <= 255 else { throw .fineTune(.invalidOption(option: .layers, value: planned)) }
        guard let layout = FineTuneLayout(geometry: FineTuneGeometry(model: model, head: head), maxClasses: maxClasses,
                                          maxShots: maxShots, method: method, augmentation: level, segment: segment,
                                          optimizer: optimizer),
              layout.total <= maxU32AsInt else {
            throw .fineTune(.formatLimit(limit: .arenaBytes, value: Int.max, maximum: maxU32AsInt))
        }
        return FineTunePlan(arenaBytes: layout.total, maxClasses: maxClasses, maxShots: maxShots, augmentation: level,
                            maxLayers: planned)
    }

    static func checkLimits(maxClasses: Int, maxShots: Int, augmentation: Int) throws(SprigError) {
        guard maxClasses >= 1 && maxClasses <= 65_535 else {
            throw .fineTune(.invalidOption(option: .maxClasses, value: maxClasses))
        }
        guard maxShots >= 1 && maxShots <= 65_535 else {
            throw .fineTune(.invalidOption(option: .maxShots, value: maxShots))
        }
        guard augmentation >= 0 && augmentation <= 2 else {
            throw .fineTune(.invalidOption(option: .augmentation, value: augmentation))
        }
    }

    /// The trained segment of `bias`, `last` and `reinit` (nil for `imprint` and `head`).
    /// On an int8 blob they throw ``FineTuneError/methodNeedsFloat32(method:)``.
    static func segment(model: Model, head: ClassifierHead, method: FineTuneMethod,
                        layers: Int) throws(SprigError) -> BackboneSegment? {
        guard method.trainsBackbone else { return nil }
        return try BackboneSegment(model: model, head: head, method: method, layers: layers)
    }
}
