import TokenmeterCore

/// `--format table`: an aligned table for a terminal, with a header block (span, window and why, filters)
/// and a total line. Colour (bold header, red for spend going up, green for down, dim `(other)`) only when
/// asked: the command asks when stdout is a terminal and `NO_COLOR` is unset.
public struct ReportTableText {
    public var color: Bool
    public init(color: Bool) { self.color = color }

    public func render(_ r: Report) -> String {
        let t = r.main
        var out = "tokenmeter report  \(ReportText.span(r.from, r.to))\n"
        out += "window \(r.windowReason)\n"
        if let p = r.previousFrom { out += "compared with the previous span \(ReportText.span(p, r.from))\n" }
        if !r.query.filter.isEmpty { out += "filters \(r.query.filter.summary)\n" }
        out += "\n"
        let header = ReportHumanColumns.header(t)
        var rows = t.lines.map { ReportHumanColumns.cells($0, t) }
        let total = ReportHumanColumns.cells(ReportHumanColumns.totalLine(t), t)
        rows.append(total)
        var widths = header.map(\.count)
        for row in rows { for (i, c) in row.enumerated() { widths[i] = max(widths[i], c.count) } }
        let keys = ReportHumanColumns.keyCount(t)
        let change = ReportHumanColumns.changeColumns(t)
        func line(_ cells: [String], style: (Int, String) -> String) -> String {
            var s = ""
            for (i, c) in cells.enumerated() {
                let pad = String(repeating: " ", count: widths[i] - c.count)
                let text = i < keys ? c + pad : pad + c
                s += (i == 0 ? "" : "  ") + style(i, text)
            }
            while s.hasSuffix(" ") { s.removeLast() }
            return s + "\n"
        }
        out += line(header) { _, s in paint(s, "1") }
        out += String(repeating: "-", count: widths.reduce(0, +) + 2 * (widths.count - 1)) + "\n"
        for (n, l) in t.lines.enumerated() {
            let up = (l.costChange?.femtos ?? 0) > 0, down = (l.costChange?.femtos ?? 0) < 0
            out += line(rows[n]) { i, s in
                if l.isOther { return paint(s, "2") }
                if let change, change.contains(i), up || down { return paint(s, up ? "31" : "32") }
                return s
            }
        }
        out += line(total) { _, s in paint(s, "1") }
        if t.lines.isEmpty { out += "(no rows in this span and filter)\n" }
        return out
    }

    private func paint(_ s: String, _ code: String) -> String {
        color ? "\u{1B}[\(code)m" + s + "\u{1B}[0m" : s
    }
}
