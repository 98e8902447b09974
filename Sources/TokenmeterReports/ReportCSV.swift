import TokenmeterCore

/// `--format csv`: one header line, one line per report line (the `(other)` line included, so the column
/// sums equal the total), RFC 4180 quoting, exact money. No total line: sum the column.
public enum ReportCSV {
    public static func render(_ r: Report) -> String {
        let t = r.main
        let compare = t.previousTotal != nil
        var out = ""
        var header = t.dimensions.map(\.description)
        header += ReportColumns.figures(ReportLine(values: []), total: .zero, compare: compare).map(\.0)
        out += header.map(field).joined(separator: ",") + "\r\n"
        for l in t.lines {
            var cells = l.values.map { $0 ?? "" }
            cells += ReportColumns.figures(l, total: t.total.cost, compare: compare).map { ReportColumns.csv($0.1) }
            out += cells.map(field).joined(separator: ",") + "\r\n"
        }
        return out
    }

    /// RFC 4180: quote when the field has a comma, quote, CR or LF; double the quotes.
    public static func field(_ s: String) -> String {
        guard s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return s }
        return "\"" + s.replacingAll("\"", with: "\"\"") + "\""
    }
}

extension String {
    func replacingAll(_ target: Character, with replacement: String) -> String {
        var out = ""
        for c in self { if c == target { out += replacement } else { out.append(c) } }
        return out
    }
}
