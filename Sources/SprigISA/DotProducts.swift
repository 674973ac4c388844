// The 8-bit dot-product instructions of the build's instruction set, for the int8 kernels
// of SprigRuntime. Swift has no intrinsics for them and LLVM does not form them from
// plain vector code, so this module calls the LLVM intrinsics through `Builtin`, which
// only a module compiled with -parse-stdlib sees (Package.swift). It is the one place in
// Sprig that does: every function is one instruction on vectors the caller already has,
// with the exact integer semantics written beside it, and KernelQ8Tests compares the
// kernels that use it with a naive loop.
//
// Built only on x86-64 with VNNI (SPRIG_ISA_VNNI: AVX-512 VNNI with VL, or AVX-VNNI);
// elsewhere this file is empty and the kernels keep their portable loops.
import Swift

#if arch(x86_64) && SPRIG_ISA_VNNI

/// `r[i] = acc[i] + Σ_{k<4} u[4i+k]·s[4i+k]`, with `u` the bytes of `unsigned` read as
/// UInt8 and `s` the bytes of `signed` read as Int8, in wrapping Int32 (vpdpbusd ymm).
///
/// The four products of a lane sum to at most 4·255·128 in magnitude, so only the
/// accumulation can wrap, as `&+` does.
///
/// Example: u = 200 in every byte, s = [1, −3, 5, 7] in lane 0: r[0] = acc[0] + 200·10.
@inlinable @inline(__always)
public func dotBytes(_ acc: SIMD8<Int32>, unsigned: SIMD8<Int32>, signed: SIMD8<Int32>) -> SIMD8<Int32> {
    var r = SIMD8<Int32>()
    r._storage._value = Builtin.int_x86_avx512_vpdpbusd_256(acc._storage._value, unsigned._storage._value,
                                                            signed._storage._value)
    return r
}

/// `dotBytes` on 4 lanes (vpdpbusd xmm).
@inlinable @inline(__always)
public func dotBytes(_ acc: SIMD4<Int32>, unsigned: SIMD4<Int32>, signed: SIMD4<Int32>) -> SIMD4<Int32> {
    var r = SIMD4<Int32>()
    r._storage._value = Builtin.int_x86_avx512_vpdpbusd_128(acc._storage._value, unsigned._storage._value,
                                                            signed._storage._value)
    return r
}

#endif
