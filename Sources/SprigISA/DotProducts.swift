// The 8-bit dot-product instructions of the build's instruction set, for the int8 kernels
// of SprigRuntime. Swift has no intrinsics for them and LLVM does not form them from
// plain vector code, so this module calls the LLVM intrinsics through `Builtin`, which
// only a module compiled with -parse-stdlib sees (Package.swift). It is the one place in
// Sprig that does: every function is one instruction on vectors the caller already has,
// with the exact integer semantics written beside it, and KernelQ8Tests compares the
// kernels that use it with a naive loop.
//
// Built on x86-64 with VNNI (SPRIG_ISA_VNNI: AVX-512 VNNI with VL, or AVX-VNNI), and on
// aarch64 with the dot-product extension (SPRIG_ISA_DOTPROD: `tools/cross-build
// aarch64-linux-gnu-dotprod`, for ARMv8.2-A cores such as the Cortex-A55 and A76);
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

#if arch(arm64) && SPRIG_ISA_DOTPROD

/// `r[i] = acc[i] + Σ_{k<4} a[4i+k]·b[4i+k]`, with the bytes of `a` and of `b` read as
/// Int8, in wrapping Int32 (sdot v.4s, v.16b, v.16b).
///
/// The four products of a lane sum to at most 4·128·128 in magnitude, so only the
/// accumulation can wrap, as `&+` does.
///
/// Example: a = [1, −3, 5, 7] and b = 2 in every byte of lane 0: r[0] = acc[0] + 20.
@inlinable @inline(__always)
public func signedDotBytes(_ acc: SIMD4<Int32>, _ a: SIMD4<Int32>, _ b: SIMD4<Int32>) -> SIMD4<Int32> {
    let a8 = unsafeBitCast(a, to: SIMD16<Int8>.self), b8 = unsafeBitCast(b, to: SIMD16<Int8>.self)
    var r = SIMD4<Int32>()
    r._storage._value = Builtin.int_aarch64_neon_sdot_Vec4xInt32_Vec16xInt8(acc._storage._value, a8._storage._value,
                                                                           b8._storage._value)
    return r
}

#endif
