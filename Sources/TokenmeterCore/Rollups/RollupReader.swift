#if canImport(Glibc)
import Glibc
#endif

/// Reads rollup files back: every `.jsonl` file under a directory (optionally one window size), any mix
/// of final, late and partial files from any number of writers. Rows are additive: readers sum them.
public enum RollupReader {
    public struct ReadError: Error, CustomStringConvertible, Sendable {
        public var path: String
        public var line: Int
        public var reason: String
        public var description: String { "\(path):\(line): \(reason)" }
    }

    /// The rollup files under `dir` (for one window label when given), sorted by path.
    public static func files(in dir: String, window: String? = nil) -> [String] {
        var out: [String] = []
        walk(window.map { dir + "/" + $0 } ?? dir, into: &out)
        return out.sorted()
    }

    private static func walk(_ dir: String, into out: inout [String]) {
        guard let d = opendir(dir) else { return }
        defer { closedir(d) }
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name.hasPrefix(".") { continue }   // ".", "..", and temporary files being written
            let path = dir + "/" + name
            var st = stat()
            guard stat(path, &st) == 0 else { continue }
            if (st.st_mode & S_IFMT) == S_IFDIR { walk(path, into: &out) } else if name.hasSuffix(".jsonl") { out.append(path) }
        }
    }

    /// Reads every row of the files under `dir`.
    public static func read(dir: String, window: String? = nil) throws -> [RollupRow] {
        var rows: [RollupRow] = []
        for f in files(in: dir, window: window) { try read(file: f) { rows.append($0) } }
        return rows
    }

    public static func read(file: String, _ body: (RollupRow) -> Void) throws {
        guard let bytes = try DurableFile.read(file) else { return }
        var lineNo = 0
        var start = 0
        try bytes.withUnsafeBytes { all in
            while start < all.count {
                var end = start
                while end < all.count && all[end] != 0x0A { end += 1 }
                lineNo += 1
                if end > start {
                    do {
                        body(try parse(UnsafeRawBufferPointer(rebasing: all[start..<end])))
                    } catch {
                        throw ReadError(path: file, line: lineNo, reason: "\(error)")
                    }
                }
                start = end + 1
            }
        }
    }

    static func parse(_ line: UnsafeRawBufferPointer) throws -> RollupRow {
        var s = JSONScanner(line)
        var row = RollupRow()
        var scratch: [UInt8] = []
        func string(_ s: inout JSONScanner) throws -> String {
            unescaped(try s.readString(), s)
        }
        func unescaped(_ span: JSONSpan, _ s: JSONScanner) -> String {
            scratch.removeAll(keepingCapacity: true)
            s.appendUnescaped(span, to: &scratch)
            return String(decoding: scratch, as: UTF8.self)
        }
        func optionalString(_ s: inout JSONScanner) throws -> String? {
            if try s.peekKind() == .null { try s.readNull(); return nil }
            return try string(&s)
        }
        func int(_ s: inout JSONScanner) throws -> Int64 {
            let span = try s.readNumber()
            guard let v = Int64(String(decoding: s.bytes(span), as: UTF8.self)) else { throw ReadError(path: "", line: 0, reason: "not an integer") }
            return v
        }
        func money(_ s: inout JSONScanner) throws -> Money {
            let span = try s.readNumber()
            guard let v = Money.parse(String(decoding: s.bytes(span), as: UTF8.self)) else { throw ReadError(path: "", line: 0, reason: "not a number") }
            return v
        }
        func time(_ s: inout JSONScanner) throws -> EpochMillis {
            let span = try s.readString()
            guard let t = RFC3339.parse(s.bytes(span)) else { throw ReadError(path: "", line: 0, reason: "bad time") }
            return t
        }
        try s.beginObject()
        while let key = try s.nextKey() {
            switch String(decoding: s.bytes(key), as: UTF8.self) {
            case "window": row.window = try string(&s)
            case "window_start": row.windowStart = try time(&s)
            case "window_end": row.windowEnd = try time(&s)
            case "workflow": row.workflow = try string(&s)
            case "owner": row.owner = try string(&s)
            case "model": row.model = try optionalString(&s)
            case "provider": row.provider = try optionalString(&s)
            case "tags":
                try s.beginObject()
                while let k = try s.nextKey() {
                    row.tags[unescaped(k, s)] = try string(&s)
                }
            case "requests": row.counters.requests = try int(&s)
            case "errors": row.counters.errors = try int(&s)
            case "input_tokens": row.counters.input = try int(&s)
            case "cache_read_tokens": row.counters.cacheRead = try int(&s)
            case "cache_write_tokens": row.counters.cacheWrite = try int(&s)
            case "output_tokens": row.counters.output = try int(&s)
            case "reasoning_tokens": row.counters.reasoning = try int(&s)
            case "cost_usd": row.counters.cost = try money(&s)
            case "unpriced_requests": row.counters.unpricedRequests = try int(&s)
            case "outcome_value_usd": row.counters.outcomeValue = try money(&s)
            case "outcomes":
                try s.beginObject()
                while let k = try s.nextKey() {
                    row.outcomes[unescaped(k, s), default: 0] += try int(&s)
                }
            case "late": row.late = try s.readBool()
            default: try s.skipValue()
            }
        }
        try s.finish()
        return row
    }
}
