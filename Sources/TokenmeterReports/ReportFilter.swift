import TokenmeterCore

/// `--owner`, `--workflow`, `--model`, `--tag k=v`: globs (`*` any run, `?` one character, see `Glob`).
/// Several globs for one field match when any does; different fields must all match.
/// Outcome rows have no model: a `--model` filter leaves them out (and so their outcomes).
public struct ReportFilter: Sendable {
    public var workflows: [Glob] = []
    public var owners: [Glob] = []
    public var models: [Glob] = []
    public var providers: [Glob] = []
    /// Tag name and value glob; a row without the tag has the empty value (so `*` matches it).
    public var tags: [(name: String, value: Glob)] = []

    public init() {}

    public var isEmpty: Bool { workflows.isEmpty && owners.isEmpty && models.isEmpty && providers.isEmpty && tags.isEmpty }

    /// Globs from repeated options, each possibly a comma-separated list.
    public static func globs(_ values: [String]) -> [Glob] {
        values.flatMap { $0.split(separator: ",") }.map { Glob(String($0).trimmingSpaces) }
    }

    /// `environment=prod*`.
    public static func tag(_ text: String) throws(ReportError) -> (name: String, value: Glob) {
        guard let eq = text.firstIndex(of: "="), eq != text.startIndex else {
            throw ReportError("--tag wants NAME=GLOB, got '\(text)'")
        }
        return (String(text[..<eq]), Glob(String(text[text.index(after: eq)...])))
    }

    /// A human summary for report headers: `owner=legal workflow=contract-*`.
    public var summary: String {
        var parts: [String] = []
        if !workflows.isEmpty { parts.append("workflow=" + workflows.map(\.pattern).joined(separator: "|")) }
        if !owners.isEmpty { parts.append("owner=" + owners.map(\.pattern).joined(separator: "|")) }
        if !models.isEmpty { parts.append("model=" + models.map(\.pattern).joined(separator: "|")) }
        if !providers.isEmpty { parts.append("provider=" + providers.map(\.pattern).joined(separator: "|")) }
        for t in tags { parts.append("tag:\(t.name)=\(t.value.pattern)") }
        return parts.joined(separator: " ")
    }
}
