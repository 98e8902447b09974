/// Writes closed windows as rollup files (contract section 3):
/// `<dir>/<window>/<YYYY-MM-DD>/<window start>-<writer><suffix>.jsonl`, one immutable file per closed
/// window per writer, atomically and durably (`DurableFile`). The suffix keeps files that add to a window
/// after its first file apart: `-late-<watermark>` for late rows, `-late-idle-o<offset>` for late rows
/// flushed by the idle close, `-part-<offset>` for rows handed over on a rebalance. The same input always produces the same names, so a replay after a crash rewrites the
/// same files with the same content.
public struct RollupFileWriter: Sendable {
    public let dir: String
    public let windows: [DurationSpec]
    private let encoder = RollupEncoder()

    public init(dir: String, windows: [DurationSpec]) {
        self.dir = dir
        self.windows = windows
    }

    public func relativePath(_ w: ClosedWindow, writer: String) -> String {
        let label = windows[w.sizeIndex].label
        var name = RFC3339.compact(w.start) + "-" + writer
        switch w.kind {
        case .final: break
        case .late(let stamp): name += "-late-" + RollupFileWriter.stamp(stamp)
        case .lateIdle(let offset): name += "-late-idle-o\(offset)"
        case .partial(let offset): name += "-part-o\(offset)"
        case .latePartial(let offset): name += "-late-part-o\(offset)"
        }
        return label + "/" + RFC3339.day(w.start) + "/" + name + ".jsonl"
    }

    /// Writes one file durably; returns its path.
    @discardableResult
    public func write(_ w: ClosedWindow, writer: String, dimensions: Dimensions) throws(FileError) -> String {
        let batch = DurableBatch()
        var buffer: [UInt8] = []
        let path = try stage(w, writer: writer, dimensions: dimensions, in: batch, buffer: &buffer)
        try batch.commit()
        return path
    }

    /// Encodes the window into `buffer` (reused between files) and stages its file in `batch`.
    @discardableResult
    public func stage(_ w: ClosedWindow, writer: String, dimensions: Dimensions, in batch: DurableBatch,
                      buffer: inout [UInt8]) throws(FileError) -> String {
        let path = dir + "/" + relativePath(w, writer: writer)
        let size = windows[w.sizeIndex]
        buffer.removeAll(keepingCapacity: true)
        encoder.encode(w, label: size.label, size: size.millis, dimensions: dimensions, into: &buffer)
        try batch.stage(buffer, to: path)
        return path
    }

    /// `20261129T120000.500Z`: millisecond precision, since two late flushes can fall in one second.
    static func stamp(_ ms: EpochMillis) -> String {
        let c = RFC3339.compact(ms)
        let frac = Int(ms - floorDiv(ms, 1000) * 1000)
        guard frac != 0 else { return c }
        let f = String(frac)
        return String(c.dropLast()) + "." + String(repeating: "0", count: 3 - f.count) + f + "Z"
    }
}
