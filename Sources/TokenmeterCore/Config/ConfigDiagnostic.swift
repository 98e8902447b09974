/// One configuration problem, printed as `FILE:LINE:COL: error: MESSAGE` (the format compilers use, so
/// editors and CI annotate the line). Columns count Unicode scalars from 1 (see `TOMLPosition`).
/// A warning (`FILE:LINE:COL: warning: MESSAGE`) is printed but does not make the configuration invalid.
public struct ConfigDiagnostic: Sendable, Equatable, CustomStringConvertible {
    public enum Severity: String, Sendable { case error, warning }

    public var file: String
    public var line: Int
    public var column: Int
    public var message: String
    public var severity: Severity

    public init(file: String, line: Int, column: Int, message: String, severity: Severity = .error) {
        self.file = file; self.line = line; self.column = column; self.message = message; self.severity = severity
    }

    public var description: String { "\(file):\(line):\(column): \(severity.rawValue): \(message)" }
}

/// Every problem found in a configuration, in file order.
public struct ConfigErrors: Error, Sendable, Equatable, CustomStringConvertible {
    public var diagnostics: [ConfigDiagnostic]

    public init(_ diagnostics: [ConfigDiagnostic]) { self.diagnostics = diagnostics }

    /// One diagnostic per line.
    public var description: String { diagnostics.map(\.description).joined(separator: "\n") }
}

/// Edit distance and "did you mean" suggestions for misspelt keys and values.
package enum Suggest {
    /// Optimal string alignment distance (Levenshtein plus adjacent transpositions), case-insensitive, with
    /// `-` and `_` treated alike.
    package static func distance(_ a: String, _ b: String) -> Int {
        func norm(_ s: String) -> [Character] { s.lowercased().map { $0 == "-" ? "_" : $0 } }
        let x = norm(a), y = norm(b)
        if x.isEmpty { return y.count }
        if y.isEmpty { return x.count }
        var d = Array(repeating: Array(repeating: 0, count: y.count + 1), count: x.count + 1)
        for i in 0...x.count { d[i][0] = i }
        for j in 0...y.count { d[0][j] = j }
        for i in 1...x.count {
            for j in 1...y.count {
                let cost = x[i - 1] == y[j - 1] ? 0 : 1
                d[i][j] = Swift.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
                if i > 1 && j > 1 && x[i - 1] == y[j - 2] && x[i - 2] == y[j - 1] {
                    d[i][j] = Swift.min(d[i][j], d[i - 2][j - 2] + 1)
                }
            }
        }
        return d[x.count][y.count]
    }

    /// The one candidate close to `word` (distance at most 1 for short words, 2 from 5 characters, 3 from 9),
    /// or a candidate that `word` is a plural, prefix or suffix of. Nil when none is, or when several are
    /// equally close.
    package static func closest(_ word: String, in candidates: [String]) -> String? {
        let limit = word.count >= 9 ? 3 : word.count >= 5 ? 2 : 1
        var best: [String] = []
        var bestDistance = Int.max
        for c in candidates {
            var dist = distance(word, c)
            let lw = word.lowercased(), lc = c.lowercased()
            if dist > limit && lc.count >= 3 && (lw.hasPrefix(lc) || lw.hasSuffix(lc)) { dist = limit }
            guard dist <= limit else { continue }
            if dist < bestDistance { best = [c]; bestDistance = dist } else if dist == bestDistance { best.append(c) }
        }
        return best.count == 1 ? best[0] : nil
    }
}
