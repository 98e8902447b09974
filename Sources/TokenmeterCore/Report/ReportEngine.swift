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
        let workflows = IdMatcher(q.filter.workflows), owners = IdMatcher(q.filter.owners)
        let models = IdMatcher(q.filter.models), providers = IdMatcher(q.filter.providers)
        let tagValues = q.filter.tags.map { IdMatcher([$0.value]) }
        var rows: [RollupRow] = []
        var used = 0
        var seenStart = Int64.max, seenEnd = Int64.min
        let files = w.files(from: readFrom, to: to).map(\.path) + index.unplaced
        do {
            for path in files {
                try reader.read(file: path) { r, strings in
                    guard r.window == label else { return }
                    if let lo = readFrom, r.windowStart < lo { return }
                    if let hi = to, r.windowEnd > hi { return }
                    if !workflows.globs.isEmpty && !workflows.matches(r.workflow, strings) { return }
                    if !owners.globs.isEmpty && !owners.matches(r.owner, strings) { return }
                    if !models.globs.isEmpty && !models.matches(r.model, strings) { return }
                    if !providers.globs.isEmpty && !providers.matches(r.provider, strings) { return }
                    for (i, name) in tagNames.enumerated() {
                        let v = r.tag(name)
                        if v == RollupRecord.none {
                            if !tagValues[i].globs[0].matches("") { return }
                        } else if !tagValues[i].matches(v, strings) { return }
                    }
                    let previous = from.map { r.windowStart < $0 } ?? false
                    for g in groupings { g.add(r, previous: previous, shift: shift) }
                    used += 1
                    if !previous { seenStart = min(seenStart, r.windowStart); seenEnd = max(seenEnd, r.windowEnd) }
                    if keepRows { rows.append(r.row(strings)) }
                }
            }
        } catch let e as RollupReader.ReadError {
            throw ReportError("\(e)")
        } catch {
            throw ReportError("\(error)")
        }
        if from == nil { from = seenStart == Int64.max ? 0 : seenStart }
        if to == nil { to = seenEnd == Int64.min ? from! : seenEnd }
        let tables = groupings.enumerated().map { i, g in
            g.table(reader.strings, compare: compare, top: i == 0 ? q.top : nil)
        }
        var report = Report(query: q, window: w.label, windowMillis: w.millis, windowReason: choice.reason, from: from!, to: to!,
                            previousFrom: compare ? from! - (to! - from!) : nil, generatedAt: now, main: tables[0])
        for (i, dims) in extra.enumerated() { report.extra[Report.key(dims)] = tables[i + 1] }
        report.rows = rows
        report.filesRead = files.count
        report.rowsRead = reader.rows
        report.rowsUsed = used
        let d = clock.now - started
        report.readNanos = UInt64(d.components.seconds) * 1_000_000_000 + UInt64(d.components.attoseconds / 1_000_000_000)
        return report
    }
}
