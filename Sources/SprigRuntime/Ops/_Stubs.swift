public func denseF32(input: UnsafePointer<Float>, weights: UnsafePointer<Float>, bias: UnsafePointer<Float>?, output: UnsafeMutablePointer<Float>, inputCount: Int, outputCount: Int, clamp: ClampF32) {}
public func conv2dF32(input: UnsafePointer<Float>, weights: UnsafePointer<Float>, bias: UnsafePointer<Float>?, output: UnsafeMutablePointer<Float>, window: Window2D, clamp: ClampF32) {}
public func depthwiseConv2dF32(input: UnsafePointer<Float>, weights: UnsafePointer<Float>, bias: UnsafePointer<Float>?, output: UnsafeMutablePointer<Float>, window: Window2D, clamp: ClampF32) {}
public func maxPool2dF32(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, window: Window2D) {}
public func avgPool2dF32(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, window: Window2D) {}
public func globalAveragePoolF32(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, height: Int, width: Int, channels: Int) {}
public func addF32(a: UnsafePointer<Float>, b: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, count: Int, clamp: ClampF32) {}
public func softmaxF32(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, count: Int) {}
public func quantizeF32ToQ8(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Int8>, count: Int, scale: Float, zeroPoint: Int32) {}
public func dequantizeQ8ToF32(input: UnsafePointer<Int8>, output: UnsafeMutablePointer<Float>, count: Int, scale: Float, zeroPoint: Int32) {}
public func denseQ8(input: UnsafePointer<Int8>, inputZeroPoint: Int32, weights: UnsafePointer<Int8>, bias: UnsafePointer<Int32>?, output: UnsafeMutablePointer<Int8>, inputCount: Int, outputCount: Int, requant: RequantQ8) {}
public func conv2dQ8(input: UnsafePointer<Int8>, inputZeroPoint: Int32, weights: UnsafePointer<Int8>, bias: UnsafePointer<Int32>?, output: UnsafeMutablePointer<Int8>, window: Window2D, requant: RequantQ8) {}
public func depthwiseConv2dQ8(input: UnsafePointer<Int8>, inputZeroPoint: Int32, weights: UnsafePointer<Int8>, bias: UnsafePointer<Int32>?, output: UnsafeMutablePointer<Int8>, window: Window2D, requant: RequantQ8) {}
public func maxPool2dQ8(input: UnsafePointer<Int8>, output: UnsafeMutablePointer<Int8>, window: Window2D) {}
public func avgPool2dQ8(input: UnsafePointer<Int8>, output: UnsafeMutablePointer<Int8>, window: Window2D) {}
public func globalAveragePoolQ8(input: UnsafePointer<Int8>, output: UnsafeMutablePointer<Int8>, height: Int, width: Int, channels: Int) {}
public func addQ8(a: UnsafePointer<Int8>, b: UnsafePointer<Int8>, output: UnsafeMutablePointer<Int8>, count: Int, params: AddQ8Params) {}
public func softmaxQ8(input: UnsafePointer<Int8>, output: UnsafeMutablePointer<Int8>, count: Int, expTable: UnsafePointer<Int32>) {}
public func quantizeMultiplier(_ real: Double) -> (multiplier: Int32, shift: Int32) { (1 << 30, 0) }
public func makeSoftmaxExpTable(inputScale: Float, into table: UnsafeMutablePointer<Int32>) { for d in 0..<256 { table[d] = Int32(1 << 24) >> Int32(min(d, 24)) } }
