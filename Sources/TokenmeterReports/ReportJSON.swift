import TokenmeterCore

/// `--format json`: one object with the span, the window and why, the filters, the total (and previous
/// total), and the lines, each with its key as an object. Money is an exact JSON number.
public enum ReportJSON {
    public static func render(_ r: Report) -> String {
        let t = r.main
        let compare = t.previousTotal != nil
        var o = "{\n"
        o += "  \"generated_at\": \(jsonString(RFC3339.format(r.generatedAt))),\n"
        o += "  \"from\": \(jsonString(RFC3339.format(r.from))),\n"
        o += "  \"to\": \(jsonString(RFC3339.format(r.to))),\n"
        if let p = r.previousFrom {
            o += "  \"previous_from\": \(jsonString(RFC3339.format(p))),\n  \"previous_to\": \(jsonString(RFC3339.format(r.from))),\n"
        }
        o += "  \"window\": \(jsonString(r.window)),\n"
        o += "  \"window_reason\": \(jsonString(r.windowReason)),\n"
        o += "  \"by\": [\(t.dimensions.map { jsonString($0.description) }.joined(separator: ", "))],\n"
        o += "  \"filters\": \(jsonString(r.query.filter.summary)),\n"
        o += "  \"files_read\": \(r.filesRead),\n  \"rollup_rows_read\": \(r.rowsRead),\n  \"rollup_rows_used\": \(r.rowsUsed),\n"
        var total = ReportLine(values: [])
        total.current = t.total
        total.previous = t.previousTotal
        o += "  \"total\": " + object(ReportColumns.figures(total, total: t.total.cost, compare: compare)) + ",\n"
        o += "  \"lines\": ["
        for (i, l) in t.lines.enumerated() {
            o += i == 0 ? "\n" : ",\n"
            var key = "{"
            for (k, d) in t.dimensions.enumerated() {
                if k > 0 { key += "," }
                key += jsonString(d.description) + ":" + (l.values[k].map(jsonString) ?? "null")
            }
            key += "}"
            o += "    {\"key\":\(key),\"other\":\(l.isOther),"
            o += String(object(ReportColumns.figures(l, total: t.total.cost, compare: compare)).dropFirst())
        }
        o += t.lines.isEmpty ? "]\n" : "\n  ]\n"
        o += "}\n"
        return o
    }

    static func object(_ fields: [(String, ReportColumns.Value)]) -> String {
        "{" + fields.map { jsonString($0.0) + ":" + ReportColumns.json($0.1) }.joined(separator: ",") + "}"
    }
}
