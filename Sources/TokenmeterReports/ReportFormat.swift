import TokenmeterCore

/// `--format`.
public enum ReportFormat: String, Sendable, CaseIterable {
    case table, csv, json, markdown, html, focus

    /// Renders a report. `color` applies to `table` only; `config` (`--config`) gives the FOCUS export its
    /// price table and billing account, and the HTML report its budgets.
    public func render(_ r: Report, color: Bool = false, config: TokenmeterConfig? = nil) -> String {
        switch self {
        case .table: ReportTableText(color: color).render(r)
        case .csv: ReportCSV.render(r)
        case .json: ReportJSON.render(r)
        case .markdown: ReportMarkdown.render(r)
        case .html: ReportHTML.render(r, budgets: ReportBudgets.compute(config?.budgets ?? [], dir: r.query.dir, asOf: r.to,
                                                                        now: r.generatedAt))
        case .focus: ReportFocus.render(r, options: ReportFocus.Options(config))
        }
    }

    /// Groupings the format needs besides `--by`.
    public var extraGroupings: [[ReportDimension]] {
        self == .html ? ReportHTML.groupings : []
    }
}
