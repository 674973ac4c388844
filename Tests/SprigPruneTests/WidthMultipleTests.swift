// The width granularity of the hard selection (`--width-multiple N`): each group keeps a
// multiple of N units (at least N; its full size is allowed), rounded up from the plain greedy
// selection, and the kept units are the group's top-scored ones. Against hand-computed answers.

@testable import SprigPrune
import SprigTrain
import XCTest

final class WidthMultipleTests: XCTestCase {
    /// 1 → a(16) → b(16) → c(10) → 1, no bias: params n_a + n_a·n_b + n_b·n_c + n_c (full 442).
    let space = PruningSpace(
        groups: [.init(name: "a", size: 16), .init(name: "b", size: 16), .init(name: "c", size: 10)],
        layers: [.init(name: "l1", input: .fixed(1), output: .group(0), bias: false),
                 .init(name: "l2", input: .group(0), output: .group(1), bias: false),
                 .init(name: "l3", input: .group(1), output: .group(2), bias: false),
                 .init(name: "l4", input: .group(2), output: .fixed(1), bias: false)])

    /// a: 100…115 (all above b); b: 50 + a permutation of 0…15 (all above c); c: 10 + a permutation of 0…9.
    let bRank = [3, 14, 0, 9, 12, 5, 15, 1, 8, 11, 2, 6, 13, 4, 10, 7]
    let cRank = [7, 2, 9, 0, 5, 1, 8, 3, 6, 4]
    var scores: [Double] {
        (0..<16).map { 100 + Double($0) } + bRank.map { 50 + Double($0) } + cRank.map { 10 + Double($0) }
    }

    func counts(_ keep: [Bool]) -> [Int] {
        space.offsets.enumerated().map { g, o in (o..<(o + space.groups[g].size)).filter { keep[$0] }.count }
    }

    /// The units of group g with the `n` highest scores.
    func top(_ g: Int, _ n: Int) -> Set<Int> {
        let o = space.offsets[g]
        return Set((o..<(o + space.groups[g].size)).sorted { scores[$0] > scores[$1] }.prefix(n))
    }

    func testRoundingUpToMultiplesByHand() throws {
        // Sizes 16, 16, 10; N = 4 allows 4, 8, 12, 16 in a and b, and 4, 8, 10 in c.
        XCTAssertEqual(try roundWidths(space, kept: [1, 5, 9], multiple: 4), [4, 8, 10])
        XCTAssertEqual(try roundWidths(space, kept: [4, 8, 8], multiple: 4), [4, 8, 8])
        XCTAssertEqual(try roundWidths(space, kept: [13, 16, 10], multiple: 4), [16, 16, 10])
        XCTAssertEqual(try roundWidths(space, kept: [1, 9, 3], multiple: 8), [8, 16, 8])
        XCTAssertEqual(try roundWidths(space, kept: [1, 9, 9], multiple: 8), [8, 16, 10])
        XCTAssertEqual(try roundWidths(space, kept: [1, 2, 3], multiple: 16), [16, 16, 10])  // c is smaller than N: whole
        XCTAssertEqual(try roundWidths(space, kept: [1, 7, 9], multiple: 1), [1, 7, 9])
        for bad in [0, -4] {
            XCTAssertThrowsError(try roundWidths(space, kept: [1, 1, 1], multiple: bad)) { error in
                XCTAssertEqual(error as? PruneError, .badWidthMultiple(bad))
            }
        }
    }

    func testGreedySelectionRoundedUpKeepsTheTopScoredUnits() throws {
        // By hand, N = 1 at params ≤ 150: removing c down to 1 unit (−17 each) gives 289, then b's
        // least probable 9 units (−17 each) give 136 (b = 7); adding back: no b unit (+17 → 153),
        // one c unit (+8 → 144), no second (+8 → 152). Kept [16, 7, 2], 144 params.
        let budget = Budget(kind: .params, absolute: 150)
        let one = try selectUnits(space, probabilities: scores, budget: budget, widthMultiple: 1)
        XCTAssertEqual(counts(one), [16, 7, 2])
        XCTAssertEqual(space.cost(.params, kept: counts(one)), 144)
        XCTAssertEqual(one, try greedySelection(space, probabilities: scores, budget: budget), "N = 1 is the old selection")
        XCTAssertEqual(one, try selectUnits(space, probabilities: scores, budget: budget))
        // N = 4: [16, 8, 4], 16 + 128 + 32 + 4 = 180 params; N = 8: [16, 8, 8]; N = 16: [16, 16, 10] (c whole).
        for (n, expected) in [(4, [16, 8, 4]), (8, [16, 8, 8]), (16, [16, 16, 10])] {
            let keep = try selectUnits(space, probabilities: scores, budget: budget, widthMultiple: n)
            XCTAssertEqual(counts(keep), expected, "N = \(n)")
            for g in 0..<3 {
                let o = space.offsets[g]
                let kept = Set((o..<(o + space.groups[g].size)).filter { keep[$0] })
                XCTAssertEqual(kept, top(g, expected[g]), "N = \(n), group \(g): not the top-scored units")
            }
        }
        XCTAssertEqual(space.cost(.params, kept: [16, 8, 4]), 180)
        XCTAssertThrowsError(try selectUnits(space, probabilities: scores, budget: budget, widthMultiple: 0))
    }

    func testNOneIsTheOldSelectionForEveryRule() throws {
        var rng = SprigRNG(seed: 5)
        for fraction in [0.1, 0.3, 0.6] {
            let budget = Budget(kind: .params, fraction: fraction)
            let p = (0..<space.unitCount).map { _ in rng.nextDouble() }
            XCTAssertEqual(try selectUnits(space, probabilities: p, budget: budget, widthMultiple: 1),
                           try greedySelection(space, probabilities: p, budget: budget))
            XCTAssertEqual(try selectUniform(space, budget: budget, widthMultiple: 1),
                           keepTop(space, scores: (0..<space.unitCount).map { -Double($0) }, counts: try uniformWidths(space, budget: budget)))
            XCTAssertEqual(try selectL1(space, norms: p, budget: budget, widthMultiple: 1),
                           keepTop(space, scores: p, counts: try uniformWidths(space, budget: budget)))
            // Every rule at N = 4: allowed widths, the top-scored units, and within one multiple per group of N = 1.
            for n in [4, 8] {
                let pairs: [([Bool], [Bool], [Double])] = [
                    (try selectUniform(space, budget: budget, widthMultiple: n), try selectUniform(space, budget: budget),
                     (0..<space.unitCount).map { -Double($0) }),
                    (try selectL1(space, norms: p, budget: budget, widthMultiple: n), try selectL1(space, norms: p, budget: budget), p),
                    (try selectSlim(space, scales: p, budget: budget, widthMultiple: n), try selectSlim(space, scales: p, budget: budget), p),
                ]
                for (rounded, plain, s) in pairs {
                    let r = counts(rounded), q = counts(plain)
                    for g in 0..<3 {
                        XCTAssertTrue(r[g] % n == 0 || r[g] == space.groups[g].size, "\(r) N = \(n)")
                        XCTAssertTrue(r[g] >= q[g] && (r[g] - q[g] < n), "\(r) from \(q), N = \(n)")
                        let o = space.offsets[g]
                        let units = o..<(o + space.groups[g].size)
                        let keptMin = units.filter { rounded[$0] }.map { s[$0] }.min()!
                        let droppedMax = units.filter { !rounded[$0] }.map { s[$0] }.max() ?? -.infinity
                        XCTAssertGreaterThanOrEqual(keptMin, droppedMax)
                    }
                }
            }
        }
    }

    func testEveryMethodOfAPruneJobKeepsMultiples() throws {
        // cnn at width 0.25: groups of 8, 16, 32, 64 (conv) channels; 4 units of data are enough
        // for the selection (no fine-tuning; the training methods run two steps).
        let architecture = try Architecture(family: "cnn", classes: 3, width: 0.25, sourceClasses: [0, 1, 2])
        let sizes = try pruningSpace(for: architecture).groups.map(\.size)
        var rng = SprigRNG(seed: 3)
        let data = try Dataset(images: (0..<(8 * 784)).map { _ in UInt8(rng.next() % 256) }, labels: [0, 1, 2, 0, 1, 2, 0, 1],
                               rows: 28, cols: 28)
        for method in PruneMethod.allCases {
            var settings = PruneSettings(budget: Budget(kind: .params, fraction: 0.2))
            settings.method = method
            settings.batchSize = 4
            settings.dap.steps = 2
            settings.widthMultiple = 4
            let outcome = try pruneNetwork(try buildNetwork(architecture, seed: 2), architecture: architecture, source: data,
                                           settings: settings, finetuneEpochs: 0)
            for (w, size) in zip(outcome.architecture.widths, sizes) {
                XCTAssertTrue(w % 4 == 0 || w == size, "\(method): widths \(outcome.architecture.widths) of \(sizes)")
            }
            settings.widthMultiple = 0
            XCTAssertThrowsError(try pruneNetwork(try buildNetwork(architecture, seed: 2), architecture: architecture, source: data,
                                                  settings: settings, finetuneEpochs: 0), "\(method)")
        }
    }
}
