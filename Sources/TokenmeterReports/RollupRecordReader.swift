#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import TokenmeterCore

/// The fast rollup-row parser. It reads a whole file into one reused buffer and walks its lines with
/// `JSONScanner`, without building a `String` per field: keys are matched as bytes, integers and money
/// are parsed from the bytes in place, and names (workflow, owner, model, tags, outcome names, window
/// labels) are interned into `strings`, so each distinct name becomes a `String` once per read.
///
/// Strict like the rest of tokenmeter: a malformed line is an error naming the file and line, never
/// skipped silently.
public struct RollupRecordReader {
    public var strings = StringTable()
    private var buffer: [UInt8] = []
    private var scratch: [UInt8] = []
    private var record = RollupRecord()
    /// Rows read so far.
    public private(set) var rows = 0
    /// Bytes read so far.
    public private(set) var bytes = 0

    public init() {}

    /// Calls `body` with each row of `path` (a missing file has no rows).
    public mutating func read(file path: String, _ body: (RollupRecord, StringTable) throws -> Void) throws {
        guard let count = try readWhole(path) else { return }
        var lineNo = 0
        var start = 0
        bytes += count
        let data = buffer   // shares storage; parse() mutates other fields of self
        try data.withUnsafeBytes { all in
            guard let base = all.baseAddress else { return }
            while start < count {
                let end: Int
                if let p = memchr(base + start, 0x0A, count - start) {
                    end = base.distance(to: UnsafeRawPointer(p))
                } else {
                    end = count
                }
                lineNo += 1
                if end > start {
                    do {
                        try parse(UnsafeRawBufferPointer(rebasing: all[start..<end]))
                    } catch {
                        throw RollupReader.ReadError(path: path, line: lineNo, reason: "\(error)")
                    }
                    rows += 1
                    try body(record, strings)
                }
                start = end + 1
            }
        }
    }

    /// Reads the file into `buffer` (grown, never shrunk); returns its length, nil when it does not exist.
    private mutating func readWhole(_ path: String) throws -> Int? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return nil }
            throw RollupReader.ReadError(path: path, line: 0, reason: "cannot open: \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var st = stat()
        let size = fstat(fd, &st) == 0 ? Int(st.st_size) : 0
        if buffer.count < size + 1 { buffer = [UInt8](repeating: 0, count: max(size + 1, buffer.count * 2, 1 << 16)) }
        var used = 0
        while true {
            if used == buffer.count { buffer.append(contentsOf: [UInt8](repeating: 0, count: buffer.count)) }
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + used, $0.count - used) }
            if n < 0 {
                if errno == EINTR { continue }
                throw RollupReader.ReadError(path: path, line: 0, reason: "cannot read: \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            used += n
        }
        return used
    }

    struct Bad: Error, CustomStringConvertible {
        var description: String
        init(_ d: String) { description = d }
    }

    private mutating func parse(_ line: UnsafeRawBufferPointer) throws {
        var s = JSONScanner(line)
        record.reset()
        try s.beginObject()
        while let key = try s.nextKey() {
            let k = key.escaped ? unescapedKey(key, s) : s.bytes(key)
            switch Field(k) {
            case .window: record.window = try name(&s)
            case .windowStart: record.windowStart = try time(&s)
            case .windowEnd: record.windowEnd = try time(&s)
            case .workflow: record.workflow = try name(&s)
            case .owner: record.owner = try name(&s)
            case .model: record.model = try optionalName(&s)
            case .provider: record.provider = try optionalName(&s)
            case .tags:
                try s.beginObject()
                while let k = try s.nextKey() {
                    let n = intern(k, s)
                    record.tags.append(RollupRecord.Tag(name: n, value: try name(&s)))
                }
            case .requests: record.counters.requests = try int(&s)
            case .errors: record.counters.errors = try int(&s)
            case .input: record.counters.input = try int(&s)
            case .cacheRead: record.counters.cacheRead = try int(&s)
            case .cacheWrite: record.counters.cacheWrite = try int(&s)
            case .output: record.counters.output = try int(&s)
            case .reasoning: record.counters.reasoning = try int(&s)
            case .cost: record.counters.cost = try money(&s)
            case .unpriced: record.counters.unpricedRequests = try int(&s)
            case .outcomeValue: record.counters.outcomeValue = try money(&s)
            case .outcomes:
                try s.beginObject()
                while let k = try s.nextKey() {
                    let n = intern(k, s)
                    record.counters.addOutcome(name: n, count: try int(&s), value: nil)
                }
            case .late: record.late = try s.readBool()
            case .other: try s.skipValue()
            }
        }
        try s.finish()
    }

    private func unescapedKey(_ key: JSONSpan, _ s: JSONScanner) -> UnsafeRawBufferPointer {
        // Escaped keys never occur in tokenmeter's own files; match them by their unescaped text.
        var out: [UInt8] = []
        s.appendUnescaped(key, to: &out)
        let f = Field(out.withUnsafeBytes { $0 })
        return f.bytes
    }

    @inline(__always) private mutating func intern(_ span: JSONSpan, _ s: JSONScanner) -> UInt32 {
        if !span.escaped { return strings.intern(s.bytes(span)) }
        scratch.removeAll(keepingCapacity: true)
        s.appendUnescaped(span, to: &scratch)
        return scratch.withUnsafeBytes { strings.intern($0) }
    }

    @inline(__always) private mutating func name(_ s: inout JSONScanner) throws -> UInt32 {
        intern(try s.readString(), s)
    }

    @inline(__always) private mutating func optionalName(_ s: inout JSONScanner) throws -> UInt32 {
        if try s.peekKind() == .null { try s.readNull(); return RollupRecord.none }
        return try name(&s)
    }

    @inline(__always) private func int(_ s: inout JSONScanner) throws -> Int64 {
        let span = try s.readNumber()
        let b = s.bytes(span)
        var i = 0
        var negative = false
        if b[0] == UInt8(ascii: "-") { negative = true; i = 1 }
        var v: Int64 = 0
        while i < b.count {
            let c = b[i]
            guard c >= 48 && c <= 57 else { throw Bad("not an integer") }
            let (m, o1) = v.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(Int64(c - 48))
            guard !o1, !o2 else { throw Bad("integer out of range") }
            v = a
            i += 1
        }
        return negative ? -v : v
    }

    /// `[-]digits[.digits]` with at most 15 decimals directly; anything else through `FixedDecimal`.
    @inline(__always) private func money(_ s: inout JSONScanner) throws -> Money {
        let span = try s.readNumber()
        let b = s.bytes(span)
        var i = 0
        var negative = false
        if b[0] == UInt8(ascii: "-") { negative = true; i = 1 }
        var v: Int128 = 0
        var decimals = -1
        var fast = true
        while i < b.count {
            let c = b[i]
            if c >= 48 && c <= 57 {
                v = v * 10 + Int128(c - 48)
                if decimals >= 0 { decimals += 1 }
                if v > Int128(Int64.max) || decimals > 15 { fast = false; break }
            } else if c == UInt8(ascii: ".") && decimals < 0 {
                decimals = 0
            } else {
                fast = false; break
            }
            i += 1
        }
        if fast {
            var scale = 15 - max(decimals, 0)
            while scale > 0 { v *= 10; scale -= 1 }
            return Money(femtos: negative ? -v : v)
        }
        guard let m = Money.parse(String(decoding: b, as: UTF8.self)) else { throw Bad("not a number") }
        return m
    }

    @inline(__always) private func time(_ s: inout JSONScanner) throws -> EpochMillis {
        let span = try s.readString()
        guard let t = RFC3339.parse(s.bytes(span)) else { throw Bad("bad time") }
        return t
    }

    /// The fields of a rollup row, recognised from the key's bytes without building a String.
    enum Field {
        case window, windowStart, windowEnd, workflow, owner, model, provider, tags, requests, errors, input, cacheRead
        case cacheWrite, output, reasoning, cost, unpriced, outcomes, outcomeValue, late, other

        @inline(__always) init(_ k: UnsafeRawBufferPointer) {
            @inline(__always) func eq(_ lit: StaticString) -> Bool {
                lit.utf8CodeUnitCount == k.count && memcmp(lit.utf8Start, k.baseAddress!, k.count) == 0
            }
            guard k.count > 0 else { self = .other; return }
            switch k.count {
            case 4: self = eq("tags") ? .tags : eq("late") ? .late : .other
            case 5: self = eq("owner") ? .owner : eq("model") ? .model : .other
            case 6: self = eq("window") ? .window : eq("errors") ? .errors : .other
            case 8:
                self = eq("workflow") ? .workflow : eq("provider") ? .provider : eq("requests") ? .requests
                    : eq("cost_usd") ? .cost : eq("outcomes") ? .outcomes : .other
            case 10: self = eq("window_end") ? .windowEnd : .other
            case 12: self = eq("window_start") ? .windowStart : eq("input_tokens") ? .input : .other
            case 13: self = eq("output_tokens") ? .output : .other
            case 16: self = eq("reasoning_tokens") ? .reasoning : .other
            case 17:
                self = eq("cache_read_tokens") ? .cacheRead : eq("unpriced_requests") ? .unpriced
                    : eq("outcome_value_usd") ? .outcomeValue : .other
            case 18: self = eq("cache_write_tokens") ? .cacheWrite : .other
            default: self = .other
            }
        }

        /// Canonical key bytes (static storage) for an unescaped key.
        var bytes: UnsafeRawBufferPointer {
            let s: StaticString
            switch self {
            case .window: s = "window"
            case .windowStart: s = "window_start"
            case .windowEnd: s = "window_end"
            case .workflow: s = "workflow"
            case .owner: s = "owner"
            case .model: s = "model"
            case .provider: s = "provider"
            case .tags: s = "tags"
            case .requests: s = "requests"
            case .errors: s = "errors"
            case .input: s = "input_tokens"
            case .cacheRead: s = "cache_read_tokens"
            case .cacheWrite: s = "cache_write_tokens"
            case .output: s = "output_tokens"
            case .reasoning: s = "reasoning_tokens"
            case .cost: s = "cost_usd"
            case .unpriced: s = "unpriced_requests"
            case .outcomes: s = "outcomes"
            case .outcomeValue: s = "outcome_value_usd"
            case .late: s = "late"
            case .other: s = "?"
            }
            return UnsafeRawBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount)
        }
    }
}
