// int8 products four at a time: the 8-bit dot-product instructions (VNNI's vpdpbusd
// on x86-64), for the q8 convolution tiles and Dense.
//
// vpdpbusd multiplies unsigned bytes by signed bytes, four per Int32 lane, and adds
// the four products to the lane. Sprig's activations are signed, so the kernels feed
// it x + 128 (x XOR 0x80, a UInt8) and take 128·Σw back out of the accumulator's
// starting value, where the zero point's zp·Σw already goes:
//
//     Σ (x − zp)·w = Σ (x + 128)·w − (zp + 128)·Σ w
//
// Both sides are exact in wrapping Int32 arithmetic, so the results are bit for bit
// those of the one-tap loops (KernelQ8Tests compares them with a naive loop).
//
// The weights are HWIO: the four taps j ..< j + 4 of one output channel sit `cout`
// bytes apart. `quadRows` gathers them into the instruction's layout, four taps of
// channel 0, then of channel 1, … (a byte transpose, shared by the 4 pixels of a tile).
// A kernel row's last 1–3 taps (when its tap count is not a multiple of 4) go through
// the pair and one-tap loops, with the same + 128 (`tapInputOffset`). A short quad
// with zero weights for the missing taps measured slower (15 against 10 µs on a
// 3×3 conv of one input channel): it has to gather its input bytes one by one.
#if (arch(x86_64) && SPRIG_ISA_VNNI) || (arch(arm64) && SPRIG_ISA_DOTPROD)
import SprigISA
#endif

/// Whether the int8 kernels take taps in fours through `dotBytes` (a build with VNNI,
/// see Package.swift). They then take no pairs (`pairedTaps`) either.
@inline(__always)
var quadTaps: Bool {
    #if arch(x86_64) && SPRIG_ISA_VNNI
    return true
    #else
    return false
    #endif
}

/// What the q8 tiles add to each input byte before a product: 128 with quads of taps
/// (the unsigned operand of `dotBytes`, see above; the taps left after the quads take
/// it too), else 0.
@inline(__always)
var tapInputOffset: Int32 { quadTaps ? 128 : 0 }

/// The value the q8 tiles take out through `initial`, times Σ w: the zero point, plus
/// `tapInputOffset`.
@inline(__always)
func tileInputOffset(zeroPoint: Int32) -> Int32 {
    zeroPoint &+ tapInputOffset
}

#if arch(x86_64) && SPRIG_ISA_VNNI

/// The 4 input bytes `p[0 ..< 4]`, each plus 128 (XOR 0x80), as one Int32 lane repeated:
/// the unsigned operand of `dotBytes`.
@inline(__always)
func inputQuad8(_ p: UnsafePointer<Int8>) -> SIMD8<Int32> {
    SIMD8(repeating: Int32(bitPattern: UnsafeRawPointer(p).loadUnaligned(as: UInt32.self) ^ 0x8080_8080))
}

/// `inputQuad8` in 4 lanes.
@inline(__always)
func inputQuad4(_ p: UnsafePointer<Int8>) -> SIMD4<Int32> {
    SIMD4(repeating: Int32(bitPattern: UnsafeRawPointer(p).loadUnaligned(as: UInt32.self) ^ 0x8080_8080))
}

#endif

#if (arch(x86_64) && SPRIG_ISA_VNNI) || (arch(arm64) && SPRIG_ISA_DOTPROD)

/// `[a0, b0, a1, b1, …]`: two vectors interleaved lane by lane (one two-source shuffle,
/// vpunpcklbw/vpunpckhbw or vpunpcklwd/vpunpckhwd; written lane by lane so that LLVM sees it).
@inline(__always)
func interleaveLanes(_ a: SIMD16<Int8>, _ b: SIMD16<Int8>) -> SIMD32<Int8> {
    SIMD32<Int8>(a[0], b[0], a[1], b[1], a[2], b[2], a[3], b[3], a[4], b[4], a[5], b[5], a[6], b[6], a[7], b[7], a[8], b[8], a[9], b[9], a[10], b[10], a[11], b[11], a[12], b[12], a[13], b[13], a[14], b[14], a[15], b[15])
}

/// `interleaveLanes` of 8 bytes.
@inline(__always)
func interleaveLanes(_ a: SIMD8<Int8>, _ b: SIMD8<Int8>) -> SIMD16<Int8> {
    SIMD16<Int8>(a[0], b[0], a[1], b[1], a[2], b[2], a[3], b[3], a[4], b[4], a[5], b[5], a[6], b[6], a[7], b[7])
}

/// `interleaveLanes` of 4 bytes.
@inline(__always)
func interleaveLanes(_ a: SIMD4<Int8>, _ b: SIMD4<Int8>) -> SIMD8<Int8> {
    SIMD8<Int8>(a[0], b[0], a[1], b[1], a[2], b[2], a[3], b[3])
}

/// `interleaveLanes` of 16 halfwords.
@inline(__always)
func interleaveLanes(_ a: SIMD16<Int16>, _ b: SIMD16<Int16>) -> SIMD32<Int16> {
    SIMD32<Int16>(a[0], b[0], a[1], b[1], a[2], b[2], a[3], b[3], a[4], b[4], a[5], b[5], a[6], b[6], a[7], b[7], a[8], b[8], a[9], b[9], a[10], b[10], a[11], b[11], a[12], b[12], a[13], b[13], a[14], b[14], a[15], b[15])
}

/// `interleaveLanes` of 8 halfwords.
@inline(__always)
func interleaveLanes(_ a: SIMD8<Int16>, _ b: SIMD8<Int16>) -> SIMD16<Int16> {
    SIMD16<Int16>(a[0], b[0], a[1], b[1], a[2], b[2], a[3], b[3], a[4], b[4], a[5], b[5], a[6], b[6], a[7], b[7])
}

/// `interleaveLanes` of 4 halfwords.
@inline(__always)
func interleaveLanes(_ a: SIMD4<Int16>, _ b: SIMD4<Int16>) -> SIMD8<Int16> {
    SIMD8<Int16>(a[0], b[0], a[1], b[1], a[2], b[2], a[3], b[3])
}

/// The weight rows `w + k·step` (k < 4) of 16 channels,
/// transposed to `dotBytes` order: byte 4c + k = row k, channel c. Channels 0 ..< 8 in
/// the first vector, 8 ..< 16 in the second. Two rounds of interleaves: bytes of rows
/// 0 and 1 (and of 2 and 3) into pairs per channel, then the pairs into quads.
@inline(__always)
func quadRows16(_ w: UnsafePointer<Int8>, step: Int) -> (SIMD8<Int32>, SIMD8<Int32>) {
    let r0: SIMD16<Int8> = loadLanes(w)
    let r1: SIMD16<Int8> = loadLanes(w + step)
    let r2: SIMD16<Int8> = loadLanes(w + 2 &* step)
    let r3: SIMD16<Int8> = loadLanes(w + 3 &* step)
    let pairs01 = unsafeBitCast(interleaveLanes(r0, r1), to: SIMD16<Int16>.self)
    let pairs23 = unsafeBitCast(interleaveLanes(r2, r3), to: SIMD16<Int16>.self)
    let quads = unsafeBitCast(interleaveLanes(pairs01, pairs23), to: SIMD16<Int32>.self)
    return (quads.lowHalf, quads.highHalf)
}

/// `quadRows16` for 8 channels.
@inline(__always)
func quadRows8(_ w: UnsafePointer<Int8>, step: Int) -> SIMD8<Int32> {
    let r0: SIMD8<Int8> = loadLanes(w)
    let r1: SIMD8<Int8> = loadLanes(w + step)
    let r2: SIMD8<Int8> = loadLanes(w + 2 &* step)
    let r3: SIMD8<Int8> = loadLanes(w + 3 &* step)
    let pairs01 = unsafeBitCast(interleaveLanes(r0, r1), to: SIMD8<Int16>.self)
    let pairs23 = unsafeBitCast(interleaveLanes(r2, r3), to: SIMD8<Int16>.self)
    return unsafeBitCast(interleaveLanes(pairs01, pairs23), to: SIMD8<Int32>.self)
}

/// `quadRows16` for 4 channels.
@inline(__always)
func quadRows4(_ w: UnsafePointer<Int8>, step: Int) -> SIMD4<Int32> {
    let r0: SIMD4<Int8> = loadLanes(w)
    let r1: SIMD4<Int8> = loadLanes(w + step)
    let r2: SIMD4<Int8> = loadLanes(w + 2 &* step)
    let r3: SIMD4<Int8> = loadLanes(w + 3 &* step)
    let pairs01 = unsafeBitCast(interleaveLanes(r0, r1), to: SIMD4<Int16>.self)
    let pairs23 = unsafeBitCast(interleaveLanes(r2, r3), to: SIMD4<Int16>.self)
    return unsafeBitCast(interleaveLanes(pairs01, pairs23), to: SIMD4<Int32>.self)
}

#endif

// The dot product of the packed kernels (Conv2DPackedQ8.swift): vpdpbusd on x86-64 with
// VNNI, whose first operand is unsigned, so the inputs go in as x + 128 (XOR 0x80); or
// sdot on aarch64 with the dot-product extension, signed × signed, the inputs as they
// are. Either way a lane gets Σ_{k<4} (x_k + packedInputOffset)·w_k, and the kernels take
// (zp + packedInputOffset)·Σ w back out.
#if (arch(x86_64) && SPRIG_ISA_VNNI) || (arch(arm64) && SPRIG_ISA_DOTPROD)

/// What the packed kernels add to each input byte before its product.
@inline(__always)
var packedInputOffset: Int32 {
    #if arch(x86_64)
    return 128
    #else
    return 0
    #endif
}

/// The 4 input bytes `p[0 ..< 4]`, plus `packedInputOffset` each, as one Int32 lane repeated.
@inline(__always)
func packedInputQuad(_ p: UnsafePointer<Int8>) -> SIMD8<Int32> {
    #if arch(x86_64)
    return inputQuad8(p)
    #else
    return SIMD8(repeating: UnsafeRawPointer(p).loadUnaligned(as: Int32.self))
    #endif
}

/// `acc[i] + Σ_{k<4} inputs[4i+k]·weights[4i+k]` over bytes, the input bytes as
/// `packedInputQuad` made them, the weights signed (one vpdpbusd, or two sdot).
@inline(__always)
func quadDot(_ acc: SIMD8<Int32>, inputs: SIMD8<Int32>, weights: SIMD8<Int32>) -> SIMD8<Int32> {
    #if arch(x86_64)
    return dotBytes(acc, unsigned: inputs, signed: weights)
    #else
    return SIMD8(lowHalf: signedDotBytes(acc.lowHalf, inputs.lowHalf, weights.lowHalf),
                 highHalf: signedDotBytes(acc.highHalf, inputs.highHalf, weights.highHalf))
    #endif
}

#endif

/// The instruction set the kernels of this build were compiled for (Package.swift's
/// `SPRIG_ISA` on x86-64; the target's own on other architectures), as `sprig bench`
/// and `sprig-edge bench` print it.
public var kernelInstructionSet: String {
    #if arch(x86_64)
    #if SPRIG_ISA_AVX512_VNNI
    return "x86-64 AVX-512 (F, BW, DQ, VL) + VNNI, FMA"
    #elseif SPRIG_ISA_AVX_VNNI
    return "x86-64 AVX2 + AVX-VNNI, FMA"
    #elseif SPRIG_ISA_AVX2
    return "x86-64 AVX2, FMA"
    #else
    return "x86-64 SSE2 (no AVX2: slow)"
    #endif
    #elseif arch(arm64) && SPRIG_ISA_DOTPROD
    return "aarch64 NEON + dot product (sdot)"
    #elseif arch(arm64)
    return "aarch64 NEON"
    #elseif arch(arm)
    return "32-bit ARM"
    #elseif arch(riscv32) || arch(riscv64)
    return "RISC-V"
    #else
    return "generic"
    #endif
}
