// The C API (Targets/include/sprig.h): @_cdecl exports over Model and
// Interpreter. The state block is the caller's memory; it holds one
// `CState` value, which is plain data (pointers and integers), so it can
// live in raw memory and needs no deinitialisation.

/// What the opaque state block holds.
struct CState {
    /// Nil after a failed load: the state then only carries the error.
    var model: Model?
    var interpreter: Interpreter?
    var lastError: SprigError?
    /// Set by a successful `sprig_finetune`; serialises the tuned blob.
    var tuner: FineTuner?
}

let sprigOK: Int32 = 0
let sprigInvalidBlob: Int32 = -1
let sprigStateTooSmall: Int32 = -2
let sprigArena: Int32 = -3
let sprigArgument: Int32 = -4
let sprigNotBound: Int32 = -5
let sprigFineTune: Int32 = -6
let sprigNoNames: Int32 = -7

@_cdecl("sprig_state_bytes")
public func sprigStateBytes() -> Int {
    MemoryLayout<CState>.size
}

@_cdecl("sprig_load")
public func sprigLoad(_ blob: UnsafeRawPointer?, _ blobBytes: Int, _ state: UnsafeMutableRawPointer?,
                      _ stateBytes: Int, _ arenaBytes: UnsafeMutablePointer<UInt32>?) -> Int32 {
    guard let state, stateBytes >= MemoryLayout<CState>.size,
          Int(bitPattern: state) % MemoryLayout<CState>.alignment == 0 else { return sprigStateTooSmall }
    do {
        let model = try Model(bytes: UnsafeRawBufferPointer(start: blob, count: blob == nil ? 0 : blobBytes))
        state.initializeMemory(as: CState.self, repeating: CState(model: model, interpreter: nil, lastError: nil, tuner: nil), count: 1)
        arenaBytes?.pointee = UInt32(truncatingIfNeeded: model.arenaBytes)
        return sprigOK
    } catch {
        state.initializeMemory(as: CState.self, repeating: CState(model: nil, interpreter: nil, lastError: error, tuner: nil), count: 1)
        arenaBytes?.pointee = 0
        return sprigInvalidBlob
    }
}

@inline(__always)
func cstate(_ p: UnsafeRawPointer?) -> UnsafeMutablePointer<CState>? {
    guard let p else { return nil }
    return UnsafeMutablePointer(mutating: p.assumingMemoryBound(to: CState.self))
}

@_cdecl("sprig_arena_bytes")
public func sprigArenaBytes(_ state: UnsafeRawPointer?) -> UInt32 {
    guard let model = cstate(state)?.pointee.model else { return 0 }
    return UInt32(truncatingIfNeeded: model.arenaBytes)
}

@_cdecl("sprig_finetune_arena_bytes")
public func sprigFinetuneArenaBytes(_ state: UnsafeRawPointer?) -> UInt32 {
    guard let model = cstate(state)?.pointee.model else { return 0 }
    return UInt32(truncatingIfNeeded: model.finetuneArenaBytes)
}

@_cdecl("sprig_bind")
public func sprigBind(_ state: UnsafeMutableRawPointer?, _ arena: UnsafeMutableRawPointer?, _ arenaBytes: Int) -> Int32 {
    guard let s = cstate(state), let model = s.pointee.model else { return sprigNotBound }
    do {
        let buffer = UnsafeMutableRawBufferPointer(start: arena, count: arena == nil ? 0 : arenaBytes)
        s.pointee.interpreter = try Interpreter(model: model, arena: buffer)
        return sprigOK
    } catch {
        s.pointee.lastError = error
        return sprigArena
    }
}

@_cdecl("sprig_set_input_u8")
public func sprigSetInputU8(_ state: UnsafeMutableRawPointer?, _ pixels: UnsafePointer<UInt8>?, _ count: Int) -> Int32 {
    guard let s = cstate(state), let interpreter = s.pointee.interpreter else { return sprigNotBound }
    do {
        try interpreter.setInput(pixels: UnsafeRawBufferPointer(start: pixels, count: pixels == nil ? 0 : count))
        return sprigOK
    } catch {
        s.pointee.lastError = error
        return sprigArgument
    }
}

@_cdecl("sprig_invoke")
public func sprigInvoke(_ state: UnsafeMutableRawPointer?) {
    cstate(state)?.pointee.interpreter?.invoke()
}

@_cdecl("sprig_output_count")
public func sprigOutputCount(_ state: UnsafeRawPointer?) -> Int32 {
    guard let i = cstate(state)?.pointee.interpreter else { return 0 }
    return Int32(truncatingIfNeeded: i.outputCount)
}

@_cdecl("sprig_output")
public func sprigOutput(_ state: UnsafeRawPointer?, _ index: Int32) -> Float {
    guard let i = cstate(state)?.pointee.interpreter, index >= 0, Int(index) < i.outputCount else { return .nan }
    return i.output(Int(index))
}

@_cdecl("sprig_argmax")
public func sprigArgmax(_ state: UnsafeRawPointer?) -> Int32 {
    guard let i = cstate(state)?.pointee.interpreter else { return -1 }
    return Int32(truncatingIfNeeded: i.argmax())
}

@_cdecl("sprig_error_message")
public func sprigErrorMessage(_ state: UnsafeRawPointer?, _ buffer: UnsafeMutablePointer<CChar>?, _ bytes: Int) -> Int {
    // Written straight into the caller's buffer, without a String (MessageWriter.swift).
    let start = UnsafeMutableRawPointer(buffer)?.assumingMemoryBound(to: UInt8.self)
    var w = MessageWriter(into: start, capacity: bytes - 1)
    if let error = cstate(state)?.pointee.lastError { error.write(to: &w) } else { w.text("no error") }
    if let buffer, bytes > 0 { buffer[min(w.count, bytes - 1)] = 0 }
    return w.count
}

/// Class `index`'s name from the blob's `labels` (see `Model.className`): copies at most
/// `bytes − 1` bytes and a NUL into `buffer` and returns the name's full length, like
/// `snprintf`; `buffer` may be NULL when `bytes` is 0 (a length query).
@_cdecl("sprig_class_name")
public func sprigClassName(_ state: UnsafeRawPointer?, _ index: Int32, _ buffer: UnsafeMutablePointer<CChar>?,
                           _ bytes: Int) -> Int32 {
    guard let s = cstate(state), let model = s.pointee.model else { return sprigNotBound }
    let count = model.classNameCount
    guard count > 0 else {
        s.pointee.lastError = .argumentMismatch(expected: 0, found: Int(index))
        return sprigNoNames
    }
    guard let name = model.className(Int(index)), buffer != nil || bytes == 0 else {
        s.pointee.lastError = .argumentMismatch(expected: count, found: Int(index))
        return sprigArgument
    }
    if let buffer, bytes > 0 {
        let n = min(name.count, bytes - 1)
        for i in 0..<n { buffer[i] = CChar(bitPattern: name[i]) }
        buffer[n] = 0
    }
    return Int32(truncatingIfNeeded: name.count)
}

@_cdecl("sprig_finetune")
public func sprigFinetune(_ state: UnsafeMutableRawPointer?, _ arena: UnsafeMutableRawPointer?, _ arenaBytes: Int,
                          _ shots: UnsafePointer<UInt8>?, _ labels: UnsafePointer<UInt8>?, _ shotCount: Int,
                          _ classes: Int32, _ method: Int32, _ epochs: Int32, _ seed: UInt64) -> Int32 {
    guard let s = cstate(state), let model = s.pointee.model else { return sprigNotBound }
    // Arguments first: a bad one is SPRIG_E_ARGUMENT, and nothing changes.
    guard method >= 1 && method <= 5, let m = FineTuneMethod(rawValue: UInt8(truncatingIfNeeded: method)) else {
        s.pointee.lastError = .argumentMismatch(expected: Int(FineTuneMethod.head.rawValue), found: Int(method))
        return sprigArgument
    }
    guard epochs >= 0 else {
        s.pointee.lastError = .fineTune(.invalidOption(option: .epochs, value: Int(epochs)))
        return sprigArgument
    }
    do throws(SprigError) {
        var tuner = try FineTuner(model: model, arena: UnsafeMutableRawBufferPointer(start: arena, count: arena == nil ? 0 : arenaBytes))
        // Adam when the plan holds it, else SGD; the augmentation the plan allows.
        var options = tuner.plannedOptions(method: m)
        if epochs > 0 { options.epochs = Int(epochs) }
        options.seed = seed
        // shot_count × input elements, checked: a huge count is an error, not a trap.
        let (pixelBytes, overflow) = shotCount.multipliedReportingOverflow(by: tuner.inputElements)
        guard shotCount >= 0, !overflow else {
            s.pointee.lastError = .argumentMismatch(expected: Int.max / max(1, tuner.inputElements), found: shotCount)
            return sprigArgument
        }
        let pixels = UnsafeRawBufferPointer(start: shots, count: shots == nil ? 0 : pixelBytes)
        let labelBytes = UnsafeRawBufferPointer(start: labels, count: labels == nil ? 0 : shotCount)
        try tuner.fineTune(shots: pixels, labels: labelBytes, classCount: Int(classes), options: options)
        s.pointee.tuner = tuner
        return sprigOK
    } catch {
        s.pointee.lastError = error
        return sprigFineTune
    }
}

@_cdecl("sprig_macs")
public func sprigMacs(_ state: UnsafeRawPointer?) -> UInt64 {
    cstate(state)?.pointee.model?.work.macs ?? 0
}

@_cdecl("sprig_element_ops")
public func sprigElementOps(_ state: UnsafeRawPointer?) -> UInt64 {
    cstate(state)?.pointee.model?.work.elementOps ?? 0
}

@_cdecl("sprig_tuned_blob_bytes")
public func sprigTunedBlobBytes(_ state: UnsafeRawPointer?) -> Int {
    guard let s = cstate(state), let tuner = s.pointee.tuner else { return Int(sprigFineTune) }
    do {
        return try tuner.tunedBlobBytes()
    } catch {
        s.pointee.lastError = error
        return Int(sprigFineTune)
    }
}

/// `names`: UTF-8 class names separated by ',' (`names_bytes` bytes, no NUL needed), one per
/// fine-tuned class; they become the tuned blob's `labels`. NULL or 0 bytes: no names.
@inline(__always)
func cNames(_ names: UnsafePointer<CChar>?, _ bytes: Int) -> UnsafeRawBufferPointer? {
    guard let names, bytes > 0 else { return nil }
    return UnsafeRawBufferPointer(start: UnsafeRawPointer(names), count: bytes)
}

@_cdecl("sprig_tuned_blob_bytes_named")
public func sprigTunedBlobBytesNamed(_ state: UnsafeRawPointer?, _ names: UnsafePointer<CChar>?, _ namesBytes: Int) -> Int {
    guard let s = cstate(state), let tuner = s.pointee.tuner else { return Int(sprigFineTune) }
    do {
        return try tuner.tunedBlobBytes(classNames: cNames(names, namesBytes))
    } catch {
        s.pointee.lastError = error
        return Int(sprigFineTune)
    }
}

@_cdecl("sprig_write_tuned_blob")
public func sprigWriteTunedBlob(_ state: UnsafeRawPointer?, _ buffer: UnsafeMutableRawPointer?, _ bytes: Int) -> Int {
    guard let s = cstate(state), let tuner = s.pointee.tuner else { return Int(sprigFineTune) }
    do {
        return try tuner.writeTunedBlob(into: UnsafeMutableRawBufferPointer(start: buffer, count: buffer == nil ? 0 : bytes))
    } catch {
        s.pointee.lastError = error
        return Int(sprigFineTune)
    }
}

@_cdecl("sprig_write_tuned_blob_named")
public func sprigWriteTunedBlobNamed(_ state: UnsafeRawPointer?, _ names: UnsafePointer<CChar>?, _ namesBytes: Int,
                                     _ buffer: UnsafeMutableRawPointer?, _ bytes: Int) -> Int {
    guard let s = cstate(state), let tuner = s.pointee.tuner else { return Int(sprigFineTune) }
    do {
        return try tuner.writeTunedBlob(into: UnsafeMutableRawBufferPointer(start: buffer, count: buffer == nil ? 0 : bytes),
                                        classNames: cNames(names, namesBytes))
    } catch {
        s.pointee.lastError = error
        return Int(sprigFineTune)
    }
}
