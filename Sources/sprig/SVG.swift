// Small, dependency-free SVG charts for the results pages: line charts with
// axes, ticks, a legend and optional error bars, and horizontal bar charts.
// Every chart is a standalone <svg> element with a white background, drawn in a fixed
// coordinate system (its viewBox) and scaled to the width of the page or window (width 100%,
// never wider than its drawn size), so that a narrow window shrinks it instead of clipping it.

import Foundation
import SprigPrune

struct ChartSeries {
    var name: String
    var points: [(x: Double, y: Double, error: Double?)]
    var color: String
    var width = 2.0
    var opacity = 1.0
    var dashed = false
    var markers = true
    /// Draw the points joined by a line (false: points alone).
    var joined = true
    /// A shaded band per point (e.g. an interquartile range), drawn under the line.
    var band: [(lo: Double, hi: Double)]? = nil
}

/// A horizontal reference line across a chart (a budget target, say).
struct ChartReference {
    var y: Double
    var label: String
    var color = "#000000"
}

/// The opening tag of a chart drawn in a `width` × `height` coordinate system that scales to
/// the container's width.
func svgOpen(_ width: Int, _ height: Int) -> String {
    "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 \(width) \(height)\" width=\"100%\" "
        + "style=\"max-width:\(width)px;height:auto\" preserveAspectRatio=\"xMinYMin meet\" font-family=\"sans-serif\" font-size=\"12\">\n"
}

/// A qualitative palette (Okabe–Ito), safe for colour-blind readers.
let chartPalette = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"]

/// Escapes text for SVG and HTML.
func xmlEscape(_ s: String) -> String {
    s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
        .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
}

/// "Nice" tick values covering lo...hi.
func niceTicks(_ lo: Double, _ hi: Double, count: Int = 5) -> [Double] {
    guard hi > lo else { return [lo] }
    let raw = (hi - lo) / Double(count)
    let magnitude = pow(10, floor(log10(raw)))
    let step = [1.0, 2, 2.5, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? raw
    var ticks: [Double] = []
    var t = ceil(lo / step) * step
    while t <= hi + step * 1e-9 {
        ticks.append(abs(t) < step * 1e-9 ? 0 : t)
        t += step
    }
    return ticks
}

func tickLabel(_ v: Double, percent: Bool) -> String {
    if percent { return String(format: "%.0f%%", v * 100) }
    if v == v.rounded() && abs(v) < 1e6 { return String(Int(v)) }
    if abs(v) >= 10 && abs(v) < 1e6 { return String(format: "%.0f", v) }
    return String(format: "%.2g", v)
}

/// A line chart. `logX` spaces x logarithmically (budgets 5–50%); `yPercent` labels fractions as %;
/// `xRange` fixes the x axis (e.g. from 0); `references` are horizontal lines with a label.
func lineChart(title: String, xLabel: String, yLabel: String, series: [ChartSeries], width: Int = 640, height: Int = 400,
               logX: Bool = false, xPercent: Bool = false, yPercent: Bool = false, yRange: (Double, Double)? = nil,
               xRange: (Double, Double)? = nil, references: [ChartReference] = [], legend: Bool = true,
               legendWidth: Double = 170) -> String {
    svgOpen(width, height) + lineChartBody(title: title, xLabel: xLabel, yLabel: yLabel, series: series, width: width, height: height,
                                           logX: logX, xPercent: xPercent, yPercent: yPercent, yRange: yRange, xRange: xRange,
                                           references: references, legend: legend, legendWidth: legendWidth) + "</svg>\n"
}

/// Charts stacked top to bottom in one SVG, each `(body, height)` from `lineChartBody`.
func stackedCharts(_ panels: [(body: String, height: Int)], width: Int = 640) -> String {
    var s = svgOpen(width, panels.reduce(0) { $0 + $1.height })
    var y = 0
    for p in panels {
        s += "<g transform=\"translate(0 \(y))\">\n" + p.body + "</g>\n"
        y += p.height
    }
    return s + "</svg>\n"
}

/// The inside of a line chart (no <svg> element), for `lineChart` and `stackedCharts`.
func lineChartBody(title: String, xLabel: String, yLabel: String, series: [ChartSeries], width: Int, height: Int,
                   logX: Bool, xPercent: Bool, yPercent: Bool, yRange: (Double, Double)?, xRange: (Double, Double)?,
                   references: [ChartReference], legend: Bool, legendWidth: Double) -> String {
    let (left, right, top, bottom) = (64.0, legend ? legendWidth : 24.0, 36.0, 52.0)
    let plotW = Double(width) - left - right, plotH = Double(height) - top - bottom
    let xs = series.flatMap { $0.points.map(\.x) }
    let ys = series.flatMap { $0.points.flatMap { p in [p.y - (p.error ?? 0), p.y + (p.error ?? 0)] } + ($0.band ?? []).flatMap { [$0.lo, $0.hi] } }
        + references.map(\.y)
    var (x0, x1) = xRange ?? (xs.min() ?? 0, xs.max() ?? 1)
    if x0 == x1 { x0 -= 1; x1 += 1 }
    var (y0, y1) = yRange ?? (ys.min() ?? 0, ys.max() ?? 1)
    if yRange == nil { let pad = max((y1 - y0) * 0.08, 1e-3); y0 -= pad; y1 += pad }
    if y0 == y1 { y0 -= 1; y1 += 1 }
    func fx(_ x: Double) -> Double {
        let t = logX && x0 > 0 ? (log(x) - log(x0)) / (log(x1) - log(x0)) : (x - x0) / (x1 - x0)
        return left + t * plotW
    }
    func fy(_ y: Double) -> Double { top + (1 - (y - y0) / (y1 - y0)) * plotH }
    var s = "<rect width=\"\(width)\" height=\"\(height)\" fill=\"white\"/>\n"
    s += "<text x=\"\(Int(left))\" y=\"22\" font-size=\"15\" font-weight=\"bold\">\(xmlEscape(title))</text>\n"
    // Grid and ticks.
    for t in niceTicks(y0, y1) {
        let y = fy(t)
        s += String(format: "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e5e5e5\"/>\n", left, y, left + plotW, y)
        s += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%@</text>\n", left - 6, y + 4, tickLabel(t, percent: yPercent))
    }
    let xTicks = logX ? Array(Set(xs)).sorted() : niceTicks(x0, x1)
    for t in xTicks {
        let x = fx(t)
        s += String(format: "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e5e5e5\"/>\n", x, top, x, top + plotH)
        s += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%@</text>\n", x, top + plotH + 18, tickLabel(t, percent: xPercent))
    }
    s += String(format: "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#333\"/>\n", left, top, plotW, plotH)
    s += String(format: "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%@</text>\n", left + plotW / 2, height - 12, xmlEscape(xLabel))
    s += String(format: "<text transform=\"translate(16 %.1f) rotate(-90)\" text-anchor=\"middle\">%@</text>\n", top + plotH / 2, xmlEscape(yLabel))
    // Bands first, under every line.
    for line in series {
        guard let band = line.band, band.count == line.points.count, !band.isEmpty else { continue }
        let order = line.points.indices.sorted { line.points[$0].x < line.points[$1].x }
        let upper = order.map { String(format: "%.1f,%.1f", fx(line.points[$0].x), fy(band[$0].hi)) }
        let lower = order.reversed().map { String(format: "%.1f,%.1f", fx(line.points[$0].x), fy(band[$0].lo)) }
        s += "<polygon class=\"band\" points=\"\((upper + lower).joined(separator: " "))\" fill=\"\(line.color)\" fill-opacity=\"0.12\" stroke=\"none\"/>\n"
    }
    for r in references {
        let y = fy(r.y)
        s += String(format: "<line class=\"reference\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%@\" stroke-width=\"1.5\" stroke-dasharray=\"2 3\"/>\n",
                     left, y, left + plotW, y, r.color)
        s += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" fill=\"%@\">%@</text>\n", left + plotW - 4, y - 5, r.color, xmlEscape(r.label))
    }
    for line in series {
        let pts = line.points.sorted { $0.x < $1.x }
        guard !pts.isEmpty else { continue }
        if line.joined {
        let path = pts.enumerated().map { String(format: "%@%.1f %.1f", $0.offset == 0 ? "M" : "L", fx($0.element.x), fy($0.element.y)) }.joined(separator: " ")
        s += "<path d=\"\(path)\" fill=\"none\" stroke=\"\(line.color)\" stroke-width=\"\(line.width)\" stroke-opacity=\"\(line.opacity)\""
            + (line.dashed ? " stroke-dasharray=\"6 4\"" : "") + "/>\n"
        }
        for p in pts {
            if let e = p.error, e > 0 {
                s += String(format: "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%@\"/>\n", fx(p.x), fy(p.y - e), fx(p.x), fy(p.y + e), line.color)
            }
            if line.markers {
                s += String(format: "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%@\"/>\n", fx(p.x), fy(p.y), line.color)
            }
        }
    }
    if legend {
        var y = top + 8
        var seen = Set<String>()
        for line in series where !line.name.isEmpty && seen.insert(line.name).inserted {
            let x = left + plotW + 14
            s += String(format: "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%@\" stroke-width=\"3\"%@/>\n",
                         x, y, x + 22, y, line.color, line.dashed ? " stroke-dasharray=\"6 4\"" : "")
            s += String(format: "<text x=\"%.1f\" y=\"%.1f\">%@</text>\n", x + 28, y + 4, xmlEscape(line.name))
            y += 20
        }
    }
    return s
}

/// Horizontal bars: one row per label, `value` out of `total` (e.g. units kept per layer).
func barChart(title: String, rows: [(label: String, value: Double, total: Double)], width: Int = 640) -> String {
    let rowHeight = 26.0, top = 40.0, left = 130.0, right = 110.0
    let height = Int(top + rowHeight * Double(rows.count) + 16)
    let plotW = Double(width) - left - right
    let maxTotal = rows.map(\.total).max() ?? 1
    var s = svgOpen(width, height)
    s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    s += "<text x=\"12\" y=\"22\" font-size=\"15\" font-weight=\"bold\">\(xmlEscape(title))</text>\n"
    for (i, row) in rows.enumerated() {
        let y = top + Double(i) * rowHeight
        let full = plotW * row.total / maxTotal, kept = plotW * row.value / maxTotal
        s += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%@</text>\n", left - 8, y + 15, xmlEscape(row.label))
        s += String(format: "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"18\" fill=\"#e5e5e5\"/>\n", left, y + 2, full)
        s += String(format: "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"18\" fill=\"%@\"/>\n", left, y + 2, kept, chartPalette[0])
        s += String(format: "<text x=\"%.1f\" y=\"%.1f\">%d / %d</text>\n", left + full + 8, y + 15, Int(row.value), Int(row.total))
    }
    return s + "</svg>\n"
}

/// A DAP search as two panels over one step axis that starts at 0. Top: per layer, the mean
/// inclusion probability of its units with the band from the 25th to the 75th percentile, and
/// in the legend the units kept of the total. Bottom, on its own axis: the expected cost
/// E[C]/C_full and the budget target (when the budget is a fraction of the full cost).
func gateTrajectoryChart(title: String, steps: [Int], probabilities: [[Double]], groups: [(name: String, size: Int, kept: Int)],
                         costs: [Double], target: Double?, width: Int = 640) -> String {
    var series: [ChartSeries] = []
    var first = 0
    for (g, group) in groups.enumerated() {
        let units = first..<(first + group.size)
        first += group.size
        var points: [(x: Double, y: Double, error: Double?)] = []
        var band: [(lo: Double, hi: Double)] = []
        for (i, step) in steps.enumerated() where i < probabilities.count && units.upperBound <= probabilities[i].count {
            let values = units.map { probabilities[i][$0] }.sorted()
            points.append((Double(step), values.reduce(0, +) / Double(max(values.count, 1)), nil))
            band.append((quantile(values, 0.25), quantile(values, 0.75)))
        }
        series.append(ChartSeries(name: "\(group.name): kept \(group.kept)/\(group.size)", points: points,
                                  color: chartPalette[g % chartPalette.count], markers: false, band: band))
    }
    let xEnd = Double(steps.last ?? 1)
    let top = lineChartBody(title: title, xLabel: "search step", yLabel: "mean inclusion probability (band: 25–75%)",
                            series: series, width: width, height: 340, logX: false, xPercent: false, yPercent: false,
                            yRange: (0, 1), xRange: (0, xEnd), references: [], legend: true, legendWidth: 170)
    let cost = ChartSeries(name: "E[C]/C_full", points: steps.indices.filter { $0 < costs.count }.map { (Double(steps[$0]), costs[$0], nil) },
                           color: "#000000", markers: false)
    let references = target.map { [ChartReference(y: $0, label: "budget target " + String(format: "%.0f%%", $0 * 100), color: "#D55E00")] } ?? []
    let bottom = lineChartBody(title: "Expected cost of the relaxed network", xLabel: "search step", yLabel: "E[C] / C_full",
                               series: [cost], width: width, height: 240, logX: false, xPercent: false, yPercent: true,
                               yRange: (0, max(1, costs.max() ?? 1)), xRange: (0, xEnd), references: references, legend: true,
                               legendWidth: 170)
    return stackedCharts([(top, 340), (bottom, 240)], width: width)
}

/// The `q` quantile (0…1) of ascending `sorted` values, linear between neighbours; 0 when empty.
/// Example: `quantile([1, 2, 3, 4], 0.25)` is 1.75.
func quantile(_ sorted: [Double], _ q: Double) -> Double {
    guard !sorted.isEmpty else { return 0 }
    let position = q * Double(sorted.count - 1)
    let lo = Int(position.rounded(.down)), hi = min(lo + 1, sorted.count - 1)
    return sorted[lo] + (position - Double(lo)) * (sorted[hi] - sorted[lo])
}

/// Independent measurements as points, one column per group, with the mean as a bar and its
/// 95% confidence interval as a whisker (t distribution): e.g. accuracy per few-shot episode.
func stripChart(title: String, yLabel: String, groups: [(label: String, values: [Double], color: String)],
                yPercent: Bool = true, width: Int = 640, height: Int = 380) -> String {
    let (left, right, top, bottom) = (64.0, 16.0, 36.0, 70.0)
    let plotW = Double(width) - left - right, plotH = Double(height) - top - bottom
    let stats = groups.map { meanAndCI($0.values) }
    var lo = groups.flatMap(\.values).min() ?? 0, hi = groups.flatMap(\.values).max() ?? 1
    for (m, ci) in stats { lo = min(lo, m - ci); hi = max(hi, m + ci) }
    let pad = max((hi - lo) * 0.1, 0.01)
    let (y0, y1) = (max(0, lo - pad), min(yPercent ? 1 : hi + pad, hi + pad))
    func fy(_ y: Double) -> Double { top + (1 - (y - y0) / max(y1 - y0, 1e-9)) * plotH }
    var s = svgOpen(width, height)
    s += "<rect width=\"\(width)\" height=\"\(height)\" fill=\"white\"/>\n"
    s += "<text x=\"\(Int(left))\" y=\"22\" font-size=\"15\" font-weight=\"bold\">\(xmlEscape(title))</text>\n"
    for t in niceTicks(y0, y1) {
        s += String(format: "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e5e5e5\"/>\n", left, fy(t), left + plotW, fy(t))
        s += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%@</text>\n", left - 6, fy(t) + 4, tickLabel(t, percent: yPercent))
    }
    s += String(format: "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#333\"/>\n", left, top, plotW, plotH)
    s += String(format: "<text transform=\"translate(16 %.1f) rotate(-90)\" text-anchor=\"middle\">%@</text>\n", top + plotH / 2, xmlEscape(yLabel))
    let column = plotW / Double(max(groups.count, 1))
    for (g, group) in groups.enumerated() {
        let cx = left + column * (Double(g) + 0.5)
        // Points spread sideways by their rank, so equal values stay visible.
        for (i, v) in group.values.enumerated() {
            let dx = group.values.count > 1 ? (Double(i) / Double(group.values.count - 1) - 0.5) * column * 0.35 : 0
            s += String(format: "<circle class=\"episode\" cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%@\" fill-opacity=\"0.55\"/>\n", cx - column * 0.12 + dx, fy(v), group.color)
        }
        let (m, ci) = stats[g]
        let wx = cx + column * 0.28
        s += String(format: "<line class=\"ci\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%@\" stroke-width=\"2\"/>\n", wx, fy(m - ci), wx, fy(m + ci), group.color)
        for y in [m - ci, m + ci] {
            s += String(format: "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%@\" stroke-width=\"2\"/>\n", wx - 6, fy(y), wx + 6, fy(y), group.color)
        }
        s += String(format: "<line class=\"mean\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%@\" stroke-width=\"3\"/>\n", wx - 14, fy(m), wx + 14, fy(m), group.color)
        let meanText = yPercent ? String(format: "%.1f%% ± %.1f", m * 100, ci * 100) : String(format: "%.3g ± %.2g", m, ci)
        s += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%@</text>\n", cx, top + plotH + 18, xmlEscape(group.label))
        s += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" fill=\"#555\">%@</text>\n", cx, top + plotH + 34, meanText)
    }
    s += String(format: "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" fill=\"#555\">points: episodes; bar: mean; whisker: 95%% CI</text>\n", left + plotW / 2, height - 8)
    return s + "</svg>\n"
}

/// Horizontal bars of values in one unit, longest first kept in the given order, with the value
/// printed after each bar (e.g. per-op latency in µs).
func valueBarChart(title: String, rows: [(label: String, value: Double)], unit: String, width: Int = 640) -> String {
    let rowHeight = 22.0, top = 40.0, left = 190.0, right = 110.0
    let height = Int(top + rowHeight * Double(rows.count) + 16)
    let plotW = Double(width) - left - right
    let maxValue = max(rows.map(\.value).max() ?? 1, 1e-12)
    var s = svgOpen(width, height)
    s += "<rect width=\"\(width)\" height=\"\(height)\" fill=\"white\"/>\n"
    s += "<text x=\"12\" y=\"22\" font-size=\"15\" font-weight=\"bold\">\(xmlEscape(title))</text>\n"
    for (i, row) in rows.enumerated() {
        let y = top + Double(i) * rowHeight
        let w = plotW * max(row.value, 0) / maxValue
        s += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%@</text>\n", left - 8, y + 14, xmlEscape(row.label))
        s += String(format: "<rect class=\"bar\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"16\" fill=\"%@\"/>\n", left, y + 2, w, chartPalette[0])
        s += String(format: "<text x=\"%.1f\" y=\"%.1f\">%@ %@</text>\n", left + w + 6, y + 14, String(format: "%.2f", row.value), unit)
    }
    return s + "</svg>\n"
}

/// The arena as a map: x is the op sequence (column 0 the input, column o + 1 op o), y the byte
/// offset; each activation is a box from the op that writes it to the last op that reads it,
/// over its byte range.
func arenaMapChart(title: String, arenaBytes: Int, opCount: Int,
                   tensors: [(name: String, offset: Int, bytes: Int, first: Int, last: Int)], width: Int = 640) -> String {
    let height = 360
    let (left, right, top, bottom) = (80.0, 16.0, 36.0, 44.0)
    let plotW = Double(width) - left - right, plotH = Double(height) - top - bottom
    let columns = Double(max(opCount + 1, 1))  // column 0: the input, before op 0
    func fx(_ op: Int) -> Double { left + Double(op + 1) / columns * plotW }
    func fy(_ offset: Int) -> Double { top + plotH * Double(offset) / Double(max(arenaBytes, 1)) }
    var s = svgOpen(width, height)
    s += "<rect width=\"\(width)\" height=\"\(height)\" fill=\"white\"/>\n"
    s += "<text x=\"\(Int(left))\" y=\"22\" font-size=\"15\" font-weight=\"bold\">\(xmlEscape(title))</text>\n"
    s += String(format: "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#f6f6f6\" stroke=\"#333\"/>\n", left, top, plotW, plotH)
    for t in niceTicks(0, Double(arenaBytes), count: 4) {
        let y = fy(Int(t))
        s += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%@</text>\n", left - 6, y + 4, String(Int(t)))
    }
    for (i, t) in tensors.enumerated() {
        let x0 = fx(t.first - 1), x1 = fx(t.last)
        let y0 = fy(t.offset), h = max(fy(t.offset + t.bytes) - y0, 1)
        s += String(format: "<rect class=\"buffer\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%@\" fill-opacity=\"0.8\" stroke=\"white\"><title>%@: bytes %d–%d, ops %d–%d</title></rect>\n",
                     x0, y0, max(x1 - x0, 2), h, chartPalette[i % chartPalette.count], xmlEscape(t.name), t.offset, t.offset + t.bytes, t.first, t.last)
        if h >= 12 && x1 - x0 >= 60 {
            s += String(format: "<text x=\"%.1f\" y=\"%.1f\" fill=\"white\" font-size=\"10\">%@</text>\n", x0 + 3, y0 + min(h, 24) / 2 + 4, xmlEscape(t.name))
        }
    }
    for c in 0...opCount {
        let x = left + (Double(c) + 0.5) / columns * plotW
        s += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"10\">%@</text>\n", x, top + plotH + 14, c == 0 ? "in" : String(c - 1))
    }
    s += String(format: "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">op, numbered as by sprig-edge info (in: the input, before op 0)</text>\n", left + plotW / 2, height - 12)
    s += String(format: "<text transform=\"translate(16 %.1f) rotate(-90)\" text-anchor=\"middle\">arena byte offset</text>\n", top + plotH / 2)
    return s + "</svg>\n"
}
