/// `--format`.
public enum ReportFormat: String, Sendable, CaseIterable {
    case table, csv, json, markdown, html, focus

    /// Renders a report. `color` applies to `table` only.
    public func render(_ r: Report, color: Bool = false) -> String {
        switch self {
        case .table: ReportTableText(color: color).render(r)
        case .csv: ReportCSV.render(r)
        case .json: ReportJSON.render(r)
        case .markdown: ReportMarkdown.render(r)
        case .html: ReportHTML.render(r)
        case .focus: ReportFocus.render(r)
        }
    }

    /// Groupings the format needs besides `--by`.
    public var extraGroupings: [[ReportDimension]] {
        self == .html ? ReportHTML.groupings : []
    }
}
