/// Which window size a report reads. Rows of different sizes describe the same events, so a report reads
/// exactly one size and never adds them up.
///
/// `--window W` reads W. Without it, the rule is: **the largest window size whose files cover the span
/// exactly**, where a size W qualifies when
/// 1. `--from` and `--to` (when given) fall on W's boundaries, so no window straddles an edge;
/// 2. the `--by` time buckets divide into it (`hour` needs W <= 1h dividing an hour, `day` W dividing a day);
/// 3. its files reach from the earliest to the latest data of ANY size within the span (and the previous
///    span with `--compare previous`): a day whose `1d` file is not written yet (the day is still open)
///    makes `1d` fall short, so the report drops to `1h` instead of silently missing today.
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
        let extents = candidates.compactMap { $0.extent(from: lo, to: q.to) }
        guard let dataStart = extents.map(\.start).min(), let dataEnd = extents.map(\.end).max() else {
            let w = candidates.last!
            return Choice(window: w, reason: "\(w.label): no rollup files in the span, so the largest fitting size\(note)")
        }
        var best: (w: RollupFileIndex.Window, covered: Int64)?
        for w in candidates.reversed() {
            guard let e = w.extent(from: lo, to: q.to) else { continue }
            if e.start <= dataStart && e.end >= dataEnd {
                return Choice(window: w, reason: "\(w.label): the largest window size whose files cover the span\(note)")
            }
            let covered = min(e.end, dataEnd) - max(e.start, dataStart)
            if best == nil || covered > best!.covered { best = (w, covered) }
        }
        let w = best?.w ?? candidates.last!
        return Choice(window: w, reason: "\(w.label): no window size has files for all of the span's data "
            + "(\(RFC3339.format(dataStart)) to \(RFC3339.format(dataEnd))); \(w.label) covers the most\(note)")
    }
}
