import TokenmeterCore

/// The per-row work of a report: window and span check, filters by id, then every grouping. A class so
/// the reader's callback can update it without capturing mutable locals.
final class ReportScan {
    let label: UInt32
    let readFrom: EpochMillis?
    let from: EpochMillis?
    let to: EpochMillis?
    let shift: Int64
    let groupings: [ReportGrouping]
    let workflows: IdMatcher, owners: IdMatcher, models: IdMatcher, providers: IdMatcher
    let tagNames: [UInt32]
    let tagValues: [IdMatcher]
    let keepRows: Bool
    var rows: [RollupRow] = []
    var used = 0
    var seenStart = Int64.max
    var seenEnd = Int64.min
    /// The tag names the rows of the span carry (before filters): a report can say which tags exist when
    /// asked for one that does not.
    var tagsSeen: Set<UInt32> = []

    init(label: UInt32, readFrom: EpochMillis?, from: EpochMillis?, to: EpochMillis?, shift: Int64, groupings: [ReportGrouping],
         filter: ReportFilter, tagNames: [UInt32], keepRows: Bool) {
        self.label = label; self.readFrom = readFrom; self.from = from; self.to = to; self.shift = shift
        self.groupings = groupings; self.keepRows = keepRows; self.tagNames = tagNames
        workflows = IdMatcher(filter.workflows); owners = IdMatcher(filter.owners)
        models = IdMatcher(filter.models); providers = IdMatcher(filter.providers)
        tagValues = filter.tags.map { IdMatcher([$0.value]) }
    }

    func add(_ r: RollupRecord, _ strings: StringTable) {
        guard r.window == label else { return }
        if let lo = readFrom, r.windowStart < lo { return }
        if let hi = to, r.windowEnd > hi { return }
        for t in r.tags where !tagsSeen.contains(t.name) { tagsSeen.insert(t.name) }
        if !workflows.globs.isEmpty && !workflows.matches(r.workflow, strings) { return }
        if !owners.globs.isEmpty && !owners.matches(r.owner, strings) { return }
        if !models.globs.isEmpty && !models.matches(r.model, strings) { return }
        if !providers.globs.isEmpty && !providers.matches(r.provider, strings) { return }
        for i in tagNames.indices {
            let v = r.tag(tagNames[i])
            if v == RollupRecord.none {
                if !tagValues[i].globs[0].matches("") { return }
            } else if !tagValues[i].matches(v, strings) { return }
        }
        let previous = from.map { r.windowStart < $0 } ?? false
        for g in groupings { g.add(r, previous: previous, shift: shift, strings: strings) }
        used += 1
        if !previous {
            if r.windowStart < seenStart { seenStart = r.windowStart }
            if r.windowEnd > seenEnd { seenEnd = r.windowEnd }
        }
        if keepRows { rows.append(r.row(strings)) }
    }
}
