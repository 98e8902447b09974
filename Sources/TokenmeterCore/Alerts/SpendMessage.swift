/// One message of the spend topic (`kafka.spend_topic`): the spend deltas one usage partition counted over the
/// offset range `(from, to]`, for the one alert shard whose partition the message is on. The message key
/// names the usage partition (`<topic>/<partition>`).
///
/// A shard applies a message only if `to` is beyond the last range it applied from that usage partition:
/// a range is re-sent whole (never re-cut) by whoever restores the changelog record it belongs to, so
/// skipping what was applied is exactly once.
public struct SpendMessage: Equatable, Sendable {
    static let magic: UInt32 = 0x5053_4D54  // "TMSP"
    static let version: UInt8 = 1

    public var from: Int64
    public var to: Int64
    /// The shard's entries (see `SpendRouter`).
    public var payload: [UInt8]

    public init(from: Int64, to: Int64, payload: [UInt8]) { self.from = from; self.to = to; self.payload = payload }

    public func encode() -> [UInt8] {
        var w = BinaryWriter()
        w.header(magic: SpendMessage.magic, version: SpendMessage.version)
        w.i64(from)
        w.i64(to)
        w.blob(payload)
        return w.bytes
    }

    public static func decode(_ bytes: [UInt8]) throws(CheckpointFormatError) -> SpendMessage {
        var r = BinaryReader(bytes)
        try r.expectHeader(magic: magic, version: version, "spend message")
        let m = SpendMessage(from: try r.i64(), to: try r.i64(), payload: try r.blob())
        guard r.remaining == 0 else { throw CheckpointFormatError(reason: "\(r.remaining) trailing bytes in a spend message") }
        return m
    }
}
