// Empirical bias correction (`sprig compile --bias-correction`): each bias moves by the
// mean error that the int8 blob shows at its op's output, measured here independently by
// running the uncorrected f32 and int8 blobs, and the correction it reports is what the
// corrected network gives when its int8 blob is built and run.

import SprigCompile
import SprigRuntime
import SprigTestSupport
import SprigTrain
import SprigWriter
import XCTest

final class BiasCorrectionTests: XCTestCase {
    /// 12×12 gray images of positive pixels (40…255): the int8 weights' rounding errors
    /// meet inputs of one sign, so they add up to a shift of each output's mean instead of
    /// averaging out.
    func planted(hidden: Int?) throws -> (BlobBuilder, [UInt8], [[UInt8]]) {
        var rng = SprigRNG(seed: 11)
        var steps: [LoweringStep] = [.flatten]
        if let hidden {
            steps += [.dense(Dense(inputDimensions: 144, outputDimensions: hidden, rng: &rng)), .relu,
                      .dense(Dense(inputDimensions: hidden, outputDimensions: 4, rng: &rng))]
        } else {
            steps += [.dense(Dense(inputDimensions: 144, outputDimensions: 6, rng: &rng))]
        }
        let builder = try lowerNetwork(steps, height: 12, width: 12, channels: 1, name: "planted", mean: 0.1, std: 0.2)
        let samples = (0..<80).map { _ in (0..<144).map { _ in UInt8(40 + rng.int(below: 216)) } }
        return (builder, try builder.build(), samples)
    }

    /// The per-channel mean of (int8 output − f32 output) over `samples`.
    func meanError(_ q8: [UInt8], _ f32: [UInt8], _ samples: [[UInt8]]) throws -> [Double] {
        let got = try runBlob(q8, samples), want = try runBlob(f32, samples)
        var mean = [Double](repeating: 0, count: want[0].count)
        for (g, w) in zip(got, want) {
            for c in mean.indices { mean[c] += (Double(g[c]) - Double(w[c])) / Double(samples.count) }
        }
        return mean
    }

    /// One Dense layer, the network's output: its bias moves by minus the mean error of
    /// the uncorrected int8 blob's outputs, channel by channel; nothing else changes; and
    /// the corrected blob's mean errors are smaller.
    func testMovesEachBiasByTheMeanErrorOfItsChannel() throws {
        let (builder, f32, samples) = try planted(hidden: nil)
        let ranges = try calibrate(blob: f32, samples: samples)
        let before = try meanError(try quantizeNetwork(builder, ranges: ranges).build(), f32, samples)
        let correction = try correctBiases(builder, blob: f32, samples: samples, ranges: ranges)
        XCTAssertEqual(correction.layers, 1)

        let dense = try XCTUnwrap(builder.ops.first { $0.opcode == .dense })
        let biasTensor = dense.inputs[2]
        let old = floats(builder.tensors[biasTensor].data), new = floats(correction.builder.tensors[biasTensor].data)
        let q8 = try quantizeNetwork(builder, ranges: ranges)
        let scale = Double(try XCTUnwrap(q8.tensors.first { $0.name == builder.tensors[dense.output].name && $0.dtype == .i8 }?.quant.first).scale)
        XCTAssertGreaterThan(before.map(abs).max()!, 0.2 * scale, "the planted shift is below a fifth of a step: \(before)")
        for c in old.indices {
            XCTAssertEqual(Double(new[c]), Double(old[c]) - before[c], accuracy: 1e-4 * scale, "channel \(c)")
        }
        XCTAssertEqual(correction.largestSteps, before.map(abs).max()! / scale, accuracy: 1e-4)
        for (t, (a, b)) in zip(builder.tensors, correction.builder.tensors).enumerated() where t != biasTensor {
            XCTAssertEqual(a.data, b.data, "tensor \(t) (\(a.name)) changed")
        }

        let after = try meanError(try quantizeNetwork(correction.builder, ranges: ranges).build(), f32, samples)
        XCTAssertLessThan(after.map(abs).reduce(0, +), before.map(abs).reduce(0, +) / 2, "before \(before), after \(after)")
    }

    /// Two layers: both biases are corrected, and the SQNRs it reports are the ones the
    /// uncorrected and corrected int8 blobs give, recomputed image by image.
    func testReportsTheSQNRItsBiasesGive() throws {
        let (builder, f32, samples) = try planted(hidden: 16)
        let ranges = try calibrate(blob: f32, samples: samples)
        let correction = try correctBiases(builder, blob: f32, samples: samples, ranges: ranges)
        XCTAssertEqual(correction.layers, 2)
        let want = try runBlob(f32, samples)
        func sqnr(_ network: BlobBuilder) throws -> Double {
            let got = try runBlob(try quantizeNetwork(network, ranges: ranges).build(), samples)
            var signal = 0.0, noise = 0.0
            for (x, y) in zip(want.joined(), got.joined()) {
                signal += Double(x) * Double(x)
                noise += (Double(x) - Double(y)) * (Double(x) - Double(y))
            }
            return 10 * log10(signal / noise)
        }
        XCTAssertEqual(correction.sqnrBefore, try sqnr(builder), accuracy: 1e-6)
        XCTAssertEqual(correction.sqnrAfter, try sqnr(correction.builder), accuracy: 1e-6)
        XCTAssertGreaterThan(correction.sqnrAfter, correction.sqnrBefore, "the planted shift removed")
    }
}
