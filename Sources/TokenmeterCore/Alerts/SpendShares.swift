/// Spend per name id (model or workflow) inside one spike window, for the "top models / top workflows" of
/// a spike alert. Added to on every priced event, read only when an alert is built.
///
/// Why not a dictionary: a window usually holds one to a few ids, and a spike rule's window rolls over
/// every few minutes per key, so a flat scan beats hashing and clearing a dictionary. Past
/// `indexedFrom` ids (an owner-level rule over many workflows) an id index keeps the add O(1).
struct SpendShares: Equatable {
    static let indexedFrom = 16

    private(set) var ids: [UInt32] = []
    private(set) var amounts: [Money] = []
    /// Built once `ids` outgrows a scan.
    private var index: IdIndex? = nil

    init() {}

    init(_ d: [UInt32: Money]) {
        for (id, m) in d.sorted(by: { $0.key < $1.key }) { add(id, m) }
    }

    var isEmpty: Bool { ids.isEmpty }

    @inline(__always)
    mutating func add(_ id: UInt32, _ cost: Money) {
        if index == nil {
            for i in ids.indices where ids[i] == id { amounts[i] += cost; return }
        } else if let i = index![id] {
            amounts[i] += cost
            return
        }
        ids.append(id)
        amounts.append(cost)
        if index != nil {
            index![id] = ids.count - 1
        } else if ids.count > SpendShares.indexedFrom {
            var x = IdIndex()
            for (i, k) in ids.enumerated() { x[k] = i }
            index = x
        }
    }

    /// Empties for the next window, keeping the arrays' capacity.
    mutating func removeAll() {
        if ids.isEmpty { return }
        ids.removeAll(keepingCapacity: true)
        amounts.removeAll(keepingCapacity: true)
        index = nil
    }

    var dictionary: [UInt32: Money] {
        var d: [UInt32: Money] = [:]
        d.reserveCapacity(ids.count)
        for (i, id) in ids.enumerated() { d[id] = amounts[i] }
        return d
    }

    static func == (a: SpendShares, b: SpendShares) -> Bool { a.dictionary == b.dictionary }
}
