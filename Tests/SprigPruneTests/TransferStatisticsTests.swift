// The transfer experiment's splits and statistics, on hand-checked values:
//   - `--splits` parsing, item by item, and the refusals;
//   - drawTransferSplits: the semantic split first, then distinct 5/5 partitions of the same ten
//     classes, the same for the same seed (pinned: docs/method.md reports these classes);
//   - studentT975 against the printed table and, above df 30, against the exact quantiles;
//   - pairedDifference on a worked example whose unpaired CIs overlap.

import SprigPrune
import XCTest

final class TransferStatisticsTests: XCTestCase {
    let semantic = TransferSplit(name: "semantic", source: [0, 1, 2, 3, 4], target: [5, 6, 7, 8, 9])

    // MARK: --splits

    func testSplitRequestsParse() throws {
        XCTAssertEqual(try TransferSplitRequest(parsing: "semantic,random:2"), TransferSplitRequest(semantic: true, random: 2))
        XCTAssertEqual(try TransferSplitRequest(parsing: "random:3"), TransferSplitRequest(semantic: false, random: 3))
        XCTAssertEqual(try TransferSplitRequest(parsing: "semantic"), TransferSplitRequest(semantic: true, random: 0))
        XCTAssertEqual(try TransferSplitRequest(parsing: " random:1 , semantic"), TransferSplitRequest(semantic: true, random: 1))
        let refused: [(String, TransferSplitError)] = [
            ("", .unknown("")),
            ("semantic,", .unknown("")),
            ("Semantic", .unknown("Semantic")),
            ("random", .unknown("random")),
            ("random:0", .badCount("random:0")),
            ("random:101", .badCount("random:101")),
            ("random:-1", .badCount("random:-1")),
            ("random:two", .badCount("random:two")),
            ("semantic,semantic", .repeated("semantic")),
            ("random:1,random:2", .repeated("random")),
        ]
        for (text, expected) in refused {
            XCTAssertThrowsError(try TransferSplitRequest(parsing: text), text) { error in
                XCTAssertEqual(error as? TransferSplitError, expected, text)
            }
        }
    }

    // MARK: drawing the splits

    func testSplitsAreSeededPartitionsWithTheSemanticOneFirst() throws {
        let request = TransferSplitRequest(semantic: true, random: 4)
        let splits = try drawTransferSplits(semantic: semantic, request: request, seed: 19)
        XCTAssertEqual(splits, try drawTransferSplits(semantic: semantic, request: request, seed: 19))
        XCTAssertEqual(splits.map(\.name), ["semantic", "random1", "random2", "random3", "random4"])
        XCTAssertEqual(splits[0], semantic)
        for s in splits {
            XCTAssertEqual(s.source.count, 5, s.name)
            XCTAssertEqual(s.target.count, 5, s.name)
            XCTAssertEqual(s.source, s.source.sorted(), s.name)
            XCTAssertEqual(s.target, s.target.sorted(), s.name)
            XCTAssertEqual((s.source + s.target).sorted(), Array(0...9), s.name)  // a partition of the ten classes
        }
        XCTAssertEqual(Set(splits.map(\.source)).count, splits.count, "the splits are distinct")
        // The first two of seed 19, as docs/method.md reports them; a change in the drawing shows here.
        XCTAssertEqual(splits[1], TransferSplit(name: "random1", source: [3, 5, 6, 8, 9], target: [0, 1, 2, 4, 7]))
        XCTAssertEqual(splits[2], TransferSplit(name: "random2", source: [0, 1, 6, 7, 8], target: [2, 3, 4, 5, 9]))
        // Without the semantic split: the same random ones.
        let randomOnly = try drawTransferSplits(semantic: semantic, request: TransferSplitRequest(semantic: false, random: 4), seed: 19)
        XCTAssertEqual(randomOnly, Array(splits.dropFirst()))
        // Another seed, other partitions.
        XCTAssertNotEqual(try drawTransferSplits(semantic: semantic, request: request, seed: 20), splits)
    }

    func testEveryOtherPartitionCanBeDrawnAndNoMore() throws {
        // 4 classes into 2/2: C(4, 2) = 6 partitions, 5 besides the semantic one.
        let small = TransferSplit(name: "semantic", source: [0, 1], target: [2, 3])
        let all = try drawTransferSplits(semantic: small, request: TransferSplitRequest(semantic: false, random: 5), seed: 1)
        XCTAssertEqual(Set(all.map(\.source)), [[0, 2], [0, 3], [1, 2], [1, 3], [2, 3]])
        XCTAssertThrowsError(try drawTransferSplits(semantic: small, request: TransferSplitRequest(semantic: true, random: 6), seed: 1)) {
            XCTAssertEqual($0 as? TransferSplitError, .tooMany(requested: 6, available: 5))
        }
    }

    // MARK: statistics

    func testStudentTQuantile() {
        // The printed table (two-sided 95%).
        for (df, t) in [(1, 12.706), (2, 4.303), (3, 3.182), (9, 2.262), (10, 2.228), (19, 2.093), (29, 2.045), (30, 2.042)] {
            XCTAssertEqual(studentT975(degreesOfFreedom: df), t, accuracy: 1e-9, "df \(df)")
        }
        // Above 30, the expansion against the exact quantiles (scipy.stats.t.ppf(0.975, df)).
        for (df, t) in [(31, 2.03951), (40, 2.02108), (60, 2.00030), (120, 1.97993), (1000, 1.96234)] {
            XCTAssertEqual(studentT975(degreesOfFreedom: df), t, accuracy: 2e-5, "df \(df)")
        }
        XCTAssertEqual(studentT975(degreesOfFreedom: 1_000_000), 1.959964, accuracy: 1e-5)
        // Falling with df, with no step at the end of the table.
        for df in 1..<500 {
            XCTAssertGreaterThan(studentT975(degreesOfFreedom: df), studentT975(degreesOfFreedom: df + 1), "df \(df)")
        }
    }

    func testMeanAndCI() {
        // [0.7, 0.8, 0.9]: mean 0.8, s = 0.1, 4.303 · 0.1/√3 = 0.24844.
        let (mean, ci) = meanAndCI([0.7, 0.8, 0.9])
        XCTAssertEqual(mean, 0.8, accuracy: 1e-12)
        XCTAssertEqual(ci, 4.303 * 0.1 / 3.0.squareRoot(), accuracy: 1e-12)
        XCTAssertEqual(ci, 0.24844, accuracy: 1e-5)
    }

    func testPairedDifferenceOnAHandWorkedExample() throws {
        // Differences [0.02, 0.05, 0.04, 0.01]: mean 0.03; s² = (1 + 4 + 1 + 4)·1e-4 / 3, s = 0.018257;
        // half-width 3.182 · 0.018257 / √4 = 0.029047.
        let a = [0.80, 0.75, 0.90, 0.70], b = [0.78, 0.70, 0.86, 0.69]
        let d = try XCTUnwrap(pairedDifference(a, minus: b))
        XCTAssertEqual(d.n, 4)
        XCTAssertEqual(d.mean, 0.03, accuracy: 1e-12)
        XCTAssertEqual(d.ci, 3.182 * (10e-4 / 3).squareRoot() / 2, accuracy: 1e-12)
        XCTAssertEqual(d.ci, 0.029047, accuracy: 1e-6)
        // Unpaired, the two means' CIs overlap; paired, the interval excludes 0.
        let (ma, ca) = meanAndCI(a), (mb, cb) = meanAndCI(b)
        XCTAssertGreaterThan(mb + cb, ma - ca)
        XCTAssertGreaterThan(d.mean - d.ci, 0)
        // The other way round: the same interval, negated.
        let back = try XCTUnwrap(pairedDifference(b, minus: a))
        XCTAssertEqual(back.mean, -d.mean, accuracy: 1e-12)
        XCTAssertEqual(back.ci, d.ci, accuracy: 1e-12)
        // A net against itself: exactly 0 ± 0.
        let same = try XCTUnwrap(pairedDifference(a, minus: a))
        XCTAssertEqual(same.mean, 0)
        XCTAssertEqual(same.ci, 0)
        // One episode: a difference, no interval.
        let one = try XCTUnwrap(pairedDifference([0.5], minus: [0.25]))
        XCTAssertEqual(one.mean, 0.25)
        XCTAssertTrue(one.ci.isNaN)
        // Rows that do not pair up.
        XCTAssertNil(pairedDifference(a, minus: Array(b.dropLast())))
        XCTAssertNil(pairedDifference([], minus: []))
    }
}
