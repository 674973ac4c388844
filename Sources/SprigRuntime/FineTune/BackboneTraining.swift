// `bias`, `last` and `reinit`: the head and the backbone segment trained together, one
// sample at a time, forward and backward side by side.
//
// Shapes (C classes, D features, B samples in a batch; segment in BackboneSegment.swift):
//   x        [D]      the backbone's features (the segment's last activation)
//   u = x / max(‖x‖, 1e-12)                   (what the tuned blob's L2Normalize computes)
//   z = W·u + b,  p = softmax(z)
//   L = (1/B) Σ_i −log p[y_i]  +  (λ/2) ‖W − W₀‖²
//
// Backward, per sample:
//   dz = (p − onehot(y)) / B;  dW += dz ⊗ u;  db += dz;  du = Wᵀ dz
//   dx = (du − u (u·du)) / ‖x‖                (l2NormalizeBackwardF32)
//   then each segment op in reverse: the fused clamp's mask, then the op's
//   backward into its inputs' gradient slots and its trained parameters' gradients.
//
// The step: Adam (or SGD) on W, b with `learningRate` and on the segment's
// parameters with `backboneLearningRate`. Samples are (shot, shifted copy)
// pairs, re-run through the backbone every epoch: no feature cache. Every
// sum runs in a fixed order on one thread; no allocation.

extension FineTuner {
    /// Imprints the head through the untrained segment, then trains head and
    /// segment for `options.epochs` epochs. Sets ``loss``.
    mutating func trainBackbone(shots: UnsafeRawBufferPointer, labels: UnsafeRawBufferPointer, layout: FineTuneLayout,
                                segment: BackboneSegment, classes c: Int, options: FineTuneOptions) {
        let d = head.featureCount
        let copies = 1 + 4 * options.augmentation
        let samples = labels.count &* copies
        // 1. Slots, and the parameters copied out of the blob (padding zeroed).
        let table = int32s(layout.slots)
        segment.fillSlots(table, model: model)
        let params = base + layout.parameters.offset
        params.initializeMemory(as: UInt8.self, repeating: 0, count: layout.parameters.bytes)
        for t in 0..<model.tensorCount where table[4 &* t &+ 2] >= 0 {
            let info = model.tensor(t)
            (params + Int(table[4 &* t &+ 2])).copyMemory(from: model.base + info.dataOffset, byteCount: info.dataBytes)
        }
        // reinit: the blob's values give way to a He-uniform draw (Reinitialise.swift).
        if segment.method == .reinit { reinitialiseParameters(layout: layout, segment: segment, seed: options.seed) }
        let pc = layout.parameters.bytes / 4
        // 2. Imprint W from the features of every sample; W₀ = W, b = 0.
        let w = floats(layout.weights), b = floats(layout.bias)
        let u = floats(layout.feature)
        w.update(repeating: 0, count: c &* d)
        b.update(repeating: 0, count: c)
        for r in 0..<samples {
            forwardSample(shots, r, copies: copies, layout: layout, segment: segment)
            normalisedFeatures(into: u, layout: layout)
            let row = w + Int(labels[r / copies]) &* d
            for j in 0..<d { row[j] += u[j] }
        }
        normaliseRows(w, classes: c, dim: d, scale: options.scale)
        floats(layout.anchor).update(from: w, count: c &* d)
        // 3. Train.
        let order = int32s(layout.order)
        for r in 0..<samples { order[r] = Int32(truncatingIfNeeded: r) }
        let gw = floats(layout.gradWeights), gb = floats(layout.gradBias)
        let mw = floats(layout.momentWeights), mb = floats(layout.momentBias)
        let vw = floats(layout.varianceWeights), vb = floats(layout.varianceBias)
        let theta = floats(layout.parameters), gTheta = floats(layout.parameterGradients)
        let mTheta = floats(layout.parameterMoments), vTheta = floats(layout.parameterVariances)
        mw.update(repeating: 0, count: c &* d)
        mb.update(repeating: 0, count: c)
        mTheta.update(repeating: 0, count: pc)
        // An SGD layout has no v regions (they are 0 bytes long).
        if options.optimizer == .adam {
            vw.update(repeating: 0, count: c &* d)
            vb.update(repeating: 0, count: c)
            vTheta.update(repeating: 0, count: pc)
        }
        let initial = backboneLoss(shots, labels, first: 0, count: samples, copies: copies, classes: c,
                                   layout: layout, segment: segment, options: options, gradient: false)
        let batch = options.batchSize == 0 || options.batchSize > samples ? samples : options.batchSize
        var rng = SplitMix64RNG(seed: options.seed)
        var powers: (Float, Float) = (1, 1)
        for _ in 0..<options.epochs {
            if batch < samples { rng.shuffle(order, count: samples) }
            var start = 0
            while start < samples {
                let count = min(batch, samples - start)
                _ = backboneLoss(shots, labels, first: start, count: count, copies: copies, classes: c,
                                 layout: layout, segment: segment, options: options, gradient: true)
                switch options.optimizer {
                case .adam:
                    powers = (powers.0 * 0.9, powers.1 * 0.999)
                    adamStep(w, gw, mw, vw, count: c &* d, learningRate: options.learningRate, powers: powers)
                    adamStep(b, gb, mb, vb, count: c, learningRate: options.learningRate, powers: powers)
                    adamStep(theta, gTheta, mTheta, vTheta, count: pc, learningRate: options.backboneLearningRate,
                             powers: powers)
                case .sgd:
                    sgdStep(w, gw, mw, count: c &* d, learningRate: options.learningRate, momentum: options.momentum)
                    sgdStep(b, gb, mb, count: c, learningRate: options.learningRate, momentum: options.momentum)
                    sgdStep(theta, gTheta, mTheta, count: pc, learningRate: options.backboneLearningRate,
                            momentum: options.momentum)
                }
                start += count
            }
        }
        let final = backboneLoss(shots, labels, first: 0, count: samples, copies: copies, classes: c,
                                 layout: layout, segment: segment, options: options, gradient: false)
        loss = (initial, final)
    }

    /// Mean loss of samples `order[first ..< first + count]` (the anchor term
    /// included); with `gradient`, overwrites the gradients of W, b and the
    /// segment's parameters with its gradient.
    private func backboneLoss(_ shots: UnsafeRawBufferPointer, _ labels: UnsafeRawBufferPointer, first: Int, count: Int,
                              copies: Int, classes c: Int, layout: FineTuneLayout, segment: BackboneSegment,
                              options: FineTuneOptions, gradient: Bool) -> Float {
        let d = head.featureCount
        let w = floats(layout.weights), b = floats(layout.bias)
        let gw = floats(layout.gradWeights), gb = floats(layout.gradBias)
        let logits = floats(layout.logits), probs = floats(layout.probs)
        let u = floats(layout.feature), du = floats(layout.featureGradient)
        let order = int32s(layout.order)
        let table = int32s(layout.slots)
        if gradient {
            gw.update(repeating: 0, count: c &* d)
            gb.update(repeating: 0, count: c)
            floats(layout.parameterGradients).update(repeating: 0, count: layout.parameters.bytes / 4)
        }
        let inverse = 1 / Float(max(count, 1))
        var total: Float = 0
        for i in first..<(first &+ count) {
            let r = Int(order[i])
            let y = Int(labels[r / copies])
            // Forward: segment, normalise, head.
            forwardSample(shots, r, copies: copies, layout: layout, segment: segment)
            normalisedFeatures(into: u, layout: layout)
            denseF32(input: u, weights: w, bias: b, output: logits, inputCount: d, outputCount: c, clamp: .none)
            total += softmaxInto(logits, probs, c) - logits[y]
            guard gradient else { continue }
            // Backward: head (dz, dW, db, du), then L2Normalize, then the segment.
            du.update(repeating: 0, count: d)
            for k in 0..<c {
                let dz = (probs[k] - (k == y ? 1 : 0)) * inverse
                gb[k] += dz
                let row = w + k &* d, g = gw + k &* d
                for j in 0..<d {
                    g[j] += dz * u[j]
                    du[j] += dz * row[j]
                }
            }
            floats(layout.activationGradients).update(repeating: 0, count: layout.activationGradients.bytes / 4)
            let feature = table + 4 &* head.featureTensor
            l2NormalizeBackwardF32(input: floats(layout.activations) + Int(feature[0]) / 4, outputGradient: du,
                                   inputGradient: floats(layout.activationGradients) + Int(feature[1]) / 4, count: d)
            var o = segment.endOp - 1
            while o >= segment.firstOp {
                backwardOp(o, layout: layout)
                o -= 1
            }
        }
        total *= inverse
        // The anchor: (λ/2)‖W − W₀‖², gradient λ(W − W₀).
        if options.anchor > 0 {
            let w0 = floats(layout.anchor)
            var sq: Float = 0
            for j in 0..<(c &* d) {
                let diff = w[j] - w0[j]
                sq += diff * diff
                if gradient { gw[j] += options.anchor * diff }
            }
            total += 0.5 * options.anchor * sq
        }
        return total
    }

    /// Runs sample `r` (shot `r / copies`, shifted copy `r % copies`) through the backbone.
    private func forwardSample(_ shots: UnsafeRawBufferPointer, _ r: Int, copies: Int, layout: FineTuneLayout,
                               segment: BackboneSegment) {
        let k = r % copies
        let pixels = shot(shots, r / copies)
        if k == 0 {
            do { try interpreter.setInput(pixels: pixels) } catch { return }  // sizes checked in prepare
        } else {
            let image = UnsafeMutableRawBufferPointer(start: base + layout.image.offset, count: layout.image.bytes)
            shiftImage(pixels, into: image, copy: k)
            do { try interpreter.setInput(pixels: UnsafeRawBufferPointer(image)) } catch { return }
        }
        runSegmentForward(layout: layout, segment: segment)
    }

    /// With the input set: the frozen prefix in the inference arena, the
    /// segment's inputs copied into their slots, then the segment op by op
    /// with the parameters of the `parameters` region.
    func runSegmentForward(layout: FineTuneLayout, segment: BackboneSegment) {
        for o in 0..<segment.firstOp { interpreter.run(o) }
        let table = int32s(layout.slots)
        let activations = base + layout.activations.offset
        for t in 0..<model.tensorCount {
            let e = table + 4 &* t
            guard e[0] >= 0 && e[1] < 0 else { continue }  // an input from the prefix
            let info = model.tensor(t)
            (activations + Int(e[0])).copyMemory(from: UnsafeRawPointer(base + info.dataOffset), byteCount: info.dataBytes)
        }
        for o in segment.firstOp..<segment.endOp { forwardOp(o, layout: layout) }
    }

    /// The feature tensor's bytes: its activation slot after a `bias` or
    /// `last` fine-tune, else its place in the inference arena.
    func featureBytes(_ info: TensorInfo) -> UnsafeRawPointer {
        if segment != nil, let layout { return featureBytes(info, layout: layout) }
        return UnsafeRawPointer(base + info.dataOffset)
    }

    private func featureBytes(_ info: TensorInfo, layout: FineTuneLayout) -> UnsafeRawPointer {
        let slot = int32s(layout.slots)[4 &* head.featureTensor]
        return UnsafeRawPointer(base + layout.activations.offset + Int(slot))
    }

    /// The segment's features, L2-normalised into `into` (f32 features only).
    private func normalisedFeatures(into: UnsafeMutablePointer<Float>, layout: FineTuneLayout) {
        let raw = featureBytes(model.tensor(head.featureTensor), layout: layout)
        l2NormalizeF32(input: raw.assumingMemoryBound(to: Float.self), output: into, count: head.featureCount)
    }

    // MARK: One op, forward and backward

    /// Tensor `t` of the segment: its activation slot, its trained copy, or the blob's constant.
    @inline(__always)
    private func values(_ t: Int, _ layout: FineTuneLayout) -> UnsafeMutablePointer<Float> {
        let e = int32s(layout.slots) + 4 &* t
        if e[0] >= 0 { return floats(layout.activations) + Int(e[0]) / 4 }
        if e[2] >= 0 { return floats(layout.parameters) + Int(e[2]) / 4 }
        return UnsafeMutablePointer(mutating: (model.base + model.tensor(t).dataOffset).assumingMemoryBound(to: Float.self))
    }

    /// The gradient slot of tensor `t` (an activation written in the segment, or
    /// a trained parameter), or nil when it has none.
    @inline(__always)
    private func gradient(_ t: Int, _ layout: FineTuneLayout) -> UnsafeMutablePointer<Float>? {
        guard t >= 0 else { return nil }
        let e = int32s(layout.slots) + 4 &* t
        if e[1] >= 0 { return floats(layout.activationGradients) + Int(e[1]) / 4 }
        if e[2] >= 0 { return floats(layout.parameterGradients) + Int(e[2]) / 4 }
        return nil
    }

    /// Op `o` of the segment on the slots (the same kernels as ``Interpreter/run(_:)``).
    private func forwardOp(_ o: Int, layout: FineTuneLayout) {
        let op = model.op(o)
        let x = model.tensor(op.inputs.0), y = model.tensor(op.output)
        let input = UnsafePointer(values(op.inputs.0, layout)), output = values(op.output, layout)
        let bias: UnsafePointer<Float>? = op.inputs.2 >= 0 ? UnsafePointer(values(op.inputs.2, layout)) : nil
        switch op.opcode {
        case .dense:
            let w = model.tensor(op.inputs.1)
            denseF32(input: input, weights: values(op.inputs.1, layout), bias: bias, output: output,
                     inputCount: w.dims.1, outputCount: w.dims.0, clamp: clampF32(op.activation))
        case .conv2d:
            let w = model.tensor(op.inputs.1)
            conv2dF32(input: input, weights: values(op.inputs.1, layout), bias: bias, output: output,
                      window: convolutionWindow(op, x, y, w), clamp: clampF32(op.activation))
        case .depthwiseConv2d:
            let w = model.tensor(op.inputs.1)
            depthwiseConv2dF32(input: input, weights: values(op.inputs.1, layout), bias: bias, output: output,
                               window: convolutionWindow(op, x, y, w), clamp: clampF32(op.activation))
        case .maxPool2d:
            maxPool2dF32(input: input, output: output, window: poolWindow(op, x, y))
        case .avgPool2d:
            avgPool2dF32(input: input, output: output, window: poolWindow(op, x, y))
        case .globalAveragePool:
            globalAveragePoolF32(input: input, output: output, height: x.dims.0, width: x.dims.1, channels: x.dims.2)
        case .reshape:
            output.update(from: input, count: y.elementCount)
        case .add:
            addF32(a: input, b: values(op.inputs.1, layout), output: output, count: y.elementCount,
                   clamp: clampF32(op.activation))
        case .softmax, .quantize, .dequantize, .l2Normalize:
            return  // no backward (Opcode.hasBackward): BackboneSegment admits none of these
        }
    }

    /// The backward of op `o`: its fused clamp's mask on its output's
    /// gradient, then the gradients of its inputs and trained parameters (accumulated).
    private func backwardOp(_ o: Int, layout: FineTuneLayout) {
        let op = model.op(o)
        let x = model.tensor(op.inputs.0), y = model.tensor(op.output)
        guard let dy = gradient(op.output, layout) else { return }
        let output = UnsafePointer(values(op.output, layout))
        activationBackwardF32(output: output, gradient: dy, count: y.elementCount, clamp: clampF32(op.activation))
        let input = UnsafePointer(values(op.inputs.0, layout))
        let dx = gradient(op.inputs.0, layout)
        switch op.opcode {
        case .dense:
            let w = model.tensor(op.inputs.1)
            denseBackwardF32(input: input, weights: values(op.inputs.1, layout), outputGradient: dy, inputGradient: dx,
                             weightGradient: gradient(op.inputs.1, layout), biasGradient: gradient(op.inputs.2, layout),
                             inputCount: w.dims.1, outputCount: w.dims.0)
        case .conv2d:
            let w = model.tensor(op.inputs.1)
            conv2dBackwardF32(input: input, weights: values(op.inputs.1, layout), outputGradient: dy, inputGradient: dx,
                              weightGradient: gradient(op.inputs.1, layout), biasGradient: gradient(op.inputs.2, layout),
                              window: convolutionWindow(op, x, y, w))
        case .depthwiseConv2d:
            let w = model.tensor(op.inputs.1)
            depthwiseConv2dBackwardF32(input: input, weights: values(op.inputs.1, layout), outputGradient: dy,
                                       inputGradient: dx, weightGradient: gradient(op.inputs.1, layout),
                                       biasGradient: gradient(op.inputs.2, layout), window: convolutionWindow(op, x, y, w))
        case .maxPool2d:
            if let dx { maxPool2dBackwardF32(input: input, output: output, outputGradient: dy, inputGradient: dx,
                                             window: poolWindow(op, x, y)) }
        case .avgPool2d:
            if let dx { avgPool2dBackwardF32(outputGradient: dy, inputGradient: dx, window: poolWindow(op, x, y)) }
        case .globalAveragePool:
            if let dx { globalAveragePoolBackwardF32(outputGradient: dy, inputGradient: dx, height: x.dims.0,
                                                     width: x.dims.1, channels: x.dims.2) }
        case .reshape:
            if let dx { for i in 0..<y.elementCount { dx[i] += dy[i] } }
        case .add:
            if let dx { for i in 0..<y.elementCount { dx[i] += dy[i] } }
            if let db = gradient(op.inputs.1, layout) { for i in 0..<y.elementCount { db[i] += dy[i] } }
        case .softmax, .quantize, .dequantize, .l2Normalize:
            return  // no backward (Opcode.hasBackward): BackboneSegment admits none of these
        }
    }
}
