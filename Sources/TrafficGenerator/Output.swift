import Foundation

extension TrafficGenerator {
    /// Writes the next `count` events to `path` as JSON Lines (one event per line, `\n`-terminated),
    /// replacing the file, and returns what each line must do, in order.
    @discardableResult
    public mutating func write(count: Int, toFile path: String) throws -> [ExpectedEffect] {
        var effects: [ExpectedEffect] = []
        effects.reserveCapacity(count)
        try write(count: count, toFile: path) { effects.append($0) }
        return effects
    }

    /// Writes the next `count` events to `path` and adds their effects to `totals` (no per-event list kept).
    public mutating func write(count: Int, toFile path: String, into totals: inout ExpectedTotals) throws {
        try write(count: count, toFile: path) { totals.add($0) }
    }

    private mutating func write(count: Int, toFile path: String, _ sink: (ExpectedEffect) -> Void) throws {
        guard FileManager.default.createFile(atPath: path, contents: nil) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path])
        }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        var buffer = Data()
        buffer.reserveCapacity(1 << 20)
        for _ in 0..<count {
            let e = next()
            buffer.append(contentsOf: e.line.utf8)
            buffer.append(0x0A)
            sink(e.expected)
            if buffer.count >= 1 << 20 {
                try handle.write(contentsOf: buffer)
                buffer.removeAll(keepingCapacity: true)
            }
        }
        if !buffer.isEmpty { try handle.write(contentsOf: buffer) }
        try handle.synchronize()
    }
}
