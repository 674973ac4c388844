// Exact checkpoint checks (docs/checkpoint-format.md, Tensors):
//   - F16 and BF16 widen to Float32 exactly: every one of the 65,536 bit patterns of each
//     format against a value computed here from the format's definition, in Double;
//     hand-picked special values (±0, subnormals, max, ±inf, NaN payloads);
//   - a checkpoint stored in F16 or BF16 loads as the Float32 values those formats hold;
//   - a PyTorch OIHW weight (conv and depthwise) is refused naming the file, the tensor and
//     both shapes, with the torch-bridge hint; missing and unexpected tensors are named;
//     another dtype is named; the OIHW case also through `sprig describe`.

import Foundation
import SprigTrain
import XCTest

final class CheckpointChecksTests: ScratchTestCase {
    // MARK: Widening

    /// binary16 by its definition: (−1)^s · 2^(e−15) · (1 + m/1024), subnormal 2^−14 · m/1024.
    func float16Reference(_ h: UInt16) -> Double {
        let sign: Double = h & 0x8000 != 0 ? -1 : 1
        let e = Int(h >> 10) & 0x1F, m = Double(h & 0x3FF)
        if e == 0x1F { return m == 0 ? sign * .infinity : .nan }
        if e == 0 { return sign * m / 1024 * pow(2, -14) }
        return sign * (1 + m / 1024) * pow(2, Double(e - 15))
    }

    /// bfloat16 by its definition: (−1)^s · 2^(e−127) · (1 + m/128), subnormal 2^−126 · m/128.
    func bfloat16Reference(_ b: UInt16) -> Double {
        let sign: Double = b & 0x8000 != 0 ? -1 : 1
        let e = Int(b >> 7) & 0xFF, m = Double(b & 0x7F)
        if e == 0xFF { return m == 0 ? sign * .infinity : .nan }
        if e == 0 { return sign * m / 128 * pow(2, -126) }
        return sign * (1 + m / 128) * pow(2, Double(e - 127))
    }

    func testEveryFloat16AndBFloat16PatternWidensToItsValue() {
        for raw in 0...0xFFFF {
            let h = UInt16(raw)
            for (name, bits, reference) in [("F16", float32Bits(fromFloat16Bits: h), float16Reference(h)),
                                            ("BF16", float32Bits(fromBFloat16Bits: h), bfloat16Reference(h))] {
                let f = Float(bitPattern: bits)
                if reference.isNaN {
                    XCTAssertTrue(f.isNaN, "\(name) 0x\(String(raw, radix: 16))")
                } else {
                    // Exact: the Double reference is representable in Float32, so equality is bit-exact
                    // (and the sign of zero is compared too).
                    XCTAssertEqual(Double(f), reference, "\(name) 0x\(String(raw, radix: 16))")
                    XCTAssertEqual(f.sign, reference.sign, "\(name) 0x\(String(raw, radix: 16)) sign")
                }
                XCTAssertEqual(bits >> 31, UInt32(h >> 15), "\(name) 0x\(String(raw, radix: 16)) sign bit")
            }
        }
    }

    func testSpecialValuesByHand() {
        let f16: [(UInt16, UInt32)] = [
            (0x0000, 0x0000_0000),  // +0
            (0x8000, 0x8000_0000),  // −0
            (0x3C00, 0x3F80_0000),  // 1
            (0xC000, 0xC000_0000),  // −2
            (0x7BFF, 0x477F_E000),  // 65504, the largest finite
            (0x0400, 0x3880_0000),  // 2^−14, the smallest normal
            (0x0001, 0x3380_0000),  // 2^−24, the smallest subnormal
            (0x03FF, 0x387F_C000),  // 1023 · 2^−24, the largest subnormal
            (0x8001, 0xB380_0000),  // −2^−24
            (0x7C00, 0x7F80_0000),  // +inf
            (0xFC00, 0xFF80_0000),  // −inf
            (0x7E00, 0x7FC0_0000),  // quiet NaN
            (0x7C01, 0x7F80_2000),  // signalling NaN, payload 1 kept (moved up 13 bits)
            (0xFE00, 0xFFC0_0000),  // negative quiet NaN
        ]
        for (h, f) in f16 {
            XCTAssertEqual(float32Bits(fromFloat16Bits: h), f, "F16 0x\(String(h, radix: 16))")
        }
        let bf16: [(UInt16, UInt32, Float)] = [
            (0x3F80, 0x3F80_0000, 1),
            (0x8000, 0x8000_0000, -0.0),
            (0x7F7F, 0x7F7F_0000, 3.3895314e38),      // the largest finite
            (0x0080, 0x0080_0000, 1.1754944e-38),     // 2^−126
            (0x0001, 0x0001_0000, 9.1835e-41),        // 2^−133, subnormal
            (0xFF80, 0xFF80_0000, -.infinity),
        ]
        for (b, f, value) in bf16 {
            XCTAssertEqual(float32Bits(fromBFloat16Bits: b), f, "BF16 0x\(String(b, radix: 16))")
            XCTAssertEqual(Float(bitPattern: float32Bits(fromBFloat16Bits: b)), value, accuracy: abs(value) * 1e-5)
        }
        XCTAssertTrue(Float(bitPattern: float32Bits(fromBFloat16Bits: 0x7FC0)).isNaN)
    }

    // MARK: Checkpoints

    func savedCheckpoint(_ family: String, _ name: String) throws -> (path: String, file: SafetensorsFile, network: Sequential) {
        let a = try Architecture(family: family, classes: 5, width: 0.25, sourceClasses: [0, 1, 2, 3, 4])
        let n = try buildNetwork(a, seed: 3)
        let p = path(name)
        try saveCheckpoint(n, architecture: a, to: p)
        return (p, try SafetensorsFile.read(path: p), n)
    }

    /// The error text of loading `file` written to `name`.
    func loadError(_ file: SafetensorsFile, _ name: String) throws -> String {
        let p = path(name)
        try file.write(path: p)
        do {
            _ = try loadCheckpoint(path: p)
        } catch {
            let message = "\(error)"
            XCTAssertTrue(message.hasPrefix(p + ":"), "names the file first: \(message)")
            return message
        }
        XCTFail("\(name) loaded")
        return ""
    }

    /// Every tensor rounded to F16 (Swift's Float16 conversion: round to nearest even) or
    /// truncated to BF16 loads as exactly those values.
    func testF16AndBF16CheckpointsLoadAsTheirValues() throws {
        let (_, file, _) = try savedCheckpoint("mobilenet", "f32.safetensors")
        for dtype in [SafetensorsDType.f16, .bf16] {
            var narrow = file
            var expected: [String: [Float]] = [:]
            for (name, t) in file.tensors {
                let values = try t.floats()
                var bytes: [UInt8] = []
                var back: [Float] = []
                for v in values {
                    let bits: UInt16 = dtype == .f16 ? Float16(v).bitPattern : UInt16(v.bitPattern >> 16)
                    bytes += [UInt8(bits & 0xFF), UInt8(bits >> 8)]
                    back.append(dtype == .f16 ? Float(Float16(bitPattern: bits)) : Float(bitPattern: UInt32(bits) << 16))
                }
                narrow.tensors[name] = try SafetensorsTensor(dtype: dtype, shape: t.shape, bytes: bytes)
                expected[name] = back
            }
            let p = path("narrow-\(dtype.rawValue).safetensors")
            try narrow.write(path: p)
            let (network, _) = try loadCheckpoint(path: p)
            var compared = 0
            for entry in namedTensors(network) {
                XCTAssertEqual(entry.get().storage, expected[entry.name], "\(dtype.rawValue) \(entry.name)")
                compared += 1
            }
            XCTAssertEqual(compared, file.tensors.count)
        }
    }

    /// PyTorch's [Cout][Cin][KH][KW] for a conv, [C][1][KH][KW] for a depthwise conv: the
    /// same values, refused by shape with both shapes and the bridge named.
    func testPyTorchOIHWWeightsAreRefusedWithBothShapesAndTheHint() throws {
        let (_, cnn, _) = try savedCheckpoint("cnn", "cnn.safetensors")
        let conv = try XCTUnwrap(cnn.tensors["0.weight"])
        XCTAssertEqual(conv.shape.count, 4)
        let (kh, kw, cin, cout) = (conv.shape[0], conv.shape[1], conv.shape[2], conv.shape[3])
        var torch = cnn
        torch.tensors["0.weight"] = try SafetensorsTensor(shape: [cout, cin, kh, kw], floats: try conv.floats())
        let message = try loadError(torch, "oihw.safetensors")
        for part in ["'0.weight'", "[\(cout), \(cin), \(kh), \(kw)]", "[\(kh), \(kw), \(cin), \(cout)]", "OIHW", "tools/torch-bridge"] {
            XCTAssertTrue(message.contains(part), "\(part) in \(message)")
        }

        let (_, mobile, network) = try savedCheckpoint("mobilenet", "mobile.safetensors")
        let depthwise = try XCTUnwrap(namedTensors(network).first { $0.get().rank == 3 }).name
        let d = try XCTUnwrap(mobile.tensors[depthwise])
        var torchDepthwise = mobile
        torchDepthwise.tensors[depthwise] = try SafetensorsTensor(shape: [d.shape[2], 1, d.shape[0], d.shape[1]], floats: try d.floats())
        let m2 = try loadError(torchDepthwise, "oihw-depthwise.safetensors")
        XCTAssertTrue(m2.contains("'\(depthwise)'") && m2.contains("[\(d.shape[2]), 1, \(d.shape[0]), \(d.shape[1])]")
                      && m2.contains("\(d.shape)") && m2.contains("OIHW"), m2)

        // The same count in a layout that is not PyTorch's: the count is named, not OIHW.
        var shuffled = cnn
        shuffled.tensors["0.weight"] = try SafetensorsTensor(shape: [cin, kh, kw, cout], floats: try conv.floats())
        let m3 = try loadError(shuffled, "other-layout.safetensors")
        XCTAssertTrue(m3.contains("element count is right") && !m3.contains("OIHW"), m3)
    }

    func testMissingAndUnexpectedTensorsAreNamed() throws {
        let (_, file, _) = try savedCheckpoint("cnn", "cnn.safetensors")
        var missing = file
        missing.tensors["1.running_var"] = nil
        missing.tensors["4.weight"] = nil
        let m1 = try loadError(missing, "missing.safetensors")
        XCTAssertTrue(m1.contains("2 tensors") && m1.contains("'1.running_var'") && m1.contains("'4.weight'") && m1.contains("missing"), m1)

        var counters = file
        counters.tensors["1.num_batches_tracked"] = try SafetensorsTensor(shape: [], int64s: [7])
        let m2 = try loadError(counters, "counters.safetensors")
        XCTAssertTrue(m2.contains("'1.num_batches_tracked'") && m2.contains("not part of the description")
                      && m2.contains("torch-bridge"), m2)

        var extra = file
        extra.tensors["fc.weight"] = try SafetensorsTensor(shape: [2], floats: [1, 2])
        let m3 = try loadError(extra, "extra.safetensors")
        XCTAssertTrue(m3.contains("'fc.weight'") && !m3.contains("torch-bridge"), m3)
    }

    func testAnotherDTypeIsNamed() throws {
        let (_, file, _) = try savedCheckpoint("mlp", "mlp.safetensors")
        let t = try XCTUnwrap(file.tensors["1.bias"])
        var wide = file
        wide.tensors["1.bias"] = try SafetensorsTensor(dtype: .f64, shape: t.shape, bytes: [UInt8](repeating: 0, count: 2 * t.bytes.count))
        let message = try loadError(wide, "f64.safetensors")
        XCTAssertTrue(message.contains("'1.bias'") && message.contains("F64") && message.contains("F16"), message)
    }

    /// A file that is not safetensors at all (an ONNX file's first bytes) names the file.
    func testAForeignFileIsNamed() throws {
        let p = path("model.onnx")
        try Data([0x08, 0x07, 0x12, 0x07, 0x70, 0x79, 0x74, 0x6f, 0x72, 0x63, 0x68, 0x1a, 0x03]).write(to: URL(fileURLWithPath: p))
        XCTAssertThrowsError(try loadCheckpoint(path: p)) { XCTAssertTrue("\($0)".hasPrefix(p + ":"), "\($0)") }
    }

    /// Through the CLI: `sprig describe` of an OIHW checkpoint exits 1 with the file, the
    /// tensor, both shapes and the hint on standard error, and nothing on standard output.
    func testTheCLIRefusesAnOIHWCheckpoint() throws {
        guard let exe = sprigExecutable() else { throw XCTSkip("sprig is not built beside the tests nor in .build/debug") }
        let (_, cnn, _) = try savedCheckpoint("cnn", "cnn.safetensors")
        let conv = try XCTUnwrap(cnn.tensors["0.weight"])
        var torch = cnn
        torch.tensors["0.weight"] = try SafetensorsTensor(shape: [conv.shape[3], conv.shape[2], conv.shape[0], conv.shape[1]],
                                                          floats: try conv.floats())
        let p = path("oihw.safetensors")
        try torch.write(path: p)
        let process = Process()
        process.executableURL = exe
        process.arguments = ["describe", p]
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let stderr = String(decoding: errData, as: UTF8.self)
        XCTAssertEqual(process.terminationStatus, 1, stderr)
        XCTAssertTrue(outData.isEmpty, String(decoding: outData, as: UTF8.self))
        XCTAssertTrue(stderr.contains(p) && stderr.contains("'0.weight'") && stderr.contains("\(conv.shape)")
                      && stderr.contains("OIHW") && stderr.contains("tools/torch-bridge"), stderr)
    }
}
