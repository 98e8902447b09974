import TokenmeterCore

/// `--format markdown`: a heading with the span, then a GitHub-flavoured table (numbers right-aligned)
/// with a bold total line. For pasting into tickets and wikis.
public enum ReportMarkdown {
    public static func render(_ r: Report) -> String {
        let t = r.main
        var out = "### LLM spend \(RFC3339.format(r.from)) to \(RFC3339.format(r.to))\n\n"
        out += "Window: \(r.windowReason)."
        if let p = r.previousFrom { out += " Compared with \(RFC3339.format(p)) to \(RFC3339.format(r.from))." }
        if !r.query.filter.isEmpty { out += " Filters: `\(r.query.filter.summary)`." }
        out += "\n\n"
        let header = ReportHumanColumns.header(t)
        let keys = ReportHumanColumns.keyCount(t)
        out += "| " + header.map(escape).joined(separator: " | ") + " |\n"
        out += "|" + header.indices.map { $0 < keys ? " --- |" : " ---: |" }.joined() + "\n"
        for l in t.lines {
            out += "| " + ReportHumanColumns.cells(l, t).map(escape).joined(separator: " | ") + " |\n"
        }
        let total = ReportHumanColumns.cells(ReportHumanColumns.totalLine(t), t)
        out += "| " + total.map { $0.isEmpty ? "" : "**" + escape($0) + "**" }.joined(separator: " | ") + " |\n"
        return out
    }

    static func escape(_ s: String) -> String { s.replacingAll("|", with: "\\|") }
}
