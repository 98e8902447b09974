import TokenmeterCore

/// Which window size a report reads. Rows of different sizes describe the same events, so a report reads
/// exactly one size and never adds them up.
///
/// `--window W` reads W. Without it, the rule is: **the largest window size whose files cover the span
/// exactly**, where a size W qualifies when
/// 1. `--from` and `--to` (when given) fall on W's boundaries, so no window straddles an edge;
/// 2. the `--by` time buckets divide into it (`hour` needs W <= 1h dividing an hour, `day` W dividing a day);
/// 3. its files reach as far as the data of every other qualifying size within the span (and the previous
///    span with `--compare previous`): no other size has a window wholly before W's first file or wholly
///    after W's last. A day whose `1d` file is not written yet (the day is still open) while `1h` files
///    for it exist makes `1d` fall short, so the report drops to `1h` instead of silently missing today.
/// If no size qualifies on (3), the size whose files cover the longest stretch is used (ties: the larger),
/// and the reason says so. The reason is printed with every report.
public enum WindowChoice {
    public struct Choice {
        public var window: RollupFileIndex.Window
        public var reason: String
    }

    public static func choose(_ index: RollupFileIndex, _ q: ReportQuery) throws(ReportError) -> Choice {
        guard !index.windows.isEmpty else { throw ReportError("no window folders (like 1h/ or 1d/) under \(q.dir)") }
        let available = index.windows.map(\.label).joined(separator: ", ")
        func fitsBuckets(_ w: RollupFileIndex.Window) -> Bool {
            q.by.allSatisfy { d in d.bucketMillis.map { $0 % w.millis == 0 } ?? true }
        }
        if let label = q.window {
            guard let w = index.window(label) else { throw ReportError("no \(label) rollups under \(q.dir) (found: \(available))") }
            guard fitsBuckets(w) else {
                throw ReportError("--by \(q.by.first { $0.isTime }!) needs windows that divide it; \(label) does not")
            }
            return Choice(window: w, reason: "\(label), as asked with --window")
        }
        func aligned(_ w: RollupFileIndex.Window) -> Bool {
            (q.from.map { $0 % w.millis == 0 } ?? true) && (q.to.map { $0 % w.millis == 0 } ?? true)
        }
        var candidates = index.windows.filter { fitsBuckets($0) && aligned($0) }
        var note = ""
        if candidates.isEmpty {
            candidates = index.windows.filter(fitsBuckets)
            note = "; --from/--to are not on any size's boundaries, so windows crossing them are left out"
        }
        guard !candidates.isEmpty else { throw ReportError("no window size fits --by \(q.by.map(\.description).joined(separator: ",")) (found: \(available))") }
        var lo = q.from
        if q.comparePrevious, let f = q.from, let t = q.to { lo = f - (t - f) }
        if candidates.count == 1 {
            let w = candidates[0]
            let why = index.windows.count == 1 ? "the only window size in the folder"
                : "the only window size that fits the span's boundaries and the --by time buckets"
            return Choice(window: w, reason: "\(w.label): \(why)\(note)")
        }
        // Only sizes that fit are compared: a size whose windows cross --from/--to says nothing about the span.
        let extents = candidates.compactMap { w in w.extent(from: lo, to: q.to).map { (w: w, start: $0.start, end: $0.end) } }
        guard let dataStart = extents.map(\.start).min(), let dataEnd = extents.map(\.end).max() else {
            let w = candidates.last!
            return Choice(window: w, reason: "\(w.label): no rollup files in the span, so the largest fitting size\(note)")
        }
        // W misses data that another size V has when V's first window lies wholly before W's first, or V's
        // last window wholly after W's last (a partial overlap is not proof of anything missing).
        func covers(_ e: (w: RollupFileIndex.Window, start: EpochMillis, end: EpochMillis)) -> Bool {
            extents.allSatisfy { v in v.start + v.w.millis > e.start && v.end - v.w.millis < e.end }
        }
        var best: (w: RollupFileIndex.Window, covered: Int64)?
        for e in extents.reversed() {
            if covers(e) {
                // Finer windows for charts: the largest covering size with enough windows in the span.
                if let m = q.minBuckets {
                    let span = (q.to ?? dataEnd) - (q.from ?? dataStart)
                    if span / e.w.millis < Int64(m),
                       let finer = extents.reversed().first(where: { $0.w.millis < e.w.millis && covers($0) && span / $0.w.millis >= Int64(m) }) {
                        return Choice(window: finer.w, reason: "\(finer.w.label): the largest window size whose files cover the span "
                                      + "with at least \(m) windows for the charts\(note)")
                    }
                }
                return Choice(window: e.w, reason: "\(e.w.label): the largest window size whose files cover the span\(note)")
            }
            let covered = min(e.end, dataEnd) - max(e.start, dataStart)
            if best == nil || covered > best!.covered { best = (e.w, covered) }
        }
        let w = best?.w ?? candidates.last!
        return Choice(window: w, reason: "\(w.label): no window size has files for all of the span's data "
            + "(\(RFC3339.format(dataStart)) to \(RFC3339.format(dataEnd))); \(w.label) covers the most\(note)")
    }
}
