import TokenmeterCore

/// One alert read back from the alerts topic: the fields routing and the sinks use, plus the value's bytes
/// as published (the webhook sends them unchanged).
///
/// The reader is lenient about fields it does not need (a newer daemon may add some) and strict about the
/// ones it does: `alert_id` (it keys de-duplication and the state file), `type`, `severity`, `rule`,
/// `period_end` (it bounds how long the id is remembered) and `event_time`.
public struct NotifyAlert: Sendable, Equatable {
    public var id: String
    public var type: String
    public var severity: String
    public var rule: String
    /// The scope's keys and values in published order (`owner`, `workflow`, `model`).
    public var scope: [(String, String)]
    public var periodStart: EpochMillis?
    public var periodEnd: EpochMillis
    public var eventTime: EpochMillis
    /// Exact decimal texts as published; nil where the alert has `null`.
    public var thresholdPct: String?
    public var budgetUSD: String?
    public var spentUSD: String?
    public var usedPct: String?
    public var projectedUSD: String?
    public var topWorkflows: [(name: String, costUSD: String)]
    public var message: String
    /// `model`, `workflow`, `owner` of unpriced and unrecognized-usage alerts (not in their scope).
    public var model: String?
    public var callerWorkflow: String?
    public var callerOwner: String?
    /// The value as published.
    public var raw: [UInt8]

    public static func == (a: NotifyAlert, b: NotifyAlert) -> Bool { a.raw == b.raw }

    /// The largest value accepted: the daemon's alerts stay far below it (names and message are bounded).
    public static let maxBytes = 256 * 1024
    /// An `alert_id` is 16 hex digits today; anything up to 64 letters, digits, `-` or `_` is kept, so the
    /// state file's lines stay one token each.
    public static let maxIDBytes = 64

    public struct Invalid: Error, Sendable, Equatable, CustomStringConvertible {
        public var reason: String
        public var description: String { reason }
    }

    public static func parse(_ bytes: [UInt8]) throws(Invalid) -> NotifyAlert {
        guard bytes.count <= maxBytes else { throw Invalid(reason: "value larger than \(maxBytes) bytes") }
        let v: JSONValue
        do { v = try JSONValue.parse(bytes) } catch { throw Invalid(reason: "not JSON: \(error)") }
        guard case .object = v else { throw Invalid(reason: "not a JSON object") }
        func required(_ k: String) throws(Invalid) -> String {
            guard let s = v[k]?.string, !s.isEmpty else { throw Invalid(reason: "missing or empty \"\(k)\"") }
            return s
        }
        let id = try required("alert_id")
        guard id.utf8.count <= maxIDBytes, id.utf8.allSatisfy({ isIDByte($0) }) else {
            throw Invalid(reason: "\"alert_id\" must be at most \(maxIDBytes) letters, digits, '-' or '_'")
        }
        let type = try required("type")
        let severity = try required("severity")
        let rule = try required("rule")
        guard let periodEnd = RFC3339.parse(try required("period_end")) else { throw Invalid(reason: "\"period_end\" is not an RFC 3339 time") }
        guard let eventTime = RFC3339.parse(try required("event_time")) else { throw Invalid(reason: "\"event_time\" is not an RFC 3339 time") }
        var scope: [(String, String)] = []
        for (k, value) in v["scope"]?.objectFields ?? [] { if let s = value.string { scope.append((k, s)) } }
        var top: [(name: String, costUSD: String)] = []
        for item in v["top_workflows"]?.array ?? [] {
            if let n = item["workflow"]?.string, let c = item["cost_usd"]?.numberText { top.append((n, c)) }
        }
        return NotifyAlert(
            id: id, type: type, severity: severity, rule: rule, scope: scope,
            periodStart: v["period_start"]?.string.flatMap { RFC3339.parse($0) }, periodEnd: periodEnd, eventTime: eventTime,
            thresholdPct: v["threshold_pct"]?.numberText, budgetUSD: v["budget_usd"]?.numberText,
            spentUSD: v["spent_usd"]?.numberText, usedPct: v["used_pct"]?.numberText,
            projectedUSD: v["projected_usd"]?.numberText, topWorkflows: top, message: v["message"]?.string ?? "",
            model: v["model"]?.string, callerWorkflow: v["workflow"]?.string, callerOwner: v["owner"]?.string, raw: bytes)
    }

    static func isIDByte(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x2D || b == 0x5F
    }

    /// The owner the alert is about: its scope's `owner`, else the first caller of an unpriced model.
    public var owner: String? { scope.first { $0.0 == "owner" }?.1 ?? callerOwner }
    /// The workflow the alert is about: its scope's `workflow`, else the first caller of an unpriced model.
    public var workflow: String? { scope.first { $0.0 == "workflow" }?.1 ?? callerWorkflow }
    /// The model of an unpriced or unrecognized-usage alert (its scope `model=`).
    public var scopeModel: String? { scope.first { $0.0 == "model" }?.1 ?? model }
    /// `owner=finance-ops,workflow=invoice-*`, or `all`.
    public var scopeKey: String { scope.isEmpty ? "all" : scope.map { "\($0.0)=\($0.1)" }.joined(separator: ",") }
}
