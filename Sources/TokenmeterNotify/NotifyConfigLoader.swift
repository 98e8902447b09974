import TokenmeterCore
import TokenmeterTOML
#if canImport(Glibc)
import Glibc
#endif

/// Reads and validates notify's TOML file: every problem in one pass, each as `FILE:LINE:COL: error: …` at
/// the key or value at fault, a misspelt key or table with a "did you mean" hint. The TOML parser and the
/// diagnostics are the daemon's (TokenmeterCore); the keys are notify's own.
public enum NotifyConfigLoader {
    public static func load(path: String) -> Result<NotifyConfig, ConfigErrors> {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            return .failure(ConfigErrors([ConfigDiagnostic(file: path, line: 1, column: 1,
                                                           message: "cannot read \(path): \(String(cString: strerror(errno)))")]))
        }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue }; break }
            if n == 0 { break }
            bytes.append(contentsOf: buf[0..<n])
            if bytes.count > 4 << 20 {
                return .failure(ConfigErrors([ConfigDiagnostic(file: path, line: 1, column: 1, message: "file is larger than 4 MiB")]))
            }
        }
        return parse(bytes: bytes, file: path)
    }

    public static func parse(text: String, file: String) -> Result<NotifyConfig, ConfigErrors> {
        parse(bytes: Array(text.utf8), file: file)
    }

    public static func parse(bytes: [UInt8], file: String) -> Result<NotifyConfig, ConfigErrors> {
        let root: TOMLTable
        switch ConfigLoader.parseTOML(bytes: bytes, file: file) {
        case .success(let r): root = r
        case .failure(let e): return .failure(e)
        }
        var b = Builder(file: file)
        let c = b.build(root)
        if b.diagnostics.isEmpty { return .success(c) }
        let sorted = b.diagnostics.enumerated().sorted {
            ($0.element.line, $0.element.column, $0.offset) < ($1.element.line, $1.element.column, $1.offset)
        }.map(\.element)
        return .failure(ConfigErrors(sorted))
    }

    /// Properties notify sets itself.
    static let managedProperties: Set<String> = ["group.id", "bootstrap.servers", "enable.auto.commit", "enable.auto.offset.store"]

    private struct Builder {
        let file: String
        var diagnostics: [ConfigDiagnostic] = []
        /// Every sink name written, valid or not, so that a route naming a sink with a problem is not
        /// reported twice.
        var declaredSinks: [String] = []

        mutating func error(_ p: TOMLPosition, _ m: String) {
            diagnostics.append(ConfigDiagnostic(file: file, line: p.line, column: p.column, message: m))
        }

        /// Reports keys of `t` not in `known`, with a suggestion.
        mutating func unknown(_ t: TOMLTable, _ known: [String], in table: String) {
            for e in t.entries where !known.contains(e.key) {
                var m = table.isEmpty ? "unknown table or key `\(e.key)`" : "unknown key `\(e.key)` in [\(table)]"
                if let s = Suggest.closest(e.key, in: known) { m += "; did you mean `\(s)`?" }
                error(e.keyPosition, m)
            }
        }

        mutating func table(_ t: TOMLTable, _ key: String, _ name: String) -> TOMLTable? {
            guard let v = t[key] else { return nil }
            guard let tt = v.table, !v.isArrayOfTables else { error(v.position, "\(name) must be a table"); return nil }
            return tt
        }

        mutating func string(_ t: TOMLTable, _ key: String, _ name: String) -> String? {
            guard let v = t[key] else { return nil }
            guard let s = v.string else { error(v.position, "\(name) must be a string, not \(v.typeDescription)"); return nil }
            if s.isEmpty { error(v.position, "\(name) must not be empty"); return nil }
            return s
        }

        mutating func topic(_ t: TOMLTable, _ key: String, _ name: String) -> String? {
            guard let s = string(t, key, name) else { return nil }
            if let problem = ConfigLoader.topicProblem(s), let v = t[key] { error(v.position, "\(name): \(problem)"); return nil }
            return s
        }

        mutating func int(_ t: TOMLTable, _ key: String, _ name: String, min: Int64, max: Int64) -> Int? {
            guard let v = t[key] else { return nil }
            guard let i = v.integer else { error(v.position, "\(name) must be an integer, not \(v.typeDescription)"); return nil }
            guard i >= min && i <= max else { error(v.position, "\(name) must be between \(min) and \(max)"); return nil }
            return Int(i)
        }

        mutating func duration(_ t: TOMLTable, _ key: String, _ name: String, min: Int64 = 1) -> Int64? {
            guard let v = t[key] else { return nil }
            guard let s = v.string, let d = DurationSpec.parse(s) else {
                error(v.position, "\(name) must be a duration such as \"500ms\", \"10s\", \"5m\", \"1h\" or \"7d\"")
                return nil
            }
            guard d.millis >= min else { error(v.position, "\(name) must be at least \(min) ms"); return nil }
            return d.millis
        }

        mutating func globs(_ t: TOMLTable, _ key: String, _ name: String) -> [Glob] {
            guard let v = t[key] else { return [] }
            if let s = v.string { return [Glob(s)] }
            guard let items = v.array else { error(v.position, "\(name) must be an array of strings"); return [] }
            var out: [Glob] = []
            for i in items {
                guard let s = i.string, !s.isEmpty else { error(i.position, "\(name) must hold non-empty strings"); continue }
                out.append(Glob(s))
            }
            return out
        }

        mutating func build(_ root: TOMLTable) -> NotifyConfig {
            var c = NotifyConfig()
            unknown(root, ["kafka", "state", "delivery", "http", "sink", "route"], in: "")
            if let k = table(root, "kafka", "[kafka]") {
                unknown(k, ["brokers", "topic", "group_id", "instance", "handover_timeout", "properties"], in: "kafka")
                if let s = string(k, "brokers", "kafka.brokers") { c.brokers = s }
                if let s = topic(k, "topic", "kafka.topic") { c.topic = s }
                if let s = string(k, "group_id", "kafka.group_id") { c.groupID = s }
                if let s = string(k, "instance", "kafka.instance") {
                    if s.utf8.count > 200, let v = k["instance"] { error(v.position, "kafka.instance must be at most 200 bytes") } else { c.instance = s }
                }
                if let v = duration(k, "handover_timeout", "kafka.handover_timeout") { c.handoverTimeoutMillis = v }
                if let p = table(k, "properties", "[kafka.properties]") {
                    for e in p.entries {
                        if NotifyConfigLoader.managedProperties.contains(e.key) {
                            error(e.keyPosition, "kafka property `\(e.key)` is set by notify; remove it")
                            continue
                        }
                        switch e.value.kind {
                        case .string(let s): c.kafkaProperties.append((e.key, s))
                        case .integer(let i): c.kafkaProperties.append((e.key, String(i)))
                        case .boolean(let b): c.kafkaProperties.append((e.key, b ? "true" : "false"))
                        default: error(e.value.position, "kafka property `\(e.key)` must be a string, an integer or a boolean")
                        }
                    }
                }
            }
            if c.brokers.isEmpty {
                error(root["kafka"]?.position ?? TOMLPosition(line: 1, column: 1), "kafka.brokers is required")
            }
            if let s = table(root, "state", "[state]") {
                unknown(s, ["dir", "remember", "max_remembered"], in: "state")
                if let d = string(s, "dir", "state.dir") { c.stateDir = d }
                if let r = duration(s, "remember", "state.remember") { c.rememberMillis = r }
                if let m = int(s, "max_remembered", "state.max_remembered", min: 1, max: 10_000_000) { c.maxRememberedPerSink = m }
            }
            if let d = table(root, "delivery", "[delivery]") {
                unknown(d, ["queue_size", "max_attempts", "initial_backoff", "max_backoff", "max_retry_after", "give_up_after",
                            "timeout", "dead_letter_file", "dead_letter_topic", "dead_letter_max_bytes", "shutdown_timeout"],
                        in: "delivery")
                if let v = int(d, "queue_size", "delivery.queue_size", min: 1, max: 1_000_000) { c.queueSize = v }
                if let v = int(d, "max_attempts", "delivery.max_attempts", min: 1, max: 1000) { c.retry.maxAttempts = v }
                if let v = duration(d, "initial_backoff", "delivery.initial_backoff") { c.retry.initialBackoffMillis = v }
                if let v = duration(d, "max_backoff", "delivery.max_backoff") { c.retry.maxBackoffMillis = v }
                if let v = duration(d, "max_retry_after", "delivery.max_retry_after") { c.retry.maxRetryAfterMillis = v }
                if let v = duration(d, "give_up_after", "delivery.give_up_after") { c.retry.giveUpAfterMillis = v }
                if let v = duration(d, "timeout", "delivery.timeout", min: 100) { c.timeoutMillis = v }
                if let v = string(d, "dead_letter_file", "delivery.dead_letter_file") { c.deadLetterFile = v }
                if let v = topic(d, "dead_letter_topic", "delivery.dead_letter_topic") {
                    // Dead letters on the alerts topic would come back as alerts and be delivered again.
                    if v == c.topic, let p = d["dead_letter_topic"]?.position {
                        error(p, "delivery.dead_letter_topic must not be the alerts topic (kafka.topic)")
                    } else {
                        c.deadLetterTopic = v
                    }
                }
                if let v = int(d, "dead_letter_max_bytes", "delivery.dead_letter_max_bytes", min: 4096, max: 1 << 40) { c.deadLetterMaxBytes = v }
                if let v = duration(d, "shutdown_timeout", "delivery.shutdown_timeout") { c.shutdownTimeoutMillis = v }
                if c.retry.maxBackoffMillis < c.retry.initialBackoffMillis, let v = d["max_backoff"] {
                    error(v.position, "delivery.max_backoff must be at least delivery.initial_backoff")
                }
            }
            if let h = table(root, "http", "[http]") {
                unknown(h, ["listen"], in: "http")
                if let l = string(h, "listen", "http.listen") { c.metricsListen = l }
            }
            if let v = root["sink"] {
                if let items = v.array, v.isArrayOfTables {
                    for item in items { if let t = item.table { sink(t, item.position, into: &c) } }
                } else {
                    error(v.position, "sinks are written as [[sink]] tables")
                }
            }
            if c.sinks.isEmpty { error(root["sink"]?.position ?? TOMLPosition(line: 1, column: 1), "at least one [[sink]] is required") }
            let names = declaredSinks
            if let v = root["route"] {
                if let items = v.array, v.isArrayOfTables {
                    for item in items { if let t = item.table { route(t, item.position, sinkNames: names, into: &c) } }
                } else {
                    error(v.position, "routes are written as [[route]] tables")
                }
            } else if !c.sinks.isEmpty {
                // No routes: every alert to every sink.
                c.routes = [Route(sinks: c.sinks.map(\.name))]
            }
            return c
        }

        mutating func sink(_ t: TOMLTable, _ p: TOMLPosition, into c: inout NotifyConfig) {
            unknown(t, ["name", "type", "url", "url_file", "secret_file", "timeout"], in: "[sink]")
            guard let name = string(t, "name", "sink.name") else {
                if t["name"] == nil { error(p, "a [[sink]] needs a name") }
                return
            }
            if !Sink.validName(name) { error(t["name"]!.position, "sink.name must be 1 to 64 letters, digits, '-' or '_'") }
            if declaredSinks.contains(name) { error(t["name"]!.position, "sink \"\(name)\" is defined twice") }
            declaredSinks.append(name)
            var kind: Sink.Kind?
            if let ty = string(t, "type", "sink.type") {
                kind = Sink.Kind(rawValue: ty)
                if kind == nil {
                    var m = "sink.type must be one of \(Sink.Kind.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", "))"
                    if let s = Suggest.closest(ty, in: Sink.Kind.allCases.map(\.rawValue)) { m += "; did you mean \"\(s)\"?" }
                    error(t["type"]!.position, m)
                }
            } else if t["type"] == nil { error(p, "sink \"\(name)\" needs a type (alertmanager, slack or webhook)") }
            let url = string(t, "url", "sink.url")
            let urlFile = string(t, "url_file", "sink.url_file")
            let secretFile = string(t, "secret_file", "sink.secret_file")
            if url != nil && urlFile != nil { error(t["url_file"]!.position, "sink \"\(name)\": give url or url_file, not both") }
            if url == nil && urlFile == nil && t["url"] == nil && t["url_file"] == nil {
                error(p, "sink \"\(name)\" needs url or url_file")
            }
            if let u = url, !(u.hasPrefix("http://") || u.hasPrefix("https://")) {
                error(t["url"]!.position, "sink.url must start with http:// or https://")
            }
            if kind == .slack, url != nil {
                error(t["url"]!.position, "a Slack webhook URL carries its token: give it in url_file (or a systemd credential), not inline")
            }
            if secretFile != nil, kind != .webhook, let v = t["secret_file"] {
                error(v.position, "secret_file is for webhook sinks (it signs the body)")
            }
            let timeout = duration(t, "timeout", "sink.timeout", min: 100)
            guard let kind else { return }
            c.sinks.append(NotifyConfig.SinkConfig(name: name, kind: kind, url: url, urlFile: urlFile, secretFile: secretFile,
                                                   timeoutMillis: timeout, position: p))
        }

        mutating func route(_ t: TOMLTable, _ p: TOMLPosition, sinkNames: [String], into c: inout NotifyConfig) {
            unknown(t, ["sinks", "types", "severities", "rules", "owners", "workflows", "continue"], in: "[route]")
            var sinks: [String] = []
            if let v = t["sinks"] {
                let items = v.string.map { [TOMLValue(kind: .string($0), position: v.position)] } ?? v.array
                if let items {
                    for i in items {
                        guard let s = i.string else { error(i.position, "route.sinks must hold sink names"); continue }
                        if !sinkNames.contains(s) {
                            var m = "no sink is named \"\(s)\""
                            if let sug = Suggest.closest(s, in: sinkNames) { m += "; did you mean \"\(sug)\"?" }
                            error(i.position, m)
                        } else { sinks.append(s) }
                    }
                } else { error(v.position, "route.sinks must be an array of sink names") }
            } else { error(p, "a [[route]] needs sinks") }
            var r = Route(sinks: sinks)
            r.types = globs(t, "types", "route.types")
            r.severities = globs(t, "severities", "route.severities")
            r.rules = globs(t, "rules", "route.rules")
            r.owners = globs(t, "owners", "route.owners")
            r.workflows = globs(t, "workflows", "route.workflows")
            if let v = t["continue"] {
                if let b = v.bool { r.continueMatching = b } else { error(v.position, "route.continue must be true or false") }
            }
            c.routes.append(r)
        }
    }
}
