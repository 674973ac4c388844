// The baselines DAP is measured against, each at the same budget as DAP.
//
//   uniform  every group keeps the same fraction f of its units (its first ⌈f·n⌉), the largest f
//            that fits the budget: a uniformly thinner network with inherited weights
//   l1       the widths of `uniform`, but each group keeps its units with the largest L1 norm of
//            the weights that write them (filter pruning, Li et al. 2017: a fixed ratio per layer)
//   slim     network slimming (Liu et al. 2017): train with an L1 penalty on each unit's scale
//            (BatchNorm γ; for mlp, which has none, a learned per-neuron scale), then keep the
//            largest |scale| over the whole network (a global threshold) within the budget
//   random   a seeded random score per unit, the same greedy selection as DAP
//
// Every rule returns one flag per unit, in `pruningSpace` order.

import Foundation
import SprigTrain

/// Units kept per group under uniform width scaling: the largest common fraction that fits.
///
/// - Throws: ``PruneError/impossibleBudget(kind:target:minimum:)`` when one unit per group is too much.
public func uniformWidths(_ space: PruningSpace, budget: Budget) throws -> [Int] {
    let full = space.fullCost(budget.kind), target = budget.target(full: full)
    func widths(_ f: Double) -> [Int] { space.groups.map { max(1, Int((f * Double($0.size)).rounded(.up))) } }
    let minimum = space.cost(budget.kind, kept: space.groups.map { _ in 1 })
    guard minimum <= target else { throw PruneError.impossibleBudget(kind: budget.kind, target: target, minimum: minimum) }
    var lo = 0.0, hi = 1.0
    if space.cost(budget.kind, kept: widths(hi)) <= target { return widths(hi) }
    for _ in 0..<60 {
        let mid = (lo + hi) / 2
        if space.cost(budget.kind, kept: widths(mid)) <= target { lo = mid } else { hi = mid }
    }
    return widths(lo)
}

/// Flags keeping, in each group, the units with the highest scores, `counts[g]` of them.
public func keepTop(_ space: PruningSpace, scores: [Double], counts: [Int]) -> [Bool] {
    var keep = [Bool](repeating: false, count: space.unitCount)
    for (g, start) in space.offsets.enumerated() {
        let units = (start..<(start + space.groups[g].size)).sorted { scores[$0] != scores[$1] ? scores[$0] > scores[$1] : $0 < $1 }
        for u in units.prefix(counts[g]) { keep[u] = true }
    }
    return keep
}

/// Uniform width scaling: the first units of each group (counts rounded up to `widthMultiple`).
public func selectUniform(_ space: PruningSpace, budget: Budget, widthMultiple: Int = 1) throws -> [Bool] {
    let counts = try roundWidths(space, kept: try uniformWidths(space, budget: budget), multiple: widthMultiple)
    let firstFirst = (0..<space.unitCount).map { -Double($0) }
    return keepTop(space, scores: firstFirst, counts: counts)
}

/// L1-norm filter pruning at uniform widths (rounded up to `widthMultiple`).
public func selectL1(_ space: PruningSpace, norms: [Double], budget: Budget, widthMultiple: Int = 1) throws -> [Bool] {
    keepTop(space, scores: norms, counts: try roundWidths(space, kept: try uniformWidths(space, budget: budget), multiple: widthMultiple))
}

/// Random units, greedy within the budget (counts rounded up to `widthMultiple`).
public func selectRandom(_ space: PruningSpace, budget: Budget, seed: UInt64, widthMultiple: Int = 1) throws -> [Bool] {
    var rng = SprigRNG(seed: seed)
    let scores = (0..<space.unitCount).map { _ in rng.nextDouble() }
    return try selectUnits(space, probabilities: scores, budget: budget, widthMultiple: widthMultiple)
}

/// Global threshold on |scale|, greedy within the budget (counts rounded up to `widthMultiple`).
public func selectSlim(_ space: PruningSpace, scales: [Double], budget: Budget, widthMultiple: Int = 1) throws -> [Bool] {
    try selectUnits(space, probabilities: scales.map(abs), budget: budget, widthMultiple: widthMultiple)
}

extension GatedSupernet {
    /// For each unit, the L1 norm of the weights that write it (summed over the layers writing its
    /// group, e.g. a residual body's last conv and its projection shortcut).
    public func filterNorms() -> [Double] {
        var norms = [Double](repeating: 0, count: pruningSpace.unitCount)
        let offsets = pruningSpace.offsets
        for entry in namedTensors(network) where entry.name.hasSuffix(".weight") {
            let path = String(entry.name.dropLast(".weight".count))
            guard let groups = layerGroups[path], let g = groups.output, groups.input != g else { continue }
            let t = entry.get()
            let units = pruningSpace.groups[g].size
            if t.rank == 4 {  // [KH][KW][Cin][Cout]
                for (i, v) in t.storage.enumerated() { norms[offsets[g] + i % units] += Double(abs(v)) }
            } else if t.rank == 2 {  // [Out][In]
                let inputs = t.shape[1]
                for (i, v) in t.storage.enumerated() { norms[offsets[g] + i / inputs] += Double(abs(v)) }
            }
        }
        return norms
    }

    /// The BatchNorm γ of each unit (summed in absolute value over a tied group's BatchNorms),
    /// or nil when a group has no BatchNorm (mlp).
    public func batchNormScales() -> [Double]? {
        var scales = [Double](repeating: 0, count: pruningSpace.unitCount)
        var covered = Set<Int>()
        let offsets = pruningSpace.offsets
        for entry in namedTensors(network) where entry.name.hasSuffix(".weight") {
            let path = String(entry.name.dropLast(".weight".count))
            guard let groups = layerGroups[path], let g = groups.output, groups.input == g, entry.get().rank == 1 else { continue }
            covered.insert(g)
            for (u, v) in entry.get().storage.enumerated() { scales[offsets[g] + u] += Double(abs(v)) }
        }
        return covered.count == pruningSpace.groups.count ? scales : nil
    }

    /// The BatchNorm γ parameters, for the slimming penalty.
    var batchNormWeights: [Parameter] {
        var out: [Parameter] = []
        func walk(_ layers: [any Layer]) {
            for layer in layers {
                if let s = layer as? Sequential { walk(s.layers) }
                if let r = layer as? Residual { walk(r.body.layers); walk(r.shortcut.layers) }
                if let bn = layer as? BatchNorm2D { out.append(bn.weight) }
            }
        }
        walk(network.layers)
        return out
    }
}
