// Hard selection: from inclusion probabilities to kept units, within a budget.

/// A budget: a fraction of the full network's cost, or an absolute count.
public struct Budget: Equatable, Sendable, CustomStringConvertible {
    public var kind: CostKind
    /// The target, in the kind's unit (params, MACs, bytes); or nil for a fraction.
    public var absolute: Double?
    /// A fraction of the full network's cost (used when `absolute` is nil).
    public var fraction: Double

    /// Parses `10%` (params), `params:N`, `macs:N`, `arena:NKB` / `arena:N` (bytes).
    public init(parsing text: String) throws {
        let t = text.trimmingCharacters(in: .whitespaces).lowercased()
        if t.hasSuffix("%"), let v = Double(t.dropLast()), v > 0, v <= 100 {
            kind = .params
            fraction = v / 100
            absolute = nil
            return
        }
        let parts = t.split(separator: ":", maxSplits: 1).map(String.init)
        guard parts.count == 2, let k = CostKind(rawValue: parts[0]) else {
            throw PruneError.badBudget(text)
        }
        var number = parts[1].replacingOccurrences(of: "_", with: "")
        var scale = 1.0
        if k == .arena {
            if number.hasSuffix("kb") { scale = 1024; number = String(number.dropLast(2)) }
            else if number.hasSuffix("mb") { scale = 1_048_576; number = String(number.dropLast(2)) }
            else if number.hasSuffix("b") { number = String(number.dropLast()) }
        }
        if number.hasSuffix("%"), let v = Double(number.dropLast()), v > 0, v <= 100 {
            kind = k
            fraction = v / 100
            absolute = nil
            return
        }
        guard let v = Double(number), v > 0, v.isFinite else { throw PruneError.badBudget(text) }
        kind = k
        absolute = v * scale
        fraction = 1
    }

    public init(kind: CostKind, fraction: Double) {
        self.kind = kind
        self.fraction = fraction
        absolute = nil
    }

    public init(kind: CostKind, absolute: Double) {
        self.kind = kind
        self.absolute = absolute
        fraction = 1
    }

    /// The target cost for a network whose full cost is `full`.
    public func target(full: Double) -> Double { absolute ?? fraction * full }

    public var description: String {
        if let a = absolute { return "\(kind.rawValue):\(Int(a))" }
        return "\(kind.rawValue) \(fraction * 100)%"
    }
}

public enum PruneError: Error, Equatable, CustomStringConvertible {
    case badBudget(String)
    case impossibleBudget(kind: CostKind, target: Double, minimum: Double)
    case emptyGroup(String)
    case badWidthMultiple(Int)
    /// The pseudo-target cannot be set up (the reason).
    case badPseudoTarget(String)

    public var description: String {
        switch self {
        case .badBudget(let t):
            return "budget '\(t)' is not one of 10%, params:N, macs:N, arena:NKB"
        case .impossibleBudget(let kind, let target, let minimum):
            return "budget of \(Int(target)) \(kind.rawValue) is below the smallest valid network (one unit per group: \(Int(minimum.rounded(.up))))"
        case .emptyGroup(let name):
            return "the selection keeps no unit of group '\(name)'; every group needs at least one"
        case .badWidthMultiple(let n):
            return "width multiple \(n) is not a whole number ≥ 1"
        case .badPseudoTarget(let reason):
            return "pseudo-target: \(reason)"
        }
    }
}

/// Keeps the most probable units of each group such that the cost fits `budget`.
///
/// Greedy: start from every unit; remove the least probable remaining unit
/// (never the last of a group) until the cost fits; then add back, most
/// probable first, any removed unit that still fits. The kept units of a
/// group are always its most probable ones.
///
/// Only the order of `p` matters: any score that ranks units the same way (θ for DAP,
/// |γ| for slimming) gives the same selection.
///
/// With `widthMultiple` N > 1, each group's count is then rounded up by ``roundWidths(_:multiple:)``
/// and the group keeps that many of its most probable units (ties: lower index), so the cost
/// exceeds the budget by less than N units per group. N = 1 is the plain greedy selection.
///
/// - Returns: for each unit, whether it is kept.
/// - Throws: ``PruneError/impossibleBudget(kind:target:minimum:)`` when even one
///   unit per group costs more than the budget; ``PruneError/badWidthMultiple(_:)`` when N < 1.
public func selectUnits(_ space: PruningSpace, probabilities p: [Double], budget: Budget,
                        widthMultiple: Int = 1) throws -> [Bool] {
    guard widthMultiple >= 1 else { throw PruneError.badWidthMultiple(widthMultiple) }
    let keep = try greedySelection(space, probabilities: p, budget: budget)
    return try roundSelection(space, keep: keep, scores: p, multiple: widthMultiple)
}

/// Rounds a kept count per group up to an allowed width: a multiple of `multiple`, at least
/// `multiple`, at most the group's size, or the group's full size (allowed even when it is not
/// a multiple). `multiple` 1 returns `kept` unchanged.
public func roundWidths(_ space: PruningSpace, kept: [Int], multiple: Int) throws -> [Int] {
    guard multiple >= 1 else { throw PruneError.badWidthMultiple(multiple) }
    guard multiple > 1 else { return kept }
    return zip(space.groups, kept).map { group, k in
        let up = max(1, (k + multiple - 1) / multiple) * multiple
        return up <= group.size ? up : group.size
    }
}

/// `keep` with each group's count rounded up by ``roundWidths(_:kept:multiple:)``: the group keeps
/// that many of its highest-scored units (ties: lower index). `multiple` 1 returns `keep` unchanged.
public func roundSelection(_ space: PruningSpace, keep: [Bool], scores: [Double], multiple: Int) throws -> [Bool] {
    guard multiple >= 1 else { throw PruneError.badWidthMultiple(multiple) }
    guard multiple > 1 else { return keep }
    let offsets = space.offsets
    let kept = space.groups.indices.map { g in (offsets[g]..<(offsets[g] + space.groups[g].size)).filter { keep[$0] }.count }
    return keepTop(space, scores: scores, counts: try roundWidths(space, kept: kept, multiple: multiple))
}

/// The greedy selection of ``selectUnits(_:probabilities:budget:widthMultiple:)``, unrounded.
func greedySelection(_ space: PruningSpace, probabilities p: [Double], budget: Budget) throws -> [Bool] {
    let full = space.fullCost(budget.kind)
    let target = budget.target(full: full)
    let minimum = space.cost(budget.kind, kept: space.groups.map { _ in 1 })
    guard minimum <= target else { throw PruneError.impossibleBudget(kind: budget.kind, target: target, minimum: minimum) }
    let offsets = space.offsets
    var keep = [Bool](repeating: true, count: space.unitCount)
    var kept = space.groups.map(\.size)
    func current() -> Double {
        space.cost(budget.kind, probabilities: keep.map { $0 ? 1 : 0 }).value
    }
    func group(of u: Int) -> Int { offsets.lastIndex { $0 <= u } ?? 0 }
    // Least probable first; ties broken by unit index (deterministic).
    let order = p.indices.sorted { p[$0] != p[$1] ? p[$0] < p[$1] : $0 < $1 }
    var removed: [Int] = []
    var cost = current()
    for u in order where cost > target {
        let g = group(of: u)
        guard kept[g] > 1 else { continue }
        keep[u] = false
        kept[g] -= 1
        removed.append(u)
        cost = current()
    }
    // Add back the most probable removed units that still fit.
    for u in removed.reversed() {
        keep[u] = true
        if current() <= target { cost = current() } else { keep[u] = false }
    }
    _ = cost
    return keep
}

import Foundation
