// N-way K-shot episodes for few-shot evaluation.
//
// Protocol (see docs/data.md):
//   1. Filter the data to the target classes first (e.g. `filtered(classes: [5,6,7,8,9])`).
//   2. Pick `nWay` classes: all of them in ascending order when `nWay` equals the number of
//      classes present, else a seeded random choice, listed ascending. Episode label `i`
//      stands for `classes[i]`.
//   3. For each chosen class, shuffle its samples with the episode's seed; the first `kShot`
//      are support, the next `q` (or all the rest) are query. Support and query are disjoint.
//   4. Both lists are class-major (all of episode class 0, then 1, ...).
// The same (labels, nWay, kShot, query, seed) always gives the same episode.

/// How many query samples each class contributes.
public enum QuerySize: Equatable, Sendable {
    /// Exactly `q` per class, drawn from the samples not used as support.
    case perClass(Int)
    /// Every sample of the chosen classes that is not in the support set (e.g. the whole
    /// remaining test set).
    case allRemaining
}

/// One few-shot episode: indices into the data set it was drawn from.
public struct Episode: Equatable, Sendable {
    /// The data set's labels of the episode's classes; episode label `i` ↔ `classes[i]`.
    public var classes: [Int]
    /// `nWay × kShot` sample indices.
    public var supportIndices: [Int]
    /// Episode labels (0..<nWay) of the support samples.
    public var supportLabels: [Int]
    /// Query sample indices, disjoint from the support.
    public var queryIndices: [Int]
    /// Episode labels (0..<nWay) of the query samples.
    public var queryLabels: [Int]
}

/// Draws N-way K-shot episodes from a labelled set.
public struct EpisodeSampler: Sendable {
    /// Sample indices of each label, in file order; 256 entries.
    private let indicesByClass: [[Int]]

    /// - Parameter labels: the labels of the (already filtered) data set.
    public init(labels: [UInt8]) {
        var byClass = [[Int]](repeating: [], count: 256)
        for (i, l) in labels.enumerated() { byClass[Int(l)].append(i) }
        indicesByClass = byClass
    }

    /// Convenience for `init(labels: dataset.labels)`.
    public init(dataset: Dataset) { self.init(labels: dataset.labels) }

    /// The classes with at least one sample, ascending.
    public var classes: [Int] { (0..<256).filter { !indicesByClass[$0].isEmpty } }

    /// Draws one episode.
    ///
    /// ```swift
    /// let target = try test.filtered(classes: [5, 6, 7, 8, 9])
    /// let episode = try EpisodeSampler(dataset: target)
    ///     .sample(nWay: 5, kShot: 5, query: .perClass(15), seed: 42)
    /// episode.supportIndices.count  // 25
    /// ```
    ///
    /// - Throws: `DataError.invalidArgument` if `nWay` is not in `1...classes.count`,
    ///   `kShot < 1` or `q < 0`; `DataError.notEnoughSamples` naming the class when a chosen
    ///   class has fewer than `kShot` (+ `q`) samples.
    public func sample(nWay: Int, kShot: Int, query: QuerySize, seed: UInt64) throws -> Episode {
        var available = classes
        guard nWay >= 1 && nWay <= available.count else {
            throw DataError.invalidArgument(name: "n-way", value: "\(nWay)",
                                            expected: "1...\(available.count) (classes present: \(formatClassList(available)))")
        }
        guard kShot >= 1 else { throw DataError.invalidArgument(name: "k-shot", value: "\(kShot)", expected: "at least 1") }
        var perClassQuery: Int? = nil
        if case .perClass(let q) = query {
            guard q >= 0 else { throw DataError.invalidArgument(name: "query size", value: "\(q)", expected: "at least 0") }
            perClassQuery = q
        }

        var rng = DataRNG(seed: seed)
        // 1. Classes: a seeded choice when fewer than all are wanted, always listed ascending.
        if nWay < available.count {
            rng.shuffle(&available)
            available = Array(available[..<nWay]).sorted()
        }
        // Check every class before drawing, so the error names the first short class.
        let required = kShot + (perClassQuery ?? 0)
        for c in available where indicesByClass[c].count < required {
            throw DataError.notEnoughSamples(class: c, available: indicesByClass[c].count, required: required)
        }

        // 2. Per class: shuffle, then support = first k, query = next q or the rest.
        var episode = Episode(classes: available, supportIndices: [], supportLabels: [], queryIndices: [], queryLabels: [])
        for (label, c) in available.enumerated() {
            var pool = indicesByClass[c]
            rng.shuffle(&pool)
            let queryEnd = perClassQuery.map { kShot + $0 } ?? pool.count
            episode.supportIndices += pool[..<kShot]
            episode.supportLabels += Array(repeating: label, count: kShot)
            episode.queryIndices += pool[kShot..<queryEnd]
            episode.queryLabels += Array(repeating: label, count: queryEnd - kShot)
        }
        return episode
    }
}
