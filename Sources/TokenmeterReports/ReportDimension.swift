import TokenmeterCore

/// A `--by` key: what report rows are grouped by.
public enum ReportDimension: Sendable, Hashable, CustomStringConvertible {
    case workflow, owner, model, provider
    /// The model without a trailing date snapshot (`claude-haiku-4-5-20251001` -> `claude-haiku-4-5`).
    case modelFamily
    /// A configured tag dimension (`tag:environment`).
    case tag(String)
    /// Time series: each window of the chosen size, each UTC day, each UTC hour.
    case window, day, hour

    public static let dayMillis: Int64 = 86_400_000
    public static let hourMillis: Int64 = 3_600_000

    public static func parse(_ text: String) -> ReportDimension? {
        let t = text.trimmingSpaces
        switch t {
        case "workflow": return .workflow
        case "owner": return .owner
        case "model": return .model
        case "provider": return .provider
        case "model_family": return .modelFamily
        case "window": return .window
        case "day": return .day
        case "hour": return .hour
        default:
            if t.hasPrefix("tag:") || t.hasPrefix("tags.") {
                let name = String(t.drop { $0 != ":" && $0 != "." }.dropFirst())
                return name.isEmpty ? nil : .tag(name)
            }
            return nil
        }
    }

    /// Parses `workflow,owner,tag:environment`; throws a message naming the bad key.
    public static func parseList(_ text: String) throws(ReportError) -> [ReportDimension] {
        var out: [ReportDimension] = []
        for part in text.split(separator: ",") where !part.trimmingSpaces.isEmpty {
            guard let d = parse(String(part)) else {
                throw ReportError("unknown --by key '\(part)': use workflow, owner, model, model_family, provider, tag:NAME, window, day or hour")
            }
            if !out.contains(d) { out.append(d) }
        }
        if out.filter(\.isTime).count > 1 { throw ReportError("--by takes at most one of window, day, hour") }
        if out.filter({ !$0.isTime }).count > 8 { throw ReportError("--by takes at most 8 non-time keys") }
        return out
    }

    public var isTime: Bool {
        switch self {
        case .window, .day, .hour: true
        default: false
        }
    }

    /// The bucket size of a time dimension (nil for `window`, whose size is the chosen window's).
    public var bucketMillis: Int64? {
        switch self {
        case .day: ReportDimension.dayMillis
        case .hour: ReportDimension.hourMillis
        default: nil
        }
    }

    /// Column name in csv/json/tables.
    public var description: String {
        switch self {
        case .workflow: "workflow"
        case .owner: "owner"
        case .model: "model"
        case .provider: "provider"
        case .modelFamily: "model_family"
        case .tag(let n): "tag:" + n
        case .window: "window"
        case .day: "day"
        case .hour: "hour"
        }
    }
}

extension StringProtocol {
    var trimmingSpaces: String {
        String(drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }
}
