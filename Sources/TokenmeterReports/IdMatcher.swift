import TokenmeterCore

/// Glob matching by interned id, each id decided once: a filter over a year of rows matches each distinct
/// workflow/owner/model name once, not once per row.
final class IdMatcher {
    let globs: [Glob]
    private var cache: [UInt8] = []   // 0 unknown, 1 match, 2 no match

    init(_ globs: [Glob]) { self.globs = globs }

    @inline(__always) func matches(_ id: UInt32, _ strings: StringTable) -> Bool {
        if id == RollupRecord.none { return false }
        let i = Int(id)
        if i < cache.count, cache[i] != 0 { return cache[i] == 1 }
        if i >= cache.count { cache.append(contentsOf: repeatElement(0, count: i + 1 - cache.count + 64)) }
        let name = strings[id]
        let m = globs.contains { $0.matches(name) }
        cache[i] = m ? 1 : 2
        return m
    }
}
