// The fine-tuning reservation of a blob the host writes: the largest plan of
// the methods it should support, measured by the runtime's own layout code
// (FineTunePlan.required), stored in the header by BlobBuilder.build().

import SprigRuntime

extension BlobBuilder {
    /// Sizes the fine-tuning plan of this network for every method in
    /// `methods` (the largest of their needs) and stores it in ``finetune``
    /// and ``finetuneDetail``, so that ``build()`` writes it into the header.
    ///
    /// - Parameters:
    ///   - augmentation: the level for every method; nil takes each method's default.
    ///   - layers: the most layers `last` may train (used when `methods` has `last`).
    ///   - optimizer: the optimizer the plan is sized for (SGD: no room for Adam's second moment).
    /// - Throws: as ``FineTunePlan/required(model:maxClasses:maxShots:method:augmentation:layers:optimizer:)``,
    ///   or the reader's error when the description is not a valid network.
    public mutating func planFineTuning(maxClasses: Int, maxShots: Int, methods: [FineTuneMethod],
                                        augmentation: Int? = nil, layers: Int = 1,
                                        optimizer: HeadOptimizer = .adam) throws(SprigError) {
        finetune = (0, 0, 0)
        finetuneDetail = nil
        let blob = try build()
        let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: max(blob.count, 16), alignment: 16)
        defer { copy.deallocate() }
        copy.copyBytes(from: blob)
        let model = try Model(bytes: UnsafeRawBufferPointer(rebasing: copy[0..<blob.count]))
        var plan: FineTunePlan? = nil
        for method in methods {
            let one = try FineTunePlan.required(model: model, maxClasses: maxClasses, maxShots: maxShots,
                                                method: method, augmentation: augmentation, layers: layers,
                                                optimizer: optimizer)
            plan = plan.map { $0.covering(one) } ?? one
        }
        guard let plan else { return }
        finetune = (plan.arenaBytes, plan.maxClasses, plan.maxShots)
        finetuneDetail = (plan.augmentation ?? 0, plan.maxLayers ?? 0)
    }

    /// ``planFineTuning(maxClasses:maxShots:methods:augmentation:layers:optimizer:)`` for one method.
    public mutating func planFineTuning(maxClasses: Int, maxShots: Int, method: FineTuneMethod,
                                        augmentation: Int? = nil, layers: Int = 1) throws(SprigError) {
        try planFineTuning(maxClasses: maxClasses, maxShots: maxShots, methods: [method], augmentation: augmentation,
                           layers: layers)
    }
}
