// Constants and record types of the .sprig blob, version 1.
// docs/blob-format.md is the specification; BlobReader.swift draws the layout.

/// Element type of a tensor, as stored on disk.
public enum DType: UInt8, Sendable {
    case f32 = 1
    case i8 = 2
    case i32 = 3

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .f32, .i32: return 4
        case .i8: return 1
        }
    }

    public var name: StaticString {
        switch self {
        case .f32: return "f32"
        case .i8: return "i8"
        case .i32: return "i32"
        }
    }
}

/// Where a tensor's bytes live.
public enum Storage: UInt8, Sendable {
    /// An activation, placed in the caller's arena by the plan.
    case arena = 0
    /// A constant, stored in the blob's DATA section and used in place.
    case constant = 1
}

/// The closed set of ops. The raw value is the opcode on disk; an unknown
/// value is rejected at load with ``SprigError/unknownOpcode(op:value:)``.
public enum Opcode: UInt8, CaseIterable, Sendable {
    case dense = 1
    case conv2d = 2
    case depthwiseConv2d = 3
    case maxPool2d = 4
    case avgPool2d = 5
    case globalAveragePool = 6
    case add = 7
    case reshape = 8
    case softmax = 9
    case quantize = 10
    case dequantize = 11
    case l2Normalize = 12

    public var name: StaticString {
        switch self {
        case .dense: return "Dense"
        case .conv2d: return "Conv2D"
        case .depthwiseConv2d: return "DepthwiseConv2D"
        case .maxPool2d: return "MaxPool2D"
        case .avgPool2d: return "AvgPool2D"
        case .globalAveragePool: return "GlobalAveragePool"
        case .add: return "Add"
        case .reshape: return "Reshape"
        case .softmax: return "Softmax"
        case .quantize: return "Quantize"
        case .dequantize: return "Dequantize"
        case .l2Normalize: return "L2Normalize"
        }
    }
}

extension Opcode {
    /// True when on-device training has this op's backward (BackboneTraining.swift).
    /// The switch is exhaustive, as are the training dispatches: a new opcode does
    /// not compile until someone decides here, and there, what it does.
    public var hasBackward: Bool {
        switch self {
        case .dense, .conv2d, .depthwiseConv2d, .maxPool2d, .avgPool2d, .globalAveragePool, .reshape, .add:
            return true
        case .softmax, .quantize, .dequantize, .l2Normalize:
            return false
        }
    }
}

/// An activation fused into an op's output, applied as a clamp.
public enum Activation: UInt8, Sendable {
    case none = 0
    case relu = 1
    case relu6 = 2

    public var name: StaticString {
        switch self {
        case .none: return "none"
        case .relu: return "relu"
        case .relu6: return "relu6"
        }
    }
}

/// Section kinds of the section table.
public enum SectionKind: UInt32, CaseIterable, Sendable {
    case tensors = 1
    case ops = 2
    case io = 3
    case data = 4
    case strings = 5
    case metadata = 6

    /// Bytes per record, or 0 for the byte sections.
    var recordSize: Int {
        switch self {
        case .tensors: return BlobLayout.tensorRecordBytes
        case .ops: return BlobLayout.opRecordBytes
        case .io: return BlobLayout.ioRecordBytes
        case .metadata: return BlobLayout.metadataRecordBytes
        case .data, .strings: return 0
        }
    }
}

/// Sizes and limits of format version 1.
public enum BlobLayout {
    public static let magic: UInt32 = 0x4752_5053  // "SPRG" read little-endian
    public static let version = 1
    public static let headerBytes = 64
    public static let sectionEntryBytes = 16
    public static let tensorRecordBytes = 64
    public static let opRecordBytes = 64
    public static let ioRecordBytes = 16
    public static let metadataRecordBytes = 16
    public static let quantRecordBytes = 8
    public static let alignment = 16
    public static let maxSections = 16
    public static let maxTensors = 4096
    public static let maxOps = 1024
    public static let maxIO = 64
    public static let maxRank = 4
    public static let maxInputs = 6
    public static let paramCount = 8
    public static let maxKernel = 16
    public static let maxStride = 16
    /// Marks an absent input slot.
    public static let absent: UInt32 = 0xFFFF_FFFF
}

// MARK: Field offsets
//
// The byte offset of every field inside its record, as docs/blob-format.md
// and the drawing at the top of BlobReader.swift give them. The reader and
// the validator read through these names, and BlobEmitter.swift, the one
// writer that the host's BlobBuilder and the on-device tuned-blob writer
// share, writes through them; none spells an offset as a number.

/// The 64-byte header.
public enum HeaderField {
    public static let magic = 0, version = 4, headerBytes = 6, crc = 8, fileBytes = 12, flags = 16
    public static let sectionCount = 20, sectionTable = 24, arenaBytes = 28, finetuneArenaBytes = 32
    public static let finetuneMaxClasses = 36, finetuneMaxShots = 40
    public static let finetunePlanVersion = 44, finetuneAugmentation = 45, finetuneMaxLayers = 46
    /// Bytes 47 … 63 are zero.
    public static let reserved = 47
}

/// A section-table entry (16 bytes).
public enum SectionField {
    public static let kind = 0, offset = 4, bytes = 8, count = 12
}

/// A tensor record (64 bytes, in TENSORS).
public enum TensorField {
    public static let dtype = 0, rank = 1, storage = 2, reserved = 3
    /// Four u32 dims, 4 bytes apart.
    public static let dims = 4
    public static let dataOffset = 20, dataBytes = 24, quantCount = 28, quantAxis = 32, quantOffset = 36
    public static let nameOffset = 40, nameBytes = 44
    /// Bytes 48 … 63 are zero.
    public static let reservedTail = 48

    /// Offset of `dims[i]` (`0 ..< 4`).
    @inline(__always)
    public static func dim(_ i: Int) -> Int { dims + 4 * i }
}

/// An op record (64 bytes, in OPS).
public enum OpField {
    public static let opcode = 0, activation = 1, inputCount = 2, reserved = 3
    /// Six u32 input slots, 4 bytes apart.
    public static let inputs = 4
    public static let output = 28
    /// Eight i32 params, 4 bytes apart.
    public static let params = 32

    /// Offset of input slot `s` (`0 ..< 6`).
    @inline(__always)
    public static func input(_ s: Int) -> Int { inputs + 4 * s }

    /// Offset of param `i` (`0 ..< 8`).
    @inline(__always)
    public static func param(_ i: Int) -> Int { params + 4 * i }
}

/// An IO record (16 bytes, in IO).
public enum IOField {
    public static let role = 0, tensor = 4, mean = 8, std = 12
}

/// A METADATA record (16 bytes): key and value as (offset, bytes) in STRINGS.
public enum MetadataField {
    public static let keyOffset = 0, keyBytes = 4, valueOffset = 8, valueBytes = 12
}

/// A quantization record (8 bytes, in DATA).
public enum QuantField {
    public static let scale = 0, zeroPoint = 4
}

/// A decoded tensor record. Produced by ``Model/tensor(_:)`` from a validated blob.
public struct TensorInfo: Equatable, Sendable {
    public var dtype: DType
    public var rank: Int
    public var storage: Storage
    /// `dims.0 ..< rank` are used; the rest are 0.
    public var dims: (Int, Int, Int, Int)
    public var dataOffset: Int
    public var dataBytes: Int
    public var quantCount: Int
    public var quantAxis: Int
    public var quantOffset: Int
    public var nameOffset: Int
    public var nameBytes: Int

    public init(dtype: DType, rank: Int, storage: Storage, dims: (Int, Int, Int, Int), dataOffset: Int, dataBytes: Int,
                quantCount: Int, quantAxis: Int, quantOffset: Int, nameOffset: Int, nameBytes: Int) {
        self.dtype = dtype
        self.rank = rank
        self.storage = storage
        self.dims = dims
        self.dataOffset = dataOffset
        self.dataBytes = dataBytes
        self.quantCount = quantCount
        self.quantAxis = quantAxis
        self.quantOffset = quantOffset
        self.nameOffset = nameOffset
        self.nameBytes = nameBytes
    }

    /// Dimension `i` (0 when `i >= rank`).
    public func dim(_ i: Int) -> Int {
        switch i {
        case 0: return dims.0
        case 1: return dims.1
        case 2: return dims.2
        case 3: return dims.3
        default: return 0
        }
    }

    /// Number of elements: the product of the used dims (1 for rank 0).
    public var elementCount: Int { dataBytes / dtype.size }

    public static func == (a: TensorInfo, b: TensorInfo) -> Bool {
        a.dtype == b.dtype && a.rank == b.rank && a.storage == b.storage
            && a.dims.0 == b.dims.0 && a.dims.1 == b.dims.1 && a.dims.2 == b.dims.2 && a.dims.3 == b.dims.3
            && a.dataOffset == b.dataOffset && a.dataBytes == b.dataBytes
            && a.quantCount == b.quantCount && a.quantAxis == b.quantAxis && a.quantOffset == b.quantOffset
            && a.nameOffset == b.nameOffset && a.nameBytes == b.nameBytes
    }
}

/// A decoded op record. Produced by ``Model/op(_:)`` from a validated blob.
public struct OpInfo: Sendable {
    public var opcode: Opcode
    public var activation: Activation
    public var inputCount: Int
    /// Tensor indices; -1 marks an absent slot.
    public var inputs: (Int, Int, Int, Int, Int, Int)
    public var output: Int
    public var params: (Int32, Int32, Int32, Int32, Int32, Int32, Int32, Int32)

    public init(opcode: Opcode, activation: Activation, inputCount: Int, inputs: (Int, Int, Int, Int, Int, Int), output: Int,
                params: (Int32, Int32, Int32, Int32, Int32, Int32, Int32, Int32)) {
        self.opcode = opcode
        self.activation = activation
        self.inputCount = inputCount
        self.inputs = inputs
        self.output = output
        self.params = params
    }

    public func input(_ slot: Int) -> Int {
        switch slot {
        case 0: return inputs.0
        case 1: return inputs.1
        case 2: return inputs.2
        case 3: return inputs.3
        case 4: return inputs.4
        case 5: return inputs.5
        default: return -1
        }
    }

    public func param(_ i: Int) -> Int32 {
        switch i {
        case 0: return params.0
        case 1: return params.1
        case 2: return params.2
        case 3: return params.3
        case 4: return params.4
        case 5: return params.5
        case 6: return params.6
        case 7: return params.7
        default: return 0
        }
    }
}

/// A quantization record: `real = scale × (q − zeroPoint)`.
public struct QuantParams: Equatable, Sendable {
    public var scale: Float
    public var zeroPoint: Int32
    public init(scale: Float, zeroPoint: Int32) {
        self.scale = scale
        self.zeroPoint = zeroPoint
    }
}

/// `value` rounded up to a multiple of `alignment` (> 0): `roundUp(17, 16)` is 32.
@inline(__always)
func roundUp(_ value: Int, _ alignment: Int) -> Int {
    (value + alignment - 1) / alignment * alignment
}
