// The class splits of the transfer experiment (`sprig transfer --splits`).
//
//   semantic   the split as given (`--source`, `--target`; Fashion-MNIST: clothing 0–4 → 5–9)
//   randomK    the same classes (source ∪ target) partitioned again at random, |source| / |target|,
//              the K-th distinct partition drawn from SprigRNG(seed): a Fisher–Yates shuffle of the
//              sorted classes, the first |source| become the source; a partition already drawn
//              (or the semantic one) is drawn again.
//
// Every split trains its own supernet on its source classes and adapts to its target classes.

import Foundation
import SprigTrain

/// One source/target partition of the classes; both lists sorted.
public struct TransferSplit: Sendable, Equatable {
    /// "semantic", "random1", "random2", …
    public var name: String
    public var source: [Int]
    public var target: [Int]

    public init(name: String, source: [Int], target: [Int]) {
        self.name = name
        self.source = source
        self.target = target
    }
}

/// Which splits to run: `semantic`, `random:N`, or both, comma-separated.
///
/// ```
/// try TransferSplitRequest(parsing: "semantic,random:2")  // semantic, random1, random2
/// try TransferSplitRequest(parsing: "random:3")           // random1 … random3
/// ```
public struct TransferSplitRequest: Sendable, Equatable {
    public var semantic: Bool
    public var random: Int

    public init(semantic: Bool = true, random: Int = 0) {
        self.semantic = semantic
        self.random = random
    }

    /// - Throws: ``TransferSplitError`` naming the item at fault: an unknown item, a count that
    ///   is not an integer in 1...100, an item given twice, or an empty list.
    public init(parsing text: String) throws(TransferSplitError) {
        let items = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        var semantic = false, random: Int?
        for item in items {
            if item == "semantic" {
                guard !semantic else { throw .repeated(item) }
                semantic = true
            } else if item.hasPrefix("random:") {
                guard random == nil else { throw .repeated("random") }
                guard let n = Int(item.dropFirst("random:".count)), (1...100).contains(n) else { throw .badCount(item) }
                random = n
            } else {
                throw .unknown(item)
            }
        }
        self.semantic = semantic
        self.random = random ?? 0
    }
}

/// Why a `--splits` value or a split draw was refused.
public enum TransferSplitError: Error, Equatable, CustomStringConvertible {
    case unknown(String)
    case badCount(String)
    case repeated(String)
    /// `requested` distinct random partitions asked of classes that have only `available`
    /// besides the semantic one.
    case tooMany(requested: Int, available: Int)

    public var description: String {
        switch self {
        case .unknown(let item):
            return item.isEmpty ? "an empty item; expected semantic and/or random:N, comma-separated"
                : "unknown split '\(item)'; expected semantic and/or random:N, comma-separated"
        case .badCount(let item): return "'\(item)': random:N takes an integer N in 1...100"
        case .repeated(let item): return "'\(item)' is given twice"
        case .tooMany(let requested, let available):
            return "\(requested) random splits asked, but these classes have only \(available) other partitions"
        }
    }
}

/// The splits of `request`: the semantic split first (if asked), then `request.random` distinct
/// random partitions of `semantic.source ∪ semantic.target` into the same two sizes, each unlike
/// the semantic one, all drawn from `seed`.
///
/// Example: source [0,1,2,3,4], target [5,6,7,8,9], random 2, seed 19 → semantic, then random1
/// source [3,5,6,8,9] target [0,1,2,4,7] and random2 source [0,1,6,7,8] target [2,3,4,5,9]; the
/// same seed gives the same partitions on every machine (SprigRNG, no stdlib shuffle).
///
/// - Throws: ``TransferSplitError/tooMany(requested:available:)`` when fewer distinct partitions
///   exist than asked.
public func drawTransferSplits(semantic: TransferSplit, request: TransferSplitRequest, seed: UInt64) throws(TransferSplitError) -> [TransferSplit] {
    let classes = (semantic.source + semantic.target).sorted()
    let k = semantic.source.count
    let available = binomial(classes.count, k) - 1
    guard request.random <= available else { throw .tooMany(requested: request.random, available: available) }
    var splits: [TransferSplit] = request.semantic ? [semantic] : []
    var seen: Set<[Int]> = [semantic.source.sorted()]
    var rng = SprigRNG(seed: seed)
    while splits.count < (request.semantic ? 1 : 0) + request.random {
        // Fisher–Yates over the sorted classes.
        var order = classes
        for i in stride(from: order.count - 1, to: 0, by: -1) {
            order.swapAt(i, rng.int(below: i + 1))
        }
        let source = order[..<k].sorted()
        guard seen.insert(source).inserted else { continue }
        splits.append(TransferSplit(name: "random\(seen.count - 1)", source: source, target: order[k...].sorted()))
    }
    return splits
}

/// n choose k, saturating at Int.max / 2 (only compared against small counts).
func binomial(_ n: Int, _ k: Int) -> Int {
    guard k >= 0, k <= n else { return 0 }
    var r = 1
    for i in 0..<min(k, n - k) {
        let (m, overflow) = r.multipliedReportingOverflow(by: n - i)
        if overflow { return Int.max / 2 }
        r = m / (i + 1)
    }
    return r
}
