/// Spend per name id (model or workflow) inside one spike window, for the "top models / top workflows" of
/// a spike alert. Added to on every priced event, read only when an alert is built.
///
/// Why not a dictionary: a window usually holds one to a few ids, and a spike rule's window rolls over
/// every few minutes per key, so a flat scan beats hashing, and clearing is setting a count to zero.
/// Past `indexedFrom` ids (an owner-level rule over many workflows) an id index keeps the add O(1).
struct SpendShares: Equatable {
    static let indexedFrom = 16

    /// The first `count` entries are live; the rest is capacity kept from earlier windows.
    private var ids: [UInt32] = []
    private var amounts: [Money] = []
    private(set) var count = 0
    /// Built once the live entries outgrow a scan.
    private var index: IdIndex? = nil

    init() {}

    init(_ d: [UInt32: Money]) {
        for (id, m) in d.sorted(by: { $0.key < $1.key }) { add(id, m) }
    }

    var isEmpty: Bool { count == 0 }

    @inline(__always)
    mutating func add(_ id: UInt32, _ cost: Money) {
        if index == nil {
            for i in 0..<count where ids[i] == id { amounts[i] += cost; return }
        } else if let i = index![id] {
            amounts[i] += cost
            return
        }
        if count < ids.count {
            ids[count] = id
            amounts[count] = cost
        } else {
            ids.append(id)
            amounts.append(cost)
        }
        count += 1
        if index != nil {
            index![id] = count - 1
        } else if count > SpendShares.indexedFrom {
            var x = IdIndex()
            for i in 0..<count { x[ids[i]] = i }
            index = x
        }
    }

    /// Empties for the next window, keeping the storage.
    @inline(__always)
    mutating func removeAll() {
        count = 0
        if index != nil { index = nil }
    }

    var dictionary: [UInt32: Money] {
        var d: [UInt32: Money] = [:]
        d.reserveCapacity(count)
        for i in 0..<count { d[ids[i]] = amounts[i] }
        return d
    }

    static func == (a: SpendShares, b: SpendShares) -> Bool { a.dictionary == b.dictionary }
}
