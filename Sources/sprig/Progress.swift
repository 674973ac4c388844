// A progress bar on standard error: the bar, a count, a rate, an ETA and a
// free-form status (loss, accuracy, temperatures). Redrawn at most 10 times
// a second; plain lines when stderr is not a terminal (every 10% and every minute).

import Foundation
import SprigTrain

final class ProgressBar {
    let title: String
    let total: Int
    let unit: String
    private let start = Date()
    private var lastDraw = Date.distantPast
    private let isTerminal = isatty(2) != 0
    private var lastPercentLogged = -1
    private var lastLine = Date.distantPast
    /// Where the rate counts from: the bar's creation, or its first report.
    private var origin: (time: Date, done: Int)?
    private(set) var done = 0

    /// `countFromFirstReport`: the bar is made when the first progress report arrives, after
    /// work it did not see (a stage of `sprig prune`), so the rate counts from that report.
    init(_ title: String, total: Int, unit: String = "it", countFromFirstReport: Bool = false) {
        self.title = title
        self.total = max(total, 1)
        self.unit = unit
        if !countFromFirstReport { origin = (start, 0) }
    }

    /// Advances to `done` items and redraws if due.
    func update(_ done: Int, status: String = "") {
        self.done = min(done, total)
        let now = Date()
        let final = self.done == total
        guard final || now.timeIntervalSince(lastDraw) >= 0.1 else { return }
        lastDraw = now
        if origin == nil { origin = (now, self.done) }
        let span = now.timeIntervalSince(origin!.time), counted = self.done - origin!.done
        let rate: Double? = span > 0 && counted > 0 ? Double(counted) / span : nil
        let rateText = rate.map { String(format: "%.0f", $0) } ?? "–"
        let eta = rate.map { duration(Double(total - self.done) / $0) } ?? "?"
        let fraction = Double(self.done) / Double(total)
        if isTerminal {
            let width = 24
            let filled = Int(fraction * Double(width))
            let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
            let line = String(format: "\r%@ %@ %3.0f%% %d/%d %@ %@/s ETA %@ ", title, bar, fraction * 100,
                              self.done, total, rateText, unit, eta) + status
            FileHandle.standardError.write(("\u{1B}[2K" + line).data(using: .utf8)!)
            Interrupt.lineOpen = !final
            if final { FileHandle.standardError.write("\n".data(using: .utf8)!) }
        } else {
            // A line per 10%, and one a minute between them, so that a long run logged to a
            // file still shows it is alive.
            let percent = Int(fraction * 100) / 10 * 10
            if percent != lastPercentLogged || final || now.timeIntervalSince(lastLine) >= 60 {
                lastPercentLogged = percent
                lastLine = now
                printError(String(format: "%@ %3d%% %d/%d %@ %@/s ETA %@ %@", title, Int(fraction * 100), self.done, total, rateText,
                                  unit, eta, status))
            }
        }
    }

    /// Seconds since the bar started.
    var elapsed: Double { Date().timeIntervalSince(start) }
}

/// "1m 05s", "12.3s".
func duration(_ seconds: Double) -> String {
    if !seconds.isFinite { return "?" }
    if seconds < 60 { return String(format: "%.1fs", seconds) }
    let s = Int(seconds.rounded())
    return String(format: "%dm %02ds", s / 60, s % 60)
}
