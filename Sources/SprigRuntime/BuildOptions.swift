// Compile-time options of the runtime, for images that must be small.
//
// SPRIG_INT8_ONLY (`swiftc -D SPRIG_INT8_ONLY`, tools/cortex-m-build's
// q8-infer image): the interpreter's dispatch leaves out the Float32 kernels
// of the ops that compute (Dense, Conv2D, DepthwiseConv2D, the pools, Add,
// Softmax), so a linker that drops unreferenced sections drops them too. Such
// a runtime still loads and runs every int8 blob: their Quantize, Dequantize,
// Reshape and L2Normalize are kept. It refuses a blob whose ops compute in
// Float32 at load, with ``SprigError/f32NotBuilt(op:opcode:)``.
// Fine-tuning calls the Float32 kernels itself (BackboneTraining.swift), so
// an image that fine-tunes keeps those it reaches either way.

#if SPRIG_INT8_ONLY
/// False: this runtime was built with `-D SPRIG_INT8_ONLY`.
let f32KernelsBuilt = false
#else
/// True: the interpreter dispatches to the Float32 kernels (the default build).
let f32KernelsBuilt = true
#endif

extension Opcode {
    /// True when the op computes in its input's precision through a kernel of
    /// each precision (Dense to Softmax), so that an int8-only runtime cannot
    /// run it in Float32. Quantize, Dequantize, Reshape and L2Normalize need
    /// only what every build has.
    var hasF32Kernel: Bool {
        switch self {
        case .dense, .conv2d, .depthwiseConv2d, .maxPool2d, .avgPool2d, .globalAveragePool, .add, .softmax:
            return true
        case .reshape, .quantize, .dequantize, .l2Normalize:
            return false
        }
    }
}

// SPRIG_COMPACT_KERNELS (`swiftc -D SPRIG_COMPACT_KERNELS`, every image of
// tools/cortex-m-build): for a core without SIMD. The int8 Conv2D leaves out
// its tiles of 4 pixels × 16, 8 or 4 channels and its blocks of 32 channels,
// and runs every pixel in blocks of 8 channels (one channel at a time below 8).
// The sums are integers, so the outputs are the same bits. On the Cortex-M4,
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
