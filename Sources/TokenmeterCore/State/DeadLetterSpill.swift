#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Dead letters the dead-letter topic cannot take: larger than the producer's `message.max.bytes` (the
/// Kafka default is 1,000,000 bytes, the decoder reads messages up to 1 MiB and Kafka delivers larger ones),
/// or refused or not delivered for any other reason. They are kept, unchanged, in a local file instead of
/// being lost without a trace: `<state.dir>/dead-letters/spill`.
///
/// Each record is one header line, then the key and the value exactly as consumed, then a newline:
///
///     tmspill1 <topic> <partition> <offset> <key bytes, -1 for none> <value bytes> <reason>\n<key><value>\n
///
/// The file is bounded: when a record would take it past `maxFileBytes` (64 MiB), it becomes `spill.1` (replacing
/// the previous `spill.1`, so the oldest records are dropped first) and a new `spill` starts; a single
/// record larger than `maxFileBytes` is not kept at all, only counted and logged. Both files together
/// never exceed twice `maxFileBytes`.
///
/// Every record is fsynced before `append` returns: the checkpoint that follows commits the message's
/// offset, and a crash must not lose both the Kafka copy and this one. Used by the polling thread only.
public final class DeadLetterSpill {
    public static let defaultMaxFileBytes: Int64 = 64 << 20
    public let maxFileBytes: Int64
    /// The reason on the header line keeps at most this many bytes.
    public static let maxReasonBytes = 512

    public let dir: String
    public var path: String { dir + "/spill" }
    public var previousPath: String { dir + "/spill.1" }
    public private(set) var spilled: Int64 = 0
    public private(set) var dropped: Int64 = 0
    /// Bytes in `spill` and `spill.1`.
    public var bytes: Int64 { currentBytes + previousBytes }
    private var currentBytes: Int64
    private var previousBytes: Int64

    public init(stateDir: String, maxFileBytes: Int64 = DeadLetterSpill.defaultMaxFileBytes) {
        dir = stateDir + "/dead-letters"
        self.maxFileBytes = maxFileBytes
        currentBytes = 0
        previousBytes = 0
        currentBytes = Self.size(path)
        previousBytes = Self.size(previousPath)
    }

    /// Appends one dead letter durably; returns false when it is larger than the file may ever grow (then
    /// it is only counted in `dropped`).
    public func append(topic: String, partition: Int32, offset: Int64, reason: String, key: [UInt8]?, value: [UInt8]) throws(FileError) -> Bool {
        let cleanReason = String(Alert.bounded(reason, Self.maxReasonBytes).map { $0.isNewline || $0 == "\0" ? " " : $0 })
        var record = Array("tmspill1 \(topic) \(partition) \(offset) \(key.map { String($0.count) } ?? "-1") \(value.count) \(cleanReason)\n".utf8)
        let size = Int64(record.count + (key?.count ?? 0) + value.count + 1)
        guard size <= maxFileBytes else {
            dropped += 1
            return false
        }
        try DurableFile.makeDirectories(dir)
        if currentBytes + size > maxFileBytes {
            if rename(path, previousPath) != 0 && errno != ENOENT { throw FileError(operation: "rename", path: path, errno: errno) }
            previousBytes = currentBytes
            currentBytes = 0
        }
        if let key { record += key }
        record += value
        record.append(0x0A)
        try DurableFile.appendRecord(record, to: path, length: currentBytes)
        currentBytes += size
        spilled += 1
        return true
    }

    private static func size(_ path: String) -> Int64 {
        var st = stat()
        return stat(path, &st) == 0 ? Int64(st.st_size) : 0
    }
}
