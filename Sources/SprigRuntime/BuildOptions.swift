// Compile-time options of the runtime, for images that must be small.
//
// SPRIG_INT8_ONLY (`swiftc -D SPRIG_INT8_ONLY`, tools/cortex-m-build's
// q8-infer and q8-tune images): the interpreter's dispatch leaves out the
// Float32 kernels of Conv2D, DepthwiseConv2D, the pools and Add, so a linker
// that drops unreferenced sections drops them too. Such a runtime still loads
// and runs every int8 blob, and every blob it fine-tunes: their Quantize,
// Dequantize, Reshape and L2Normalize are kept, and so are the Float32 Dense
// and Softmax, the head of a tuned int8 blob. It refuses a blob with another
// op in Float32 at load, with ``SprigError/f32NotBuilt(op:opcode:)``, and the
// fine-tuning methods that train the backbone (`bias`, `last`: Float32 blobs
// only) with ``FineTuneError/methodNeedsFloat32(method:)``, so that training
// code goes too.

#if SPRIG_INT8_ONLY
/// False: this runtime was built with `-D SPRIG_INT8_ONLY`.
let f32KernelsBuilt = false
#else
/// True: the interpreter dispatches to the Float32 kernels (the default build).
let f32KernelsBuilt = true
#endif

extension Opcode {
    /// True when an int8-only runtime leaves out the op's Float32 kernel, so
    /// cannot run it in Float32. Dense and Softmax (a tuned int8 blob's head),
    /// Quantize, Dequantize, Reshape and L2Normalize run in every build.
    var f32KernelLeftOutOfInt8Only: Bool {
        switch self {
        case .conv2d, .depthwiseConv2d, .maxPool2d, .avgPool2d, .globalAveragePool, .add:
            return true
        case .dense, .softmax, .reshape, .quantize, .dequantize, .l2Normalize:
            return false
        }
    }
}

// SPRIG_COMPACT_KERNELS (`swiftc -D SPRIG_COMPACT_KERNELS`, every image of
// tools/cortex-m-build): for a core without SIMD. The int8 Conv2D leaves out
// its tiles of 4 pixels × 16, 8 or 4 channels and its blocks of 32 channels,
// and runs every pixel in blocks of 8 channels (one channel at a time below 8);
// the int8 DepthwiseConv2D takes blocks of 8 channels only. The sums are
// integers, so the outputs are the same bits. The Float32 Dense takes its rows
// one at a time instead of four: each row's sums are the same operations in the
// same order, so the same bits. On the Cortex-M4,
// where the wide paths' vectors become scalar code that spills registers, it
// is about 21 KB less flash and 21% fewer instructions per ref-cnn q8
// inference, but 31% more on the all-ops blob's few-channel convolutions
// (docs/size-history.md). Not for a core with SIMD.

#if SPRIG_COMPACT_KERNELS
/// False: built with `-D SPRIG_COMPACT_KERNELS`.
let tiledKernelsBuilt = false
#else
/// True: the int8 Conv2D has its tiled paths (the default build).
let tiledKernelsBuilt = true
#endif
