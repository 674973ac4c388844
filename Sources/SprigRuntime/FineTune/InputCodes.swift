// The backbone's input stage during fine-tuning: 8-bit pixels straight to the
// int8 codes the first int8 op reads, through a 256-entry table.
//
//   Interpreter:  pixels ─setInput─▶ f32 input ─Quantize (op 0)─▶ i8 input.q ─▶ op 1 …
//                 (shifted copy: pixels ─shiftImage─▶ scratch image ─setInput─▶ …)
//   here:         pixels ─table[p], shifted on the fly────────────▶ i8 input.q ─▶ op 1 …
//
// A pixel's code depends only on its value: `(p / 255 − mean) / std`, then the
// quantizer. The table is built once with the same functions the interpreter
// runs, so the codes are the same bytes; a shifted copy is written straight
// into the tensor, its uncovered border as table[0] (the zero pixels of
// `shiftImage`). The feature cache is filled with 25 to 225 backbone runs per
// fine-tune; this takes setInput, the Quantize op and the copy of the shifted
// image out of each.
//
// Used when the graph input is int8 (the table replaces setInput's quantizer), or
// Float32 read only by a Quantize as op 0 (the table replaces both); otherwise
// FineTuner keeps the interpreter's path.

/// Pixel value → input code, and where the codes go.
struct InputCodes {
    var table: InlineArray<256, Int8>
    /// Arena offset of the int8 tensor the codes are written to.
    var offset: Int
    /// The first op after the input stage (1 when op 0 is the Quantize it replaces).
    var firstOp: Int
    /// `[height][width][channels]` of the image (rank 3), or `[1][elements][1]`.
    var height: Int, width: Int, channels: Int

    /// The input stage of `model`, or nil when the interpreter's path must run
    /// (no int8 input code, another op reading the Float32 input, a Quantize op
    /// whose vector and scalar quantizers would disagree on a pixel value).
    ///
    /// - Parameter backboneEnd: the head's first op; op 0 must be before it.
    init?(model: Model, backboneEnd: Int) {
        guard let entry = model.input(0), backboneEnd > 0 else { return nil }
        let input = model.tensor(entry.tensor)
        var target = input
        var first = 0
        switch input.dtype {
        case .i8:
            break
        case .f32:
            let op = model.op(0)
            guard op.opcode == .quantize && op.inputs.0 == entry.tensor else { return nil }
            for o in 1..<model.opCount {
                let other = model.op(o)
                for s in 0..<other.inputCount where other.input(s) == entry.tensor { return nil }
            }
            target = model.tensor(op.output)
            first = 1
        case .i32:
            return nil
        }
        guard target.dtype == .i8, target.storage == .arena, target.elementCount == input.elementCount else {
            return nil
        }
        // The real value of each pixel value, exactly as Interpreter.setInput writes it.
        var values = InlineArray<256, Float>(repeating: 0)
        for p in 0..<256 { values[p] = (Float(p) / 255 - entry.mean) / entry.std }
        // Its code: setInput quantizes an int8 input one value at a time (the
        // scalar quantizer); the Quantize op runs 8 lanes at a time with a scalar
        // tail, so for it both must agree on all 256 values.
        let q = model.quant(target, 0)
        var scalar = InlineArray<256, Int8>(repeating: 0)
        var lanes = InlineArray<256, Int8>(repeating: 0)
        withUnsafeBytes(of: &values) { v in
            let x = v.baseAddress!.assumingMemoryBound(to: Float.self)
            withUnsafeMutableBytes(of: &scalar) { s in
                let out = s.baseAddress!.assumingMemoryBound(to: Int8.self)
                for p in 0..<256 {
                    quantizeF32ToQ8(input: x + p, output: out + p, count: 1, scale: q.scale, zeroPoint: q.zeroPoint)
                }
            }
            withUnsafeMutableBytes(of: &lanes) { l in
                quantizeF32ToQ8(input: x, output: l.baseAddress!.assumingMemoryBound(to: Int8.self), count: 256,
                                scale: q.scale, zeroPoint: q.zeroPoint)
            }
        }
        if first == 1 {
            for p in 0..<256 where scalar[p] != lanes[p] { return nil }
        }
        table = scalar
        offset = target.dataOffset
        firstOp = first
        if input.rank == 3 {
            (height, width, channels) = (input.dim(0), input.dim(1), input.dim(2))
        } else {
            (height, width, channels) = (1, input.elementCount, 1)
        }
    }

    /// Writes the codes of `pixels` (``height`` × ``width`` × ``channels`` bytes),
    /// shifted as copy `copy` (0: none; see ``shiftOffset(copy:)``), into the arena at `base`.
    func write(_ pixels: UnsafeRawBufferPointer, copy: Int, base: UnsafeMutableRawPointer) {
        guard let start = pixels.baseAddress else { return }
        let src = start.assumingMemoryBound(to: UInt8.self)
        let out = (base + offset).assumingMemoryBound(to: Int8.self)
        let rowBytes = width &* channels
        let (dy, dx) = copy == 0 ? (0, 0) : shiftOffset(copy: copy)
        // One copy of the table on the stack, read through a pointer.
        var codes = table
        withUnsafeBytes(of: &codes) { t in
            guard let lut = t.baseAddress?.assumingMemoryBound(to: Int8.self) else { return }
            let fill = lut[0]
            // Output row y shows input row y − dy; its columns [x0, x1) show input x − dx.
            let x0 = max(0, dx), x1 = min(width, width &+ dx)
            let inside = max(0, x1 &- x0) &* channels
            for y in 0..<height {
                let row = out + y &* rowBytes
                let sy = y &- dy
                guard sy >= 0 && sy < height && inside > 0 else {
                    row.update(repeating: fill, count: rowBytes)
                    continue
                }
                row.update(repeating: fill, count: x0 &* channels)
                let from = src + sy &* rowBytes + (x0 &- dx) &* channels
                let to = row + x0 &* channels
                for i in 0..<inside { to[i] = lut[Int(from[i])] }
                (to + inside).update(repeating: fill, count: rowBytes &- x0 &* channels &- inside)
            }
        }
    }
}

/// The (dy, dx) offset of shifted copy `copy` (1…4: one pixel right, left,
/// down, up; 5…8: two pixels): output pixel (y, x) shows input (y − dy, x − dx).
func shiftOffset(copy: Int) -> (dy: Int, dx: Int) {
    let step = (copy - 1) / 4 + 1
    switch (copy - 1) % 4 {
    case 0: return (0, step)
    case 1: return (0, -step)
    case 2: return (step, 0)
    default: return (-step, 0)
    }
}
