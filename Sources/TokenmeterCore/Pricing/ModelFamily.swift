/// Model families (`report --by model_family`, the `model_family` label of the spend metrics): a model name without its trailing date snapshot, so that an alias
/// and its dated snapshots (`gpt-4o-mini`, `gpt-4o-mini-2024-07-18`) read as one.
public enum ModelFamily {
    /// `name` without a trailing `-YYYYMMDD` or `-YYYY-MM-DD` (a year 2000-2999); otherwise `name`.
    public static func of(_ name: String) -> String {
        let b = Array(name.utf8)
        func digits(_ r: Range<Int>) -> Bool { r.allSatisfy { b[$0] >= 48 && b[$0] <= 57 } }
        let n = b.count
        // -YYYYMMDD
        if n > 9, b[n - 9] == 45, b[n - 8] == 50, digits((n - 8)..<n) {
            return String(decoding: b[..<(n - 9)], as: UTF8.self)
        }
        // -YYYY-MM-DD
        if n > 11, b[n - 11] == 45, b[n - 10] == 50, digits((n - 10)..<(n - 6)), b[n - 6] == 45, digits((n - 5)..<(n - 3)),
           b[n - 3] == 45, digits((n - 2)..<n) {
            return String(decoding: b[..<(n - 11)], as: UTF8.self)
        }
        return name
    }
}
