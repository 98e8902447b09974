import TokenmeterCore

/// A small SVG plotting surface for the HTML report: a plot area with margins, nice y ticks (linear or
/// log), time x axes, a legend row, stacked bars and lines. Output is plain inline SVG (no scripts).
struct SVGChart {
    var width = 1100.0
    var height = 340.0
    var left = 78.0
    var right = 24.0
    var top = 48.0
    var bottom = 52.0
    var body = ""

    var x0: Double { left }
    var x1: Double { width - right }
    var y0: Double { top }
    var y1: Double { height - bottom }
    var plotWidth: Double { x1 - x0 }
    var plotHeight: Double { y1 - y0 }

    init(height: Double = 340) { self.height = height }

    static func n(_ v: Double) -> String { ReportText.fixed(v, 1) }

    mutating func add(_ s: String) { body += s + "\n" }

    /// Horizontal grid lines and labels for a linear y scale; returns the y of a value.
    mutating func yAxis(_ scale: NiceScale, title: String, format: (Double) -> String) {
        for t in scale.ticks {
            let y = y1 - t / scale.max * plotHeight
            add("<line x1=\"\(Self.n(x0))\" x2=\"\(Self.n(x1))\" y1=\"\(Self.n(y))\" y2=\"\(Self.n(y))\" stroke=\"\(t == 0 ? "#8c959f" : ChartPalette.grid)\" stroke-width=\"1\"/>")
            add("<text x=\"\(Self.n(x0 - 8))\" y=\"\(Self.n(y + 4))\" text-anchor=\"end\" class=\"tick\">\(ReportHTML.esc(format(t)))</text>")
        }
        yTitle(title)
    }

    /// Log-scale y grid: one line per decade.
    mutating func logYAxis(_ decades: [Double], title: String, format: (Double) -> String) {
        for d in decades {
            let y = logY(d, decades)
            add("<line x1=\"\(Self.n(x0))\" x2=\"\(Self.n(x1))\" y1=\"\(Self.n(y))\" y2=\"\(Self.n(y))\" stroke=\"\(ChartPalette.grid)\" stroke-width=\"1\"/>")
            add("<text x=\"\(Self.n(x0 - 8))\" y=\"\(Self.n(y + 4))\" text-anchor=\"end\" class=\"tick\">\(ReportHTML.esc(format(d)))</text>")
        }
        yTitle(title)
    }

    func logY(_ v: Double, _ decades: [Double]) -> Double {
        let lo = log10(decades.first!), hi = log10(decades.last!)
        return y1 - (log10(v) - lo) / (hi - lo) * plotHeight
    }

    mutating func yTitle(_ title: String) {
        let cy = (y0 + y1) / 2
        add("<text transform=\"translate(16 \(Self.n(cy))) rotate(-90)\" text-anchor=\"middle\" class=\"axis-title\">\(ReportHTML.esc(title))</text>")
    }

    /// Time labels under `count` equal bands starting at `start`, each `bucket` long; a label at most every
    /// ~90 px, with the date shown when it changes.
    mutating func timeAxis(start: EpochMillis, bucket: Int64, count: Int, title: String) {
        guard count > 0 else { return }
        let band = plotWidth / Double(count)
        let every = max(1, Int((90 / band).rounded(.up)))
        var stride = every
        // Prefer strides that land on round times (every 2, 3, 4, 6, 12 hours; 7 days).
        for s in [1, 2, 3, 4, 6, 8, 12, 24, 48, 168] where s >= every { stride = s; break }
        var lastDay = ""
        for i in Swift.stride(from: 0, to: count, by: stride) {
            let t = start + Int64(i) * bucket
            let x = x0 + (Double(i) + 0.5) * band
            let (y, mo, d, h, mi, _, _) = RFC3339.components(t)
            let day = "\(d) \(ReportHTML.months[mo - 1])"
            add("<line x1=\"\(Self.n(x))\" x2=\"\(Self.n(x))\" y1=\"\(Self.n(y1))\" y2=\"\(Self.n(y1 + 5))\" stroke=\"#8c959f\"/>")
            if bucket < ReportDimension.dayMillis {
                let hm = (h < 10 ? "0" : "") + String(h) + ":" + (mi < 10 ? "0" : "") + String(mi)
                add("<text x=\"\(Self.n(x))\" y=\"\(Self.n(y1 + 19))\" text-anchor=\"middle\" class=\"tick\">\(hm)</text>")
                if day != lastDay {
                    add("<text x=\"\(Self.n(x))\" y=\"\(Self.n(y1 + 34))\" text-anchor=\"middle\" class=\"tick strong\">\(day)</text>")
                    lastDay = day
                }
            } else {
                add("<text x=\"\(Self.n(x))\" y=\"\(Self.n(y1 + 19))\" text-anchor=\"middle\" class=\"tick\">\(day)</text>")
                let year = String(y)
                if year != lastDay {
                    add("<text x=\"\(Self.n(x))\" y=\"\(Self.n(y1 + 34))\" text-anchor=\"middle\" class=\"tick strong\">\(year)</text>")
                    lastDay = year
                }
            }
        }
        add("<text x=\"\(Self.n(x1))\" y=\"\(Self.n(height - 4))\" text-anchor=\"end\" class=\"axis-title\">\(ReportHTML.esc(title))</text>")
    }

    /// A row of swatches and names above the plot, wrapping when long.
    mutating func legend(_ items: [(name: String, color: String, line: Bool)]) {
        var x = x0, y = 18.0
        for item in items {
            let w = 26 + Double(item.name.count) * 7.4
            if x + w > x1 { x = x0; y += 18 }
            if item.line {
                add("<line x1=\"\(Self.n(x))\" x2=\"\(Self.n(x + 16))\" y1=\"\(Self.n(y - 4))\" y2=\"\(Self.n(y - 4))\" stroke=\"\(item.color)\" stroke-width=\"3\"/>")
            } else {
                add("<rect x=\"\(Self.n(x))\" y=\"\(Self.n(y - 11))\" width=\"12\" height=\"12\" rx=\"2\" fill=\"\(item.color)\"/>")
            }
            add("<text x=\"\(Self.n(x + 20))\" y=\"\(Self.n(y))\" class=\"legend\">\(ReportHTML.esc(item.name))</text>")
            x += w
        }
    }

    /// A shaded band marking the previous span (from band `0` to band `until`).
    mutating func shadeBands(until: Int, count: Int, label: String) {
        guard until > 0, count > 0 else { return }
        let w = plotWidth * Double(until) / Double(count)
        add("<rect x=\"\(Self.n(x0))\" y=\"\(Self.n(y0))\" width=\"\(Self.n(w))\" height=\"\(Self.n(plotHeight))\" fill=\"#f3f4f6\"/>")
        add("<text x=\"\(Self.n(x0 + 6))\" y=\"\(Self.n(y0 + 14))\" class=\"tick\">\(ReportHTML.esc(label))</text>")
        add("<line x1=\"\(Self.n(x0 + w))\" x2=\"\(Self.n(x0 + w))\" y1=\"\(Self.n(y0))\" y2=\"\(Self.n(y1))\" stroke=\"#8c959f\" stroke-dasharray=\"4 3\"/>")
    }

    func svg(title: String, description: String) -> String {
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 \(Self.n(width)) \(Self.n(height))\" role=\"img\" aria-label=\"\(ReportHTML.esc(title))\">"
            + "<title>\(ReportHTML.esc(title))</title><desc>\(ReportHTML.esc(description))</desc>\n" + body + "</svg>"
    }
}

func log10(_ x: Double) -> Double {
    // Enough precision for chart placement; no Foundation.
    var v = x, e = 0.0
    guard v > 0 else { return -300 }
    while v >= 10 { v /= 10; e += 1 }
    while v < 1 { v *= 10; e -= 1 }
    // ln(v)/ln(10) by series on ln((1+y)/(1-y)).
    let y = (v - 1) / (v + 1)
    var term = y, sum = 0.0, k = 1.0
    for _ in 0..<30 { sum += term / k; term *= y * y; k += 2 }
    return e + 2 * sum / 2.302585092994046
}
