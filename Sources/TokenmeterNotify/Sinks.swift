import TokenmeterCore

/// A place alerts are delivered to, and how each alert becomes one HTTP request for it.
public struct Sink: Sendable {
    public enum Kind: String, Sendable, CaseIterable {
        case alertmanager, slack, webhook
    }

    /// Letters, digits, `-` and `_`, at most 64: the name is a metric label and a token in the state file.
    public var name: String
    public var kind: Kind
    /// The URL; Slack's and most webhooks' carry a token, so it is never logged (`redactedURL` is).
    public var url: String
    /// The webhook's HMAC key (from a file); nil signs nothing.
    public var secret: [UInt8]?
    /// The whole exchange of one attempt.
    public var timeoutMillis: Int64

    public init(name: String, kind: Kind, url: String, secret: [UInt8]? = nil, timeoutMillis: Int64 = 10_000) {
        self.name = name; self.kind = kind; self.url = url; self.secret = secret; self.timeoutMillis = timeoutMillis
    }

    /// `https://hooks.slack.com/…`: scheme and host only, for logs and `--print`.
    public var redactedURL: String { Sink.redact(url) }

    public static func redact(_ url: String) -> String {
        guard let schemeEnd = url.range(of: "://") else { return "…" }
        let rest = url[schemeEnd.upperBound...]
        let hostPart = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        // user:password@host: drop the credentials.
        let host = hostPart.split(separator: "@").last.map(String.init) ?? ""
        return String(url[..<schemeEnd.upperBound]) + host + (rest.count > hostPart.count ? "/…" : "")
    }

    public static func validName(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.count <= 64 && s.utf8.allSatisfy { NotifyAlert.isIDByte($0) }
    }

    /// The request for `alert`; `now` stamps the webhook's signature.
    public func request(for alert: NotifyAlert, now: EpochMillis) -> HTTPRequest {
        switch kind {
        case .alertmanager: return Payloads.alertmanager(alert, url: url)
        case .slack: return Payloads.slack(alert, url: url)
        case .webhook: return Payloads.webhook(alert, url: url, secret: secret, now: now)
        }
    }
}

/// The bodies each sink receives (docs/notify.md shows them).
public enum Payloads {
    static let json = ("Content-Type", "application/json")

    /// `POST /api/v2/alerts` with one alert. Labels identify it for grouping, silences and inhibition:
    /// `alertname` (the type), `rule`, `severity`, the scope's `owner`/`workflow`/`model` where present,
    /// `threshold_pct` for threshold alerts (each crossing is its own alert) and `alert_id`. Annotations
    /// carry the message and the money. `startsAt` is the event time; `endsAt` the period's end, so the
    /// alert resolves by itself when its budget period is over.
    public static func alertmanager(_ a: NotifyAlert, url: String) -> HTTPRequest {
        var w = JSONTextWriter()
        w.beginArray()
        w.beginObject()
        w.key("labels")
        w.beginObject()
        w.field("alertname", a.type)
        w.field("alert_id", a.id)
        w.field("rule", a.rule)
        w.field("severity", a.severity)
        if let o = a.owner { w.field("owner", o) }
        if let wf = a.workflow { w.field("workflow", wf) }
        if let m = a.scopeModel { w.field("model", m) }
        if a.type == "budget_threshold", let t = a.thresholdPct { w.field("threshold_pct", t) }
        w.endObject()
        w.key("annotations")
        w.beginObject()
        w.field("summary", a.message)
        w.field("scope", a.scopeKey)
        if let s = a.spentUSD { w.field("spent_usd", s) }
        if let b = a.budgetUSD { w.field("budget_usd", b) }
        if let u = a.usedPct { w.field("used_pct", u) }
        if let p = a.projectedUSD { w.field("projected_usd", p) }
        if let s = a.periodStart { w.field("period_start", RFC3339.format(s)) }
        w.field("period_end", RFC3339.format(a.periodEnd))
        w.endObject()
        w.field("startsAt", RFC3339.format(a.eventTime))
        w.field("endsAt", RFC3339.format(a.periodEnd))
        w.endObject()
        w.endArray()
        var target = url
        while target.hasSuffix("/") { target.removeLast() }
        if !target.hasSuffix("/api/v2/alerts") { target += "/api/v2/alerts" }
        return HTTPRequest(url: target, headers: [json], body: Array(w.text.utf8))
    }

    /// A Slack incoming-webhook message in Block Kit: a header (severity, type, rule), the message, the
    /// money as fields, the top workflows and a context line with the period and the `alert_id`. `text`
    /// is the notification's fallback. Names are escaped for Slack's mrkdwn (`&`, `<`, `>`), and every text
    /// is cut to Slack's limits (header 150, section 3000, field 2000 characters).
    public static func slack(_ a: NotifyAlert, url: String) -> HTTPRequest {
        let icon = a.severity == "critical" ? ":rotating_light:" : a.severity == "warning" ? ":warning:" : ":information_source:"
        var w = JSONTextWriter()
        w.beginObject()
        w.field("text", cut("\(a.severity) \(a.type) \(a.rule): \(a.message)", 3000))
        w.key("blocks")
        w.beginArray()
        // Header
        w.beginObject()
        w.field("type", "header")
        w.key("text"); w.beginObject(); w.field("type", "plain_text")
        w.field("text", cut("\(icon) \(a.severity.uppercased()) \(a.type): \(a.rule)", 150))
        w.field("emoji", number: "true")
        w.endObject()
        w.endObject()
        // What crossed
        section(&w, cut(escape(a.message), 3000))
        // How much
        var fields: [String] = []
        if let s = a.spentUSD { fields.append("*Spent*\n$\(s)") }
        if let b = a.budgetUSD { fields.append("*Budget*\n$\(b)") }
        if let u = a.usedPct { fields.append("*Used*\n\(u)%") }
        if let p = a.projectedUSD { fields.append("*Projected*\n$\(p)") }
        fields.append("*Scope*\n\(escape(a.scopeKey))")
        if let t = a.thresholdPct, a.type == "budget_threshold" { fields.append("*Threshold*\n\(t)%") }
        w.beginObject()
        w.field("type", "section")
        w.key("fields"); w.beginArray()
        for f in fields.prefix(10) {
            w.beginObject(); w.field("type", "mrkdwn"); w.field("text", cut(f, 2000)); w.endObject()
        }
        w.endArray()
        w.endObject()
        if !a.topWorkflows.isEmpty {
            let lines = a.topWorkflows.prefix(5).map { "• \(escape($0.name)): $\($0.costUSD)" }
            section(&w, cut("*Top workflows*\n" + lines.joined(separator: "\n"), 3000))
        }
        // Period and identity
        let period = (a.periodStart.map { RFC3339.format($0) } ?? "?") + " – " + RFC3339.format(a.periodEnd)
        w.beginObject()
        w.field("type", "context")
        w.key("elements"); w.beginArray()
        w.beginObject(); w.field("type", "mrkdwn")
        w.field("text", cut("period \(period) · event \(RFC3339.format(a.eventTime)) · alert_id `\(a.id)`", 2000))
        w.endObject()
        w.endArray()
        w.endObject()
        w.endArray()
        w.endObject()
        return HTTPRequest(url: url, headers: [json], body: Array(w.text.utf8))
    }

    private static func section(_ w: inout JSONTextWriter, _ text: String) {
        w.beginObject()
        w.field("type", "section")
        w.key("text"); w.beginObject(); w.field("type", "mrkdwn"); w.field("text", text); w.endObject()
        w.endObject()
    }

    /// Slack's mrkdwn control characters.
    static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            default: out.append(c)
            }
        }
        return out
    }

    /// At most `limit` characters, ending in `…` when cut.
    static func cut(_ s: String, _ limit: Int) -> String {
        s.count <= limit ? s : String(s.prefix(limit - 1)) + "…"
    }

    /// The alert's JSON exactly as published. With a secret, `X-Tokenmeter-Signature: sha256=HEX` where HEX
    /// is HMAC-SHA256(secret, TIMESTAMP + "." + BODY) and TIMESTAMP is `X-Tokenmeter-Timestamp` (Unix
    /// seconds): the receiver recomputes it over the bytes it got and may refuse old timestamps (replays).
    public static func webhook(_ a: NotifyAlert, url: String, secret: [UInt8]?, now: EpochMillis) -> HTTPRequest {
        let timestamp = String(now / 1000)
        var headers = [json, ("X-Tokenmeter-Alert-Id", a.id), ("X-Tokenmeter-Timestamp", timestamp)]
        if let secret {
            let mac = HMACSHA256.mac(key: secret, message: Array(timestamp.utf8) + [UInt8(ascii: ".")] + a.raw)
            headers.append(("X-Tokenmeter-Signature", "sha256=" + HMACSHA256.hex(mac)))
        }
        return HTTPRequest(url: url, headers: headers, body: a.raw)
    }
}
