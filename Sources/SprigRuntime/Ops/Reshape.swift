// Reshape, Float32 and int8: the same bytes under another shape.
//
//   input   any shape, N elements
//   output  any shape, N elements (the interpreter copies the bytes; the
//           planner may give both one place)

// MARK: - Validation (at load)

extension Model {
    /// Reshape op `o` with input `xi`: an output of the same dtype and element
    /// count; in int8 the input's quantization. No params.
    func validateReshape(_ o: Int, _ op: OpInfo, _ xi: TensorInfo) throws(SprigError) {
        try expectNoActivation(o, op)
        let x = op.inputs.0
        try expectCount(o, op, 1)
        try expectArena(o, 0, x)
        let out = tensor(op.output)
        try expectDType(o, -1, out, xi.dtype)
        guard out.elementCount == xi.elementCount else {
            throw .shapeMismatch(op: o, slot: -1, expected: xi.elementCount, found: out.elementCount)
        }
        if xi.dtype == .i8 { try expectSameQuant(o, x, op.output) }
        try expectZeroParams(o, op, from: 0)
    }
}
