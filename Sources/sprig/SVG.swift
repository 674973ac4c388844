// Small, dependency-free SVG charts for the results pages: line charts with
// axes, ticks, a legend and optional error bars, and horizontal bar charts.
// Every chart is a standalone <svg> element with a fixed size and a white background.

import Foundation

struct ChartSeries {
    var name: String
    var points: [(x: Double, y: Double, error: Double?)]
    var color: String
    var width = 2.0
    var opacity = 1.0
    var dashed = false
    var markers = true
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
    return String(format: "%.2g", v)
}

/// A line chart. `logX` spaces x logarithmically (budgets 5–50%); `yPercent` labels fractions as %.
func lineChart(title: String, xLabel: String, yLabel: String, series: [ChartSeries], width: Int = 640, height: Int = 400,
               logX: Bool = false, xPercent: Bool = false, yPercent: Bool = false, yRange: (Double, Double)? = nil,
               legend: Bool = true) -> String {
    let (left, right, top, bottom) = (64.0, legend ? 170.0 : 24.0, 36.0, 52.0)
    let plotW = Double(width) - left - right, plotH = Double(height) - top - bottom
    let xs = series.flatMap { $0.points.map(\.x) }, ys = series.flatMap { $0.points.flatMap { p in [p.y - (p.error ?? 0), p.y + (p.error ?? 0)] } }
    var (x0, x1) = (xs.min() ?? 0, xs.max() ?? 1)
    if x0 == x1 { x0 -= 1; x1 += 1 }
    var (y0, y1) = yRange ?? (ys.min() ?? 0, ys.max() ?? 1)
    if yRange == nil { let pad = max((y1 - y0) * 0.08, 1e-3); y0 -= pad; y1 += pad }
    if y0 == y1 { y0 -= 1; y1 += 1 }
    func fx(_ x: Double) -> Double {
        let t = logX && x0 > 0 ? (log(x) - log(x0)) / (log(x1) - log(x0)) : (x - x0) / (x1 - x0)
        return left + t * plotW
    }
    func fy(_ y: Double) -> Double { top + (1 - (y - y0) / (y1 - y0)) * plotH }
    var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\" viewBox=\"0 0 \(width) \(height)\" font-family=\"sans-serif\" font-size=\"12\">\n"
    s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
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
    for line in series {
        let pts = line.points.sorted { $0.x < $1.x }
        guard !pts.isEmpty else { continue }
        let path = pts.enumerated().map { String(format: "%@%.1f %.1f", $0.offset == 0 ? "M" : "L", fx($0.element.x), fy($0.element.y)) }.joined(separator: " ")
        s += "<path d=\"\(path)\" fill=\"none\" stroke=\"\(line.color)\" stroke-width=\"\(line.width)\" stroke-opacity=\"\(line.opacity)\""
            + (line.dashed ? " stroke-dasharray=\"6 4\"" : "") + "/>\n"
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
    return s + "</svg>\n"
}

/// Horizontal bars: one row per label, `value` out of `total` (e.g. units kept per layer).
func barChart(title: String, rows: [(label: String, value: Double, total: Double)], width: Int = 640) -> String {
    let rowHeight = 26.0, top = 40.0, left = 130.0, right = 110.0
    let height = Int(top + rowHeight * Double(rows.count) + 16)
    let plotW = Double(width) - left - right
    let maxTotal = rows.map(\.total).max() ?? 1
    var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\" viewBox=\"0 0 \(width) \(height)\" font-family=\"sans-serif\" font-size=\"12\">\n"
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

/// Inclusion probabilities of every unit over a DAP search, one thin line per unit coloured by
/// group, with the expected cost fraction on top.
func gateTrajectoryChart(title: String, steps: [Int], probabilities: [[Double]], groups: [(name: String, size: Int)],
                         costs: [Double]) -> String {
    var series: [ChartSeries] = []
    var unit = 0
    for (g, group) in groups.enumerated() {
        let color = chartPalette[g % chartPalette.count]
        for _ in 0..<group.size {
            let u = unit
            series.append(ChartSeries(name: group.name, points: steps.indices.map { (Double(steps[$0]), probabilities[$0][u], nil) },
                                      color: color, width: 0.8, opacity: 0.35, markers: false))
            unit += 1
        }
    }
    series.append(ChartSeries(name: "E[C]/C_full", points: steps.indices.map { (Double(steps[$0]), costs[$0], nil) },
                              color: "#000000", width: 2.5, dashed: true, markers: false))
    return lineChart(title: title, xLabel: "search step", yLabel: "inclusion probability p = σ(θ/T1)", series: series,
                     yRange: (0, 1))
}
