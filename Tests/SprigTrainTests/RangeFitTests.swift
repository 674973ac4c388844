// The end-to-end range fit (`sprig compile --fit-ranges`): on a planted outlier that the
// network ignores it clips the range, and what it reports is what its ranges give when
// the int8 blob is built and run independently.

import SprigCompile
import SprigRuntime
import SprigTestSupport
import SprigTrain
import SprigWriter
import XCTest

final class RangeFitTests: XCTestCase {
    /// 12×12 gray images → Dense 144→16, ReLU → Dense 16→4, whose first layer gives
    /// pixel 0 no weight; and 100 calibration images of dark pixels (0…40) in which five
    /// images have a white pixel 0.
    func plantedOutlier() throws -> (BlobBuilder, [UInt8], [[UInt8]]) {
        var rng = SprigRNG(seed: 5)
        let first = Dense(inputDimensions: 144, outputDimensions: 16, rng: &rng)
        for o in 0..<16 { first.weight.value.storage[o * 144] = 0 }  // weight [Out][In]: column 0
        let steps: [LoweringStep] = [.flatten, .dense(first), .relu, .dense(Dense(inputDimensions: 16, outputDimensions: 4, rng: &rng))]
        let builder = try lowerNetwork(steps, height: 12, width: 12, channels: 1, name: "outlier", mean: 0.1, std: 0.2)
        var samples = (0..<100).map { _ in (0..<144).map { _ in UInt8(rng.int(below: 41)) } }
        for i in stride(from: 0, to: 100, by: 20) { samples[i][0] = 255 }
        return (builder, try builder.build(), samples)
    }

    /// The planted outlier stretches the input's [min, max] six times past its other
    /// values. Only a central fraction that drops those 5 of 14,400 values (0.999 drops 7
    /// at each end) narrows it, and as the network never reads pixel 0, narrowing costs
    /// nothing at the outputs while the grid of every other pixel gets finer.
    func testClipsAnOutlierTheNetworkIgnores() throws {
        let (builder, f32, samples) = try plantedOutlier()
        let fit = try fitRanges(builder, blob: f32, samples: samples)
        let input = try XCTUnwrap(builder.inputs.first).tensor
        XCTAssertEqual(fit.fractions[input], 0.999, "the input's chosen fraction")
        XCTAssertGreaterThan(fit.fittedSQNR, fit.minMaxSQNR + 3, "min/max \(fit.minMaxSQNR) dB, fitted \(fit.fittedSQNR) dB")
    }

    /// The fit's ranges are calibrate's ranges at the fractions it reports, and its SQNR
    /// is the one an int8 blob built from those ranges gives, recomputed here image by
    /// image against the f32 blob: all int8, and with its classifier in Float32 (the fit
    /// then judges the blob with that tail, not the all-int8 one).
    func testReportsWhatItsRangesGive() throws {
        let (builder, f32, samples) = try plantedOutlier()
        let want = try runBlob(f32, samples)
        func sqnr(_ got: [[Float]]) -> Double {
            var signal = 0.0, noise = 0.0
            for (x, y) in zip(want.joined(), got.joined()) {
                signal += Double(x) * Double(x)
                noise += (Double(x) - Double(y)) * (Double(x) - Double(y))
            }
            return 10 * log10(signal / noise)
        }
        for floatClassifier in [false, true] {
            let fit = try fitRanges(builder, blob: f32, samples: samples, floatClassifier: floatClassifier)
            for (t, fraction) in fit.fractions {
                XCTAssertEqual(fit.ranges[t], try calibrate(blob: f32, samples: samples, percentile: fraction)[t], "tensor \(t)")
            }
            let q8 = try quantizeNetwork(builder, ranges: fit.ranges, floatClassifier: floatClassifier).build()
            XCTAssertEqual(fit.fittedSQNR, sqnr(try runBlob(q8, samples)), accuracy: 1e-9, "float classifier \(floatClassifier)")
            let minMax = try quantizeNetwork(builder, ranges: try calibrate(blob: f32, samples: samples),
                                             floatClassifier: floatClassifier).build()
            XCTAssertEqual(fit.minMaxSQNR, sqnr(try runBlob(minMax, samples)), accuracy: 1e-9, "float classifier \(floatClassifier)")
        }
    }
}
