/// A map from an interned id (a small dense integer handed out by `StringTable`) to a slot number, kept as
/// a plain array indexed by the id: a per-event lookup is an array read, not a hash of the id.
/// Ids are dense, so the array is about as long as the name table (4 bytes a name).
struct IdIndex: Sendable {
    private var slots: [Int32] = []

    @inline(__always)
    subscript(id: UInt32) -> Int? {
        get {
            let i = Int(id)
            guard i < slots.count else { return nil }
            let s = slots[i]
            return s < 0 ? nil : Int(s)
        }
        set {
            let i = Int(id)
            if i >= slots.count {
                guard newValue != nil else { return }
                slots.append(contentsOf: repeatElement(-1, count: i + 1 - slots.count))
            }
            slots[i] = newValue.map { Int32($0) } ?? -1
        }
    }

    mutating func removeAll() { slots.removeAll() }
}

/// A map from a pair of interned ids to a slot number: the first id indexes an array, and the (rare)
/// several second ids under one first id are chained. For (model, provider) and (workflow, owner),
/// where one first id nearly always comes with one second id.
struct IdPairIndex: Sendable {
    private struct Link: Sendable {
        var second: UInt32
        var value: Int32
        var next: Int32
    }
    private var heads = IdIndex()
    private var links: [Link] = []

    @inline(__always)
    func find(_ first: UInt32, _ second: UInt32) -> Int? {
        guard var l = heads[first] else { return nil }
        while true {
            if links[l].second == second { return Int(links[l].value) }
            let n = links[l].next
            if n < 0 { return nil }
            l = Int(n)
        }
    }

    mutating func insert(_ first: UInt32, _ second: UInt32, value: Int) {
        links.append(Link(second: second, value: Int32(value), next: Int32(heads[first] ?? -1)))
        heads[first] = links.count - 1
    }

    mutating func removeAll() { heads.removeAll(); links.removeAll() }
}
