/// A 64-bit hash that is the same in every process, on every machine and in every Swift version: FNV-1a
/// over bytes, then the SplitMix64 finaliser for avalanche. Swift's `Hasher` is seeded per process and
/// must never be used for anything persisted or published (alert ids are both).
public struct StableHash: Sendable {
    public private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    public init() {}

    public mutating func add<S: Sequence>(bytes: S) where S.Element == UInt8 {
        for b in bytes { value = (value ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
    }

    /// A field: its UTF-8 bytes and then a 0x1F separator, so ("ab","c") and ("a","bc") differ.
    public mutating func add(_ field: String) {
        add(bytes: field.utf8)
        add(bytes: CollectionOfOne(0x1F))
    }

    public var finalized: UInt64 {
        var z = value &+ 0x9e37_79b9_7f4a_7c15
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }

    /// 16 lowercase hex digits of the finalised hash.
    public var hex: String {
        let v = finalized
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8](repeating: 0, count: 16)
        for i in 0..<16 { out[i] = digits[Int((v >> UInt64(60 - 4 * i)) & 0xF)] }
        return String(decoding: out, as: UTF8.self)
    }

    public static func hex(_ fields: [String]) -> String {
        var h = StableHash()
        for f in fields { h.add(f) }
        return h.hex
    }
}
