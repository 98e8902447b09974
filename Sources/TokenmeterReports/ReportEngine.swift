import TokenmeterCore

/// Runs a `ReportQuery` over a folder of rollup files: chooses the window size (`WindowChoice`), lists
/// only the files the span needs (`RollupFileIndex`), reads them with `RollupRecordReader`, filters and
/// sums rows per key for every grouping in one pass. Rows are additive (contract section 3): final rows,
/// late rows and every writer's partial rows for a window are simply added up.
public enum ReportEngine {
    /// - Parameters:
    ///   - extra: more groupings to compute in the same pass (the HTML charts), without `--top`.
    ///   - keepRows: also return the matching rows themselves (the `focus` format).
    ///   - now: the generation time printed on the report.
    public static func run(_ q: ReportQuery, extra: [[ReportDimension]] = [], keepRows: Bool = false,
                           now: EpochMillis) throws(ReportError) -> Report {
        if let f = q.from, let t = q.to, f >= t { throw ReportError("--from must be before --to") }
        let clock = ContinuousClock()
        let started = clock.now
        let index = try RollupFileIndex(dir: q.dir)
        let choice = try WindowChoice.choose(index, q)
        let w = choice.window
        let extent = w.extent(from: q.from, to: q.to)
        // The span: as asked, else the chosen size's files (else, for files without names, the rows).
        var from = q.from ?? extent?.start
        var to = q.to ?? extent?.end
        let compare = q.comparePrevious
        var readFrom = from
        var shift: Int64 = 0
        if compare, let f = from, let t = to { shift = t - f; readFrom = f - shift }

        var reader = RollupRecordReader()
        let label = reader.strings.intern(w.label)
        let groupings = ([q.by] + extra).map { ReportGrouping($0, windowMillis: w.millis, strings: &reader.strings) }
        let tagNames = q.filter.tags.map { reader.strings.intern($0.name) }
        let scan = ReportScan(label: label, readFrom: readFrom, from: from, to: to, shift: shift, groupings: groupings,
                              filter: q.filter, tagNames: tagNames, keepRows: keepRows)
        let files = w.files(from: readFrom, to: to).map(\.path) + index.unplaced
        for path in files {
            do {
                try reader.read(file: path, scan.add)
            } catch {
                throw ReportError("\(error)")
            }
        }
        let seenStart = scan.seenStart, seenEnd = scan.seenEnd, used = scan.used, rows = scan.rows
        if from == nil { from = seenStart == Int64.max ? 0 : seenStart }
        if to == nil { to = seenEnd == Int64.min ? from! : seenEnd }
        let tables = groupings.enumerated().map { i, g in
            g.table(reader.strings, compare: compare, top: i == 0 ? q.top : nil)
        }
        var report = Report(query: q, window: w.label, windowMillis: w.millis, windowReason: choice.reason, from: from!, to: to!,
                            previousFrom: compare ? from! - (to! - from!) : nil, generatedAt: now, main: tables[0])
        for (i, dims) in extra.enumerated() { report.extra[Report.key(dims)] = tables[i + 1] }
        report.rows = rows
        report.tagsSeen = scan.tagsSeen.map { reader.strings[$0] }.sorted()
        if seenStart != Int64.max { report.dataStart = seenStart; report.dataEnd = seenEnd }
        report.filesRead = files.count
        report.rowsRead = reader.rows
        report.rowsUsed = used
        let d = clock.now - started
        report.readNanos = UInt64(d.components.seconds) * 1_000_000_000 + UInt64(d.components.attoseconds / 1_000_000_000)
        return report
    }
}
