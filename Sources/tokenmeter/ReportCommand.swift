import ArgumentParser
import Foundation
import TokenmeterCore
import TokenmeterReports

/// `tokenmeter report`: reads rollup files and answers what things cost, what they returned and what moved.
struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Report spend, tokens, outcomes and movers from rollup files.",
        // The examples are whole shell commands, each line under 80 columns (the help is wrapped at the
        // terminal's width, 80 when there is none), continued with `\`: copied from a terminal, they run.
        discussion: """
        Reads one window size (default: the largest whose files cover the span exactly; \
        the reason is printed), sums final, late and every writer's partial rows, \
        filters with globs (* and ?), groups by any keys.

        Examples (DIR is the daemon's rollups.dir, CONFIG its configuration file):
          tokenmeter report --dir DIR --from 2026-11-01 --to 2026-12-01 --by owner
          tokenmeter report --dir DIR --by workflow,model --owner 'finance-*' \\
              --top 10 --compare previous
          tokenmeter report --dir DIR --by day --format csv
          tokenmeter report --dir DIR --format html --output spend.html
          tokenmeter report --dir DIR --config CONFIG --format html
          tokenmeter report --dir DIR --config CONFIG --from 2026-11-01 \\
              --to 2026-12-01 --format focus > focus.csv

        More: docs/reports.md.
        """)

    @Option(help: "The rollups folder (rollups.dir).")
    var dir: String

    @Option(help: "Start of the span, RFC 3339 or a date (inclusive; a row counts when its window lies inside).")
    var from: String?

    @Option(help: "End of the span, RFC 3339 or a date (exclusive; a date means its midnight UTC).")
    var to: String?

    @Option(help: "Window size to read (1h, 1d, ...). Default: the largest whose files cover the span.")
    var window: String?

    @Option(help: "Group by: workflow, owner, model, model_family (the model without a trailing date snapshot), provider, tag:NAME, window, day, hour (comma-separated).")
    var by: String = "workflow"

    @Option(help: "Only owners matching this glob (repeatable, or comma-separated).")
    var owner: [String] = []

    @Option(help: "Only workflows matching this glob.")
    var workflow: [String] = []

    @Option(help: "Only models matching this glob (outcome rows have no model and are then left out).")
    var model: [String] = []

    @Option(help: "Only providers matching this glob.")
    var provider: [String] = []

    @Option(help: "Only rows whose tag NAME matches GLOB: NAME=GLOB (repeatable; all must match).")
    var tag: [String] = []

    @Option(parsing: .unconditional, help: "Keep the N costliest keys and sum the rest into (other).")
    var top: Int?

    @Option(help: "'previous': add the change against the previous span of equal length.")
    var compare: String?

    @Option(help: "table, csv, json, markdown, html or focus (FinOps FOCUS 1.2-style CSV).")
    var format: String = "table"

    @Option(help: "Write to this file (html default: tokenmeter-report.html, its path printed).")
    var output: String?

    @Option(help: "The daemon's config: its prices (focus), budgets (html) and [focus] billing account.")
    var config: String?

    @Option(help: "focus: BillingAccountId (overrides [focus] billing_account_id).")
    var billingAccountId: String?

    @Option(help: "focus: BillingAccountName (overrides [focus] billing_account_name).")
    var billingAccountName: String?

    @Flag(help: "Print files read, rows and read speed to stderr.")
    var stats = false

    /// Every command-line mistake is found here, before `run`: the parser then prints it with this
    /// command's usage (an error thrown by `run` gets the top-level usage) and exit 64.
    func validate() throws {
        guard ReportFormat(rawValue: format) != nil else {
            throw ValidationError("--format must be one of \(ReportFormat.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        _ = try query()
        for (value, name) in [(billingAccountId, "--billing-account-id"), (billingAccountName, "--billing-account-name")] {
            guard let value else { continue }
            if value.isEmpty { throw ValidationError("\(name) must not be empty") }
            if let problem = FocusSettings.problem(value) { throw ValidationError("\(name) \(problem)") }
        }
    }

    func run() throws {
        let fmt = ReportFormat(rawValue: format)!
        let q = try query()
        var settings = config.map(loadConfigOrExit)
        if settings == nil && (billingAccountId != nil || billingAccountName != nil) { settings = TokenmeterConfig() }
        if let id = billingAccountId { settings!.focus.billingAccountId = id }
        if let name = billingAccountName { settings!.focus.billingAccountName = name }
        if fmt == .focus && config == nil {
            printError("tokenmeter report: no --config: without the price table every priced row is one line of its "
                       + "recorded cost, without unit prices (docs/reports.md)")
        }
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isFolder), isFolder.boolValue else {
            printError("tokenmeter report: no rollup folder at \(dir)")
            throw ExitCode(66)  // EX_NOINPUT, as produce and replay
        }
        let report: Report
        do {
            report = try ReportEngine.run(q, extra: fmt.extraGroupings, keepRows: fmt == .focus, now: Self.now())
        } catch {
            printError("tokenmeter report: \(error)")
            throw ExitCode(1)
        }
        warnAboutMissingTags(q, report)
        if stats {
            let secs = Double(report.readNanos) / 1e9
            printError(String(format: "read %d files, %d rollup rows (%d used) in %.3f s: %.0f rows/s", report.filesRead,
                              report.rowsRead, report.rowsUsed, secs, secs > 0 ? Double(report.rowsRead) / secs : 0))
        }
        let color = fmt == .table && output == nil && isatty(1) != 0 && ProcessInfo.processInfo.environment["NO_COLOR"] == nil
        let text = fmt.render(report, color: color, config: settings)
        let path = output ?? (fmt == .html ? "tokenmeter-report.html" : nil)
        if let path {
            do {
                try text.write(toFile: path, atomically: true, encoding: .utf8)
            } catch {
                printError("tokenmeter report: cannot write \(path): \(error.localizedDescription)")
                throw ExitCode(1)
            }
            if fmt == .html { writeOut(URL(fileURLWithPath: path).standardizedFileURL.path + "\n") }
        } else {
            writeOut(text)
        }
    }

    func query() throws -> ReportQuery {
        var q = ReportQuery(dir: dir)
        if let from {
            guard let t = ReportQuery.parseTime(from) else { throw ValidationError("--from: not RFC 3339 or a date: \(from)") }
            q.from = t
        }
        if let to {
            guard let t = ReportQuery.parseTime(to) else { throw ValidationError("--to: not RFC 3339 or a date: \(to)") }
            q.to = t
        }
        q.window = window
        if format == ReportFormat.html.rawValue { q.minBuckets = ReportHTML.minBuckets }
        do {
            q.by = try ReportDimension.parseList(by)
            q.filter.tags = try tag.map { t throws(ReportError) in try ReportFilter.tag(t) }
        } catch {
            throw ValidationError(error.description)
        }
        q.filter.owners = ReportFilter.globs(owner)
        q.filter.workflows = ReportFilter.globs(workflow)
        q.filter.models = ReportFilter.globs(model)
        q.filter.providers = ReportFilter.globs(provider)
        if let top, top < 1 { throw ValidationError("--top must be at least 1") }
        q.top = top
        switch compare {
        case nil: break
        case "previous": q.comparePrevious = true
        case let c?: throw ValidationError("--compare: only 'previous' is supported, got '\(c)'")
        }
        return q
    }

    static func now() -> EpochMillis { Int64(Date().timeIntervalSince1970 * 1000) }

    /// A tag the rollups do not keep groups every row under `-` and filters every row out: say so, with the
    /// tags the rows read do carry (the daemon keeps the tags listed in `rollups.tags`).
    func warnAboutMissingTags(_ q: ReportQuery, _ report: Report) {
        guard report.rowsUsed > 0 || !q.filter.tags.isEmpty else { return }
        var asked: [String] = []
        for d in q.by { if case .tag(let name) = d, !asked.contains(name) { asked.append(name) } }
        for t in q.filter.tags where !asked.contains(t.name) { asked.append(t.name) }
        let kept = report.tagsSeen.joined(separator: ", ")
        for name in asked where !report.tagsSeen.contains(name) {
            printError("tokenmeter report: warning: no rollup row read carries the tag '\(name)'; the rows carry "
                       + (kept.isEmpty ? "no tags" : "the tags: \(kept)") + " (rollups.tags in the daemon's config)")
        }
    }
}

extension ReportCommand {
    /// The demo's closing HTML report: the traffic's day, second half against first half (the spike shows
    /// up as the top mover). Prints the file's path; a failure is reported, not fatal.
    static func demoReport(rollups: String, day: EpochMillis, to path: String, config: TokenmeterConfig? = nil, out: Terminal) {
        var q = ReportQuery(dir: rollups)
        q.from = day + 43_200_000
        q.to = day + 86_400_000
        q.comparePrevious = true
        q.top = 15
        q.minBuckets = ReportHTML.minBuckets
        do {
            var r = try ReportEngine.run(q, extra: ReportFormat.html.extraGroupings, now: now())
            // The traffic covers less than the day when it ran fast: compare like with like, the second half
            // of the data against the first (a partial span against a full one shows everything falling).
            if let end = r.dataEnd, end < q.to! {
                var all = ReportQuery(dir: rollups)
                all.from = day
                all.to = end
                let start = try ReportEngine.run(all, now: now()).dataStart ?? day
                q.to = end
                q.from = end - floorDiv((end - start) / 2, 3_600_000) * 3_600_000
                r = try ReportEngine.run(q, extra: ReportFormat.html.extraGroupings, now: now())
            }
            try ReportFormat.html.render(r, config: config).write(toFile: path, atomically: true, encoding: .utf8)
            out.line("HTML report (charts, movers; open in a browser): \(path)")
        } catch {
            printError("demo report failed: \(error)")
        }
    }
}
