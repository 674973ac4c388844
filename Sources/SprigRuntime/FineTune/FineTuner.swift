// On-device few-shot fine-tuning of the classifier head, inside one arena.
//
// prepare (throws, changes nothing)            eval (cannot fail, allocates nothing)
//   find the head, check the plan and arena      features of every shot (+ shifted copies),
//   check shots, labels, classes, options,       L2-normalised, cached or summed per class
//   find the trained segment (bias, last),    →  imprint W = scale · normalised class means
//   lay the method's regions out in the plan     head: Adam/SGD on the cached features
//                                                bias, last: Adam/SGD on the head and the
//                                                segment's parameters, forward and backward
//                                                through the segment for every sample
//                                                reinit: last over every layer, its
//                                                parameters first drawn He-uniform
//
// The arena map is drawn in FineTuneLayout.swift; the segment in
// BackboneSegment.swift and its training in BackboneTraining.swift; the
// serialisation of the tuned model is in TunedBlobWriter.swift;
// docs/finetune.md explains the method.

/// Fine-tunes the classifier of a ``Model`` on a few labelled images, in a
/// caller-provided arena, and writes the tuned model as a new blob.
///
/// ```swift
/// guard let plan = FineTunePlan(model: model) else { return }    // from the blob header
/// let arena = UnsafeMutableRawBufferPointer.allocate(byteCount: plan.arenaBytes, alignment: 16)
/// var tuner = try FineTuner(model: model, arena: arena)
/// try tuner.fineTune(shots: pixels, labels: labels, classCount: 5, options: FineTuneOptions(method: .head))
/// let out = UnsafeMutableRawBufferPointer.allocate(byteCount: try tuner.tunedBlobBytes(), alignment: 16)
/// let written = try tuner.writeTunedBlob(into: out)
/// ```
///
/// The blob bytes are never written. Every error is raised before the arena
/// changes; ``fineTune(shots:labels:classCount:options:)`` then runs to the
/// end without allocating.
public struct FineTuner {
    public let model: Model
    public let head: ClassifierHead
    /// The plan in force: the blob's, or the one the caller gave.
    public let plan: FineTunePlan
    public let arena: UnsafeMutableRawBufferPointer
    let base: UnsafeMutableRawPointer
    let interpreter: Interpreter
    let geometry: FineTuneGeometry
    /// The table from pixels to the backbone's int8 input (InputCodes.swift), or nil.
    let inputCodes: InputCodes?

    /// Regions of the last successful fine-tune (nil before).
    public private(set) var layout: FineTuneLayout?
    /// The backbone part the last fine-tune trained (`bias`, `last`); nil for
    /// `imprint` and `head`, whose backbone is the blob's.
    public private(set) var segment: BackboneSegment?
    /// Classes of the tuned head (0 before fine-tuning).
    public private(set) var classCount = 0
    /// Options of the last successful fine-tune.
    public private(set) var options = FineTuneOptions()
    /// Mean training loss over every sample, after imprinting and after
    /// training (`head`, `bias`, `last`); NaN for `imprint`.
    public internal(set) var loss: (initial: Float, final: Float) = (Float.nan, Float.nan)
    /// Samples the head was trained on (shots × copies).
    public private(set) var sampleCount = 0

    /// Binds `model` to `arena` under `plan` (default: the blob's plan).
    ///
    /// - Throws: the errors of ``ClassifierHead/init(model:)``;
    ///   ``FineTuneError/noPlan`` when neither the blob nor the caller has a plan;
    ///   ``FineTuneError/planTooSmall(need:planned:)`` when the plan is smaller than
    ///   inference alone; ``SprigError/arenaTooSmall(need:have:)`` and
    ///   ``SprigError/arenaMisaligned(address:)`` for the arena.
    public init(model: Model, arena: UnsafeMutableRawBufferPointer, plan: FineTunePlan? = nil) throws(SprigError) {
        let head = try ClassifierHead(model: model)
        guard let plan = plan ?? FineTunePlan(model: model) else { throw .fineTune(.noPlan) }
        try FineTunePlan.checkLimits(maxClasses: plan.maxClasses, maxShots: plan.maxShots, augmentation: 0)
        guard plan.arenaBytes >= model.arenaBytes else {
            throw .fineTune(.planTooSmall(need: model.arenaBytes, planned: plan.arenaBytes))
        }
        guard arena.count >= plan.arenaBytes, let base = arena.baseAddress else {
            throw .arenaTooSmall(need: plan.arenaBytes, have: arena.count)
        }
        let address = Int(bitPattern: base)
        guard address & (BlobLayout.alignment - 1) == 0 else { throw .arenaMisaligned(address: address) }
        self.interpreter = try Interpreter(model: model, arena: UnsafeMutableRawBufferPointer(
            rebasing: arena[0..<model.arenaBytes]))
        self.model = model
        self.head = head
        self.plan = plan
        self.arena = arena
        self.base = base
        self.geometry = FineTuneGeometry(model: model, head: head)
        self.inputCodes = InputCodes(model: model, backboneEnd: head.firstOp)
    }

    /// The input's element count: bytes per shot image.
    public var inputElements: Int { geometry.inputElements }
    /// D, the length of the feature vector.
    public var featureCount: Int { head.featureCount }

    /// The default options for `method` that this plan holds: Adam when its
    /// regions fit the plan, else SGD (a plan sized with `optimizer: .sgd`
    /// has no room for Adam's second moment), with that optimizer's default
    /// backbone step; the augmentation is `augmentation`, or the method's
    /// default lowered to the plan's level. A request the plan cannot hold
    /// either way gets Adam, and ``fineTune(shots:labels:classCount:options:)``
    /// then names what is missing.
    public func plannedOptions(method: FineTuneMethod, layers: Int = 1, augmentation: Int? = nil) -> FineTuneOptions {
        let level = augmentation ?? plan.defaultAugmentation(for: method)
        let optimizer: HeadOptimizer = sgdOnly(method: method, layers: layers, level: level) ? .sgd : .adam
        var options = FineTuneOptions(method: method, optimizer: optimizer)
        options.layers = layers
        options.augmentation = level
        return options
    }

    /// True when this plan holds `method`'s regions with SGD but not with Adam.
    private func sgdOnly(method: FineTuneMethod, layers: Int, level: Int) -> Bool {
        guard method != .imprint, level >= 0 && level <= 2 else { return false }
        let segment: BackboneSegment?
        do {
            segment = try FineTunePlan.segment(model: model, head: head, method: method, layers: layers)
        } catch {
            return false
        }
        func fits(_ optimizer: HeadOptimizer) -> Bool {
            guard let layout = FineTuneLayout(geometry: geometry, maxClasses: plan.maxClasses, maxShots: plan.maxShots,
                                              method: method, augmentation: level, segment: segment,
                                              optimizer: optimizer) else { return false }
            return layout.total <= plan.arenaBytes
        }
        return !fits(.adam) && fits(.sgd)
    }

    // MARK: Fine-tuning

    /// Fine-tunes the head on `shots` (8-bit images, one after another, each
    /// ``inputElements`` bytes) with `labels` (one byte per shot, `0 ..< classCount`).
    ///
    /// - Throws, before anything changes: ``FineTuneError/noShots``,
    ///   ``FineTuneError/shotSizeMismatch(expected:found:)``,
    ///   ``FineTuneError/labelCountMismatch(shots:labels:)``,
    ///   ``FineTuneError/labelOutOfRange(shot:label:classes:)``,
    ///   ``FineTuneError/classWithoutShots(classIndex:)``,
    ///   ``FineTuneError/tooManyClasses(requested:planned:)``,
    ///   ``FineTuneError/tooManyShots(classIndex:requested:planned:)``,
    ///   ``FineTuneError/planTooSmall(need:planned:)`` (the method or its
    ///   augmentation needs more than the plan), ``FineTuneError/invalidOption(option:value:)``,
    ///   ``FineTuneError/augmentationNeedsImage(rank:)``, and for `bias`, `last` and `reinit`
    ///   ``FineTuneError/methodNeedsFloat32(method:)`` (int8 blobs),
    ///   ``FineTuneError/tooManyLayers(requested:planned:)``,
    ///   ``FineTuneError/reinitNotPlanned(layers:planned:)`` and the errors of
    ///   ``BackboneSegment/init(model:head:method:layers:)``.
    /// - Complexity: shots × copies backbone invokes, then (`head`) epochs ×
    ///   samples × classes × D multiply-adds, or (`bias`, `last`) epochs ×
    ///   samples backbone invokes plus a backward through the segment. No allocation.
    public mutating func fineTune(shots: UnsafeRawBufferPointer, labels: UnsafeRawBufferPointer, classCount: Int,
                                  options: FineTuneOptions) throws(SprigError) {
        let (layout, segment) = try prepare(shots: shots, labels: labels, classCount: classCount, options: options)
        // Everything is checked: from here on nothing fails.
        let n = labels.count
        let copies = 1 + 4 * options.augmentation
        let c = classCount, d = head.featureCount
        let w = floats(layout.weights), b = floats(layout.bias)
        b.update(repeating: 0, count: c)
        self.segment = nil
        switch options.method {
        case .head:
            // 1. Cache every shot's normalised features (and its shifted copies).
            let cache = floats(layout.features)
            let cachedLabels = int32s(layout.labels)
            for i in 0..<n {
                let label = Int32(labels[i])
                for k in 0..<copies {
                    let r = i &* copies &+ k
                    extractFeature(shot(shots, i), shift: k, into: cache + r &* d, layout: layout)
                    cachedLabels[r] = label
                }
            }
            let samples = n &* copies
            // 2. Imprint from the cache; keep it as the anchor W₀.
            w.update(repeating: 0, count: c &* d)
            for r in 0..<samples {
                let row = w + Int(cachedLabels[r]) &* d
                let f = cache + r &* d
                for j in 0..<d { row[j] += f[j] }
            }
            normaliseRows(w, classes: c, dim: d, scale: options.scale)
            let anchor = floats(layout.anchor)
            anchor.update(from: w, count: c &* d)
            // 3. Train.
            train(layout: layout, samples: samples, classes: c, options: options)
            sampleCount = samples
        case .bias, .last, .reinit:
            guard f32KernelsBuilt, let segment else { break }  // prepare gave one (and refuses int8-only)
            trainBackbone(shots: shots, labels: labels, layout: layout, segment: segment, classes: c, options: options)
            self.segment = segment
            sampleCount = n &* copies
        case .imprint:
            w.update(repeating: 0, count: c &* d)
            let feature = floats(layout.feature)
            for i in 0..<n {
                let row = w + Int(labels[i]) &* d
                for k in 0..<copies {
                    extractFeature(shot(shots, i), shift: k, into: feature, layout: layout)
                    for j in 0..<d { row[j] += feature[j] }
                }
            }
            normaliseRows(w, classes: c, dim: d, scale: options.scale)
            loss = (Float.nan, Float.nan)
            sampleCount = n &* copies
        }
        self.layout = layout
        self.classCount = c
        self.options = options
    }

    /// Checks everything `fineTune` needs and lays out the arena; writes nothing.
    func prepare(shots: UnsafeRawBufferPointer, labels: UnsafeRawBufferPointer, classCount: Int,
                 options: FineTuneOptions) throws(SprigError) -> (FineTuneLayout, BackboneSegment?) {
        // An int8-only runtime (BuildOptions.swift) has no Float32 kernels to train with.
        if options.method.trainsBackbone && (head.quantizedFeatures || !f32KernelsBuilt) {
            throw .fineTune(.methodNeedsFloat32(method: options.method))
        }
        try checkOptions(options)
        // `last`: no more layers than planned; then the trained segment.
        if options.method == .last, let planned = plan.maxLayers, options.layers > planned {
            throw .fineTune(.tooManyLayers(requested: options.layers, planned: planned))
        }
        let segment = try FineTunePlan.segment(model: model, head: head, method: options.method, layers: options.layers)
        // `reinit`: the plan must hold every layer it trains (a version-0 plan: only its bytes are checked).
        if options.method == .reinit, let planned = plan.maxLayers, let trained = segment?.trainedLayers, trained > planned {
            throw .fineTune(.reinitNotPlanned(layers: trained, planned: planned))
        }
        // Shots and labels.
        let p = geometry.inputElements
        guard shots.count > 0, labels.count > 0 else { throw .fineTune(.noShots) }
        guard p > 0, shots.count % p == 0 else {
            throw .fineTune(.shotSizeMismatch(expected: p, found: shots.count))
        }
        let n = shots.count / p
        guard labels.count == n else { throw .fineTune(.labelCountMismatch(shots: n, labels: labels.count)) }
        for i in 0..<n where Int(labels[i]) >= classCount {
            throw .fineTune(.labelOutOfRange(shot: i, label: Int(labels[i]), classes: classCount))
        }
        guard classCount <= plan.maxClasses else {
            throw .fineTune(.tooManyClasses(requested: classCount, planned: plan.maxClasses))
        }
        // Per class: at least one shot, at most the plan's (counted without scratch memory).
        for k in 0..<classCount {
            var count = 0
            for i in 0..<n where Int(labels[i]) == k { count += 1 }
            guard count > 0 else { throw .fineTune(.classWithoutShots(classIndex: k)) }
            guard count <= plan.maxShots else {
                throw .fineTune(.tooManyShots(classIndex: k, requested: count, planned: plan.maxShots))
            }
        }
        // The method's regions must fit in the plan.
        guard let layout = FineTuneLayout(geometry: geometry, maxClasses: plan.maxClasses, maxShots: plan.maxShots,
                                          method: options.method, augmentation: options.augmentation,
                                          segment: segment, optimizer: options.optimizer) else {
            throw .fineTune(.planTooSmall(need: Int.max, planned: plan.arenaBytes))
        }
        guard layout.total <= plan.arenaBytes else {
            throw .fineTune(.planTooSmall(need: layout.total, planned: plan.arenaBytes))
        }
        return (layout, segment)
    }

    private func checkOptions(_ o: FineTuneOptions) throws(SprigError) {
        func bad(_ option: FineTuneOption, _ value: Float) -> SprigError {
            .fineTune(.invalidOption(option: option, value: value.isFinite && value.magnitude < 1e9 ? Int(value) : Int.max))
        }
        guard o.epochs >= 1 && o.epochs <= 10_000 else {
            throw .fineTune(.invalidOption(option: .epochs, value: o.epochs))
        }
        guard o.learningRate.isFinite && o.learningRate > 0 && o.learningRate <= 10 else { throw bad(.learningRate, o.learningRate) }
        guard o.backboneLearningRate.isFinite && o.backboneLearningRate > 0 && o.backboneLearningRate <= 10 else {
            throw bad(.backboneLearningRate, o.backboneLearningRate)
        }
        guard o.layers >= 1 && o.layers <= 255 else { throw .fineTune(.invalidOption(option: .layers, value: o.layers)) }
        guard o.momentum >= 0 && o.momentum < 1 else { throw bad(.momentum, o.momentum) }
        guard o.batchSize >= 0 && o.batchSize <= 1 << 24 else {
            throw .fineTune(.invalidOption(option: .batchSize, value: o.batchSize))
        }
        guard o.scale.isFinite && o.scale > 0 && o.scale <= 1000 else { throw bad(.scale, o.scale) }
        guard o.anchor.isFinite && o.anchor >= 0 && o.anchor <= 1_000_000 else { throw bad(.anchor, o.anchor) }
        guard o.augmentation >= 0 && o.augmentation <= 2 else {
            throw .fineTune(.invalidOption(option: .augmentation, value: o.augmentation))
        }
        if o.augmentation > 0 {
            let input = model.tensor(model.input(0)?.tensor ?? 0)
            guard input.rank == 3 else { throw .fineTune(.augmentationNeedsImage(rank: input.rank)) }
        }
    }

    // MARK: Training

    /// Epochs of minibatch Adam/SGD on the cached features (`head`).
    private mutating func train(layout: FineTuneLayout, samples: Int, classes c: Int, options: FineTuneOptions) {
        let d = head.featureCount
        let w = floats(layout.weights), b = floats(layout.bias)
        let gw = floats(layout.gradWeights), gb = floats(layout.gradBias)
        let mw = floats(layout.momentWeights), mb = floats(layout.momentBias)
        let vw = floats(layout.varianceWeights), vb = floats(layout.varianceBias)
        let logits = floats(layout.logits), probs = floats(layout.probs)
        let anchor = UnsafePointer(floats(layout.anchor))
        let order = int32s(layout.order)
        mw.update(repeating: 0, count: c &* d)
        mb.update(repeating: 0, count: c)
        // An SGD layout has no v regions (they are 0 bytes long).
        if options.optimizer == .adam {
            vw.update(repeating: 0, count: c &* d)
            vb.update(repeating: 0, count: c)
        }
        for r in 0..<samples { order[r] = Int32(truncatingIfNeeded: r) }
        let all = HeadBatch(features: floats(layout.features), labels: int32s(layout.labels), indices: nil,
                            count: samples, dim: d, classes: c)
        func lossOfAll() -> Float {
            headGradientSIMD(all, weights: w, bias: b, anchor: anchor, anchorStrength: options.anchor,
                             gradWeights: gw, gradBias: gb, logits: logits, probs: probs, wantsLoss: true)
        }
        let initial = lossOfAll()
        let batch = options.batchSize == 0 || options.batchSize > samples ? samples : options.batchSize
        var rng = SplitMix64RNG(seed: options.seed)
        var powers: (Float, Float) = (1, 1)
        for _ in 0..<options.epochs {
            if batch < samples { rng.shuffle(order, count: samples) }
            var start = 0
            while start < samples {
                let count = min(batch, samples - start)
                var part = all
                part.indices = UnsafePointer(order + start)
                part.count = count
                _ = headGradientSIMD(part, weights: w, bias: b, anchor: anchor, anchorStrength: options.anchor,
                                     gradWeights: gw, gradBias: gb, logits: logits, probs: probs, wantsLoss: false)
                switch options.optimizer {
                case .adam:
                    powers = (powers.0 * 0.9, powers.1 * 0.999)
                    adamStep(w, gw, mw, vw, count: c &* d, learningRate: options.learningRate, powers: powers)
                    adamStep(b, gb, mb, vb, count: c, learningRate: options.learningRate, powers: powers)
                case .sgd:
                    sgdStep(w, gw, mw, count: c &* d, learningRate: options.learningRate, momentum: options.momentum)
                    sgdStep(b, gb, mb, count: c, learningRate: options.learningRate, momentum: options.momentum)
                }
                start += count
            }
        }
        loss = (initial, lossOfAll())
    }

    /// Each row scaled to length `scale` (a zero row stays zero).
    func normaliseRows(_ w: UnsafeMutablePointer<Float>, classes: Int, dim: Int, scale: Float) {
        for k in 0..<classes {
            let row = w + k &* dim
            l2NormalizeF32(input: row, output: row, count: dim)
            for j in 0..<dim { row[j] *= scale }
        }
    }

    // MARK: Features

    /// Runs the backbone on one 8-bit image, shifted by copy `shift`'s offset, and
    /// writes its L2-normalised features (D floats) to `into`.
    func extractFeature(_ pixels: UnsafeRawBufferPointer, shift: Int, into: UnsafeMutablePointer<Float>,
                                layout: FineTuneLayout) {
        if segment == nil, let codes = inputCodes {
            // The same input bytes as below, without the image copy, setInput and the Quantize op.
            codes.write(pixels, copy: shift, base: base)
            for o in codes.firstOp..<head.firstOp { interpreter.run(o) }
        } else if shift == 0 {
            runBackbone(pixels)
        } else {
            let image = UnsafeMutableRawBufferPointer(start: base + layout.image.offset, count: layout.image.bytes)
            shiftImage(pixels, into: image, copy: shift)
            runBackbone(UnsafeRawBufferPointer(image))
        }
        normalisedFeatures(into: into)
    }

    /// The backbone: every op before the head. After a `bias` or `last`
    /// fine-tune, its trained segment runs with the trained parameters.
    func runBackbone(_ pixels: UnsafeRawBufferPointer) {
        if segment == nil, let codes = inputCodes {
            codes.write(pixels, copy: 0, base: base)
            for o in codes.firstOp..<head.firstOp { interpreter.run(o) }
            return
        }
        // The size was checked in prepare (or by the public callers), so this cannot throw.
        do { try interpreter.setInput(pixels: pixels) } catch { return }
        if f32KernelsBuilt, let segment, let layout {
            runSegmentForward(layout: layout, segment: segment)
        } else {
            for o in 0..<head.firstOp { interpreter.run(o) }
        }
    }

    /// The feature tensor, dequantized if int8, L2-normalised into `into`:
    /// exactly what the tuned blob's Dequantize and L2Normalize ops compute.
    func normalisedFeatures(into: UnsafeMutablePointer<Float>) {
        let info = model.tensor(head.featureTensor)
        let raw = featureBytes(info)
        let d = head.featureCount
        if head.quantizedFeatures {
            let q = model.quant(info, 0)
            dequantizeQ8ToF32(input: raw.assumingMemoryBound(to: Int8.self), output: into, count: d,
                              scale: q.scale, zeroPoint: q.zeroPoint)
            l2NormalizeF32(input: into, output: into, count: d)
        } else {
            l2NormalizeF32(input: raw.assumingMemoryBound(to: Float.self), output: into, count: d)
        }
    }

    /// Copies an `[H][W][C]` image shifted by the offset of `copy` (1…4: one
    /// pixel right, left, down, up; 5…8: two pixels), filling with zeros.
    func shiftImage(_ pixels: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer, copy: Int) {
        let input = model.tensor(model.input(0)?.tensor ?? 0)
        let h = input.dim(0), wd = input.dim(1), ch = input.dim(2)
        let (dy, dx) = shiftOffset(copy: copy)
        for y in 0..<h {
            for x in 0..<wd {
                let sy = y - dy, sx = x - dx
                let inside = sy >= 0 && sy < h && sx >= 0 && sx < wd
                for c in 0..<ch {
                    out[(y &* wd &+ x) &* ch &+ c] = inside ? pixels[(sy &* wd &+ sx) &* ch &+ c] : 0
                }
            }
        }
    }

    func shot(_ shots: UnsafeRawBufferPointer, _ i: Int) -> UnsafeRawBufferPointer {
        let p = geometry.inputElements
        return UnsafeRawBufferPointer(rebasing: shots[i &* p ..< (i &+ 1) &* p])
    }

    // MARK: Using the tuned head

    /// The L2-normalised features of one image (``featureCount`` floats).
    ///
    /// - Throws: ``SprigError/argumentMismatch(expected:found:)`` for a wrong
    ///   pixel count or a short `into`.
    public func features(pixels: UnsafeRawBufferPointer, into: UnsafeMutableBufferPointer<Float>) throws(SprigError) {
        guard pixels.count == geometry.inputElements else {
            throw .argumentMismatch(expected: geometry.inputElements, found: pixels.count)
        }
        guard into.count >= head.featureCount, let out = into.baseAddress else {
            throw .argumentMismatch(expected: head.featureCount, found: into.count)
        }
        runBackbone(pixels)
        normalisedFeatures(into: out)
    }

    /// The tuned model's outputs (probabilities if the model ends in Softmax,
    /// else logits) for normalised features, into `into` (``classCount`` floats).
    /// Bit-identical to the tuned blob run by ``Interpreter``.
    ///
    /// - Throws: ``FineTuneError/notTuned`` before a fine-tune;
    ///   ``SprigError/argumentMismatch(expected:found:)`` for short buffers.
    public func outputs(features: UnsafeBufferPointer<Float>, into: UnsafeMutableBufferPointer<Float>) throws(SprigError) {
        guard let layout else { throw .fineTune(.notTuned) }
        guard features.count >= head.featureCount, let f = features.baseAddress else {
            throw .argumentMismatch(expected: head.featureCount, found: features.count)
        }
        guard into.count >= classCount, let out = into.baseAddress else {
            throw .argumentMismatch(expected: classCount, found: into.count)
        }
        let logits = floats(layout.logits)
        denseF32(input: f, weights: floats(layout.weights), bias: floats(layout.bias), output: logits,
                 inputCount: head.featureCount, outputCount: classCount, clamp: .none)
        if head.softmax {
            softmaxF32(input: logits, output: out, count: classCount)
        } else {
            out.update(from: logits, count: classCount)
        }
    }

    /// The tuned model's outputs for one 8-bit image (see ``outputs(features:into:)``).
    public func outputs(pixels: UnsafeRawBufferPointer, into: UnsafeMutableBufferPointer<Float>) throws(SprigError) {
        guard let layout else { throw .fineTune(.notTuned) }
        let feature = floats(layout.feature)
        try features(pixels: pixels, into: UnsafeMutableBufferPointer(start: feature, count: head.featureCount))
        try outputs(features: UnsafeBufferPointer(start: feature, count: head.featureCount), into: into)
    }

    /// The predicted class (the first largest output) for normalised features.
    public func classify(features: UnsafeBufferPointer<Float>) throws(SprigError) -> Int {
        guard let layout else { throw .fineTune(.notTuned) }
        let probs = floats(layout.probs)
        try outputs(features: features, into: UnsafeMutableBufferPointer(start: probs, count: classCount))
        var best = 0
        for k in 1..<max(1, classCount) where probs[k] > probs[best] { best = k }
        return best
    }

    /// The tuned head's weights `[classCount][featureCount]` and bias, in the arena.
    public var weights: UnsafeBufferPointer<Float> {
        guard let layout else { return UnsafeBufferPointer(start: nil, count: 0) }
        return UnsafeBufferPointer(start: floats(layout.weights), count: classCount &* head.featureCount)
    }

    public var bias: UnsafeBufferPointer<Float> {
        guard let layout else { return UnsafeBufferPointer(start: nil, count: 0) }
        return UnsafeBufferPointer(start: floats(layout.bias), count: classCount)
    }

    // MARK: Arena pointers (regions proven inside the arena by the plan checks)

    func floats(_ r: ArenaRegion) -> UnsafeMutablePointer<Float> {
        (base + r.offset).assumingMemoryBound(to: Float.self)
    }

    func int32s(_ r: ArenaRegion) -> UnsafeMutablePointer<Int32> {
        (base + r.offset).assumingMemoryBound(to: Int32.self)
    }
}
