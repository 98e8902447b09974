#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import TokenmeterTOML

/// Reads and validates the TOML configuration (contract section 5).
///
/// A syntax error stops parsing and is the only diagnostic. Otherwise every semantic problem in the file is
/// reported in one pass, each at the line and column of the key or value at fault, in file order. A typo in a
/// key or table name is always an error (with a "did you mean" hint), never silently ignored. Omitted keys
/// take the defaults of `TokenmeterConfig`.
///
/// Rules worth knowing (also in the example config):
/// - `rollups.windows`: each window is a positive whole number of seconds and either divides one day
///   (`1m`, `5m`, `1h`, `6h`, `1d`) or is a whole number of days (`7d`): windows then start at the same UTC
///   times every day (multi-day windows are aligned to the Unix epoch, 1970-01-01). Two windows of the same
///   length (`60m` and `1h`) are a duplicate. Windows need not divide each other.
/// - `rollups.grace` >= 0, `rollups.idle_close` > 0, `rollups.late_horizon` >= `grace`;
///   `dedup.window` >= 0 (`0s` turns de-duplication off); `state.checkpoint_interval` > 0.
/// - `[kafka.properties]` values may be strings, integers or booleans (passed to librdkafka as text); dotted
///   keys need no quotes (`security.protocol = "SASL_SSL"` is the property `security.protocol`). Properties
///   that tokenmeter manages (`group.id`, `bootstrap.servers`, `enable.auto.commit`, ...) are errors.
/// - `[kafka.secret_files]` maps a property to a file path; the files are read at start (`SecretFile`), not
///   here. What cannot be judged from the text alone (librdkafka's verdict on each property, the listen
///   host, the secret files, the folders) is checked before connecting, at the positions kept in
///   `TokenmeterConfig.origins`.
/// - Prices and money are read from the number's text, exactly (`0.1` is exactly 0.1).
public enum ConfigLoader {
    public static let defaultPath = "/etc/tokenmeter/tokenmeter.toml"

    public static func load(path: String) -> Result<TokenmeterConfig, ConfigErrors> {
        switch readFile(path) {
        case .success(let bytes):
            return parse(bytes: bytes, file: path)
        case .failure(let reason):
            return .failure(ConfigErrors([ConfigDiagnostic(file: path, line: 1, column: 1,
                                                           message: "cannot read \(path): \(reason.message)")]))
        }
    }

    public static func parse(text: String, file: String) -> Result<TokenmeterConfig, ConfigErrors> {
        parse(bytes: Array(text.utf8), file: file)
    }

    public static func parse(bytes: [UInt8], file: String) -> Result<TokenmeterConfig, ConfigErrors> {
        let root: TOMLTable
        switch parseTOML(bytes: bytes, file: file) {
        case .success(let r): root = r
        case .failure(let e): return .failure(e)
        }
        var builder = ConfigBuilder(file: file)
        let config = builder.build(root)
        if builder.diagnostics.isEmpty { return .success(config) }
        // In file order: this file's problems, then those of the files it includes, each file in its order.
        let sorted = builder.diagnostics.enumerated().sorted {
            ($0.element.file == file ? 0 : 1, $0.element.file, $0.element.line, $0.element.column, $0.offset)
                < ($1.element.file == file ? 0 : 1, $1.element.file, $1.element.line, $1.element.column, $1.offset)
        }.map(\.element)
        return .failure(ConfigErrors(sorted))
    }

    /// The line summary `check-config` prints: `3 prices, 1 budgets, ...; windows 1m,1h,1d`.
    public static func summary(_ c: TokenmeterConfig) -> String {
        "\(c.prices.count) prices, \(c.budgets.count) budgets, \(c.spikes.count) spikes, "
            + "\(c.outcomeLimits.count) outcome limits; windows \(c.rollups.windows.map(\.label).joined(separator: ","))"
    }

    struct ReadError: Error { var message: String }

    static func readFile(_ path: String) -> Result<[UInt8], ReadError> {
        let fd = open(path, O_RDONLY)
        if fd < 0 { return .failure(ReadError(message: String(cString: strerror(errno)))) }
        defer { close(fd) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                return .failure(ReadError(message: String(cString: strerror(errno))))
            }
            if n == 0 { break }
            out.append(contentsOf: buf[0..<n])
            if out.count > 16 << 20 { return .failure(ReadError(message: "file is larger than 16 MiB")) }
        }
        return .success(out)
    }

    /// A configuration file's bytes as a TOML table, or where they are not UTF-8 or not TOML (FILE:LINE:COL):
    /// the first step of every configuration file the product reads (the daemon's, notify's).
    public static func parseTOML(bytes: [UInt8], file: String) -> Result<TOMLTable, ConfigErrors> {
        if let (p, message) = firstInvalidUTF8(bytes) {
            return .failure(ConfigErrors([ConfigDiagnostic(file: file, line: p.line, column: p.column, message: message)]))
        }
        do {
            return .success(try TOMLParser.parse(bytes: bytes))
        } catch {
            return .failure(ConfigErrors([ConfigDiagnostic(file: file, line: error.position.line,
                                                           column: error.position.column, message: error.message)]))
        }
    }

    static func firstInvalidUTF8(_ bytes: [UInt8]) -> (TOMLPosition, String)? {
        var parser = Unicode.UTF8.ForwardParser()
        var it = bytes.makeIterator()
        var line = 1, column = 1
        while true {
            switch parser.parseScalar(from: &it) {
            case .valid(let enc):
                if enc.count == 1 && enc.first == 0x0A { line += 1; column = 1 } else { column += 1 }
            case .emptyInput:
                return nil
            case .error:
                return (TOMLPosition(line: line, column: column), "the file is not valid UTF-8")
            }
        }
    }

    /// Kafka's topic name rules, for other configuration files that name topics (notify's): nil, or the problem.
    public static func topicProblem(_ s: String) -> String? { ConfigBuilder.topicProblem(s) }
}

// MARK: - The builder

/// Which kind of entry a known name is, to word messages and suggestions (`key`, `[table]`, `[[array]]`).
private enum KnownKind { case key, table, arrayOfTables }

private struct ConfigBuilder {
    let file: String
    var diagnostics: [ConfigDiagnostic] = []
    /// Where the values checked at start were written (see `ConfigOrigins`).
    var origins: ConfigOrigins
    /// `tag:NAME` entries of `metrics.dimensions`, checked against `rollups.tags` at the end.
    var metricsTags: [(String, TOMLPosition)] = []
    /// `[otlp.tags]` names and `[kafka.input_formats]` topics, checked against `rollups.tags` and
    /// `kafka.topics` at the end (the table order in the file is free).
    var otlpTags: [(String, TOMLPosition)] = []
    var formatTopics: [(String, TOMLPosition)] = []

    init(file: String) { self.file = file; self.origins = ConfigOrigins(file: file) }

    mutating func record(_ name: String, key: TOMLPosition?, value: TOMLPosition?) {
        if let key { origins.keys[name] = key }
        if let value { origins.values[name] = value }
    }

    mutating func error(_ p: TOMLPosition, _ message: String) {
        diagnostics.append(ConfigDiagnostic(file: file, line: p.line, column: p.column, message: message))
    }

    // MARK: top level

    mutating func build(_ root: TOMLTable) -> TokenmeterConfig {
        var c = TokenmeterConfig()
        // `include` is not a setting but where more [[price]] entries are read from (their prices join
        // `prices`, each with its own file and line): the one top-level key, outside the key table.
        checkUnknown(root, path: nil, known: Self.known(nil) + [("include", .key)])
        for e in root.entries {
            switch e.key {
            case "kafka", "rollups", "state", "dedup", "http", "focus", "metrics", "otlp":
                guard let t = e.value.table else {
                    if e.value.isArrayOfTables {
                        error(e.value.position, "`\(e.key)` is a single table: write `[\(e.key)]`, not `[[\(e.key)]]`")
                    } else {
                        error(e.value.position, "`\(e.key)` must be a table (`[\(e.key)]`), not \(e.value.typeDescription)")
                    }
                    continue
                }
                record("[\(e.key)]", key: e.keyPosition, value: nil)
                switch e.key {
                case "kafka": c.kafka = kafka(t)
                case "rollups": c.rollups = rollups(t)
                case "state": c.state = state(t)
                case "dedup": c.dedup = dedup(t)
                case "focus": c.focus = focus(t)
                case "metrics": c.metrics = metrics(t)
                case "otlp": c.otlp = otlp(t)
                default: c.http = http(t)
                }
            case "provider_prefixes":
                guard let t = e.value.table else {
                    error(e.value.position, "`provider_prefixes` must be a table (`[provider_prefixes]`) of model-name prefix to provider, not \(e.value.typeDescription)")
                    continue
                }
                c.providerPrefixes = providerPrefixes(t)
            case "price", "budget", "spike", "outcome_limit":
                guard let elements = e.value.array else {
                    if e.value.table != nil {
                        error(e.value.position, "`\(e.key)` is a list of entries: write `[[\(e.key)]]`, not `[\(e.key)]`")
                    } else {
                        error(e.value.position, "`\(e.key)` must be an array of tables (`[[\(e.key)]]`), not \(e.value.typeDescription)")
                    }
                    continue
                }
                var tables: [TOMLTable] = []
                for el in elements {
                    if let t = el.table { tables.append(t) } else {
                        error(el.position, "each `\(e.key)` entry must be a table, not \(el.typeDescription)")
                    }
                }
                switch e.key {
                case "price": c.prices = prices(tables)
                case "budget": c.budgets = budgets(tables)
                case "spike": c.spikes = spikes(tables)
                default: c.outcomeLimits = outcomeLimits(tables)
                }
            default:
                break // reported by checkUnknown
            }
        }
        if root["include"] != nil { c.prices += includedPrices(root, after: c.prices) }
        // Spend deltas leave with each checkpoint, so its interval is the alert latency across instances:
        // unless set, one second (the issue's "batched every second or so") instead of five.
        if c.kafka.spendTopic != nil, root["state"]?.table?["checkpoint_interval"] == nil {
            c.state.checkpointInterval = DurationSpec(millis: 1_000, label: "1s")
        }
        // A tag label is one of `rollups.tags`: the table order in the file is free, so checked last.
        for (tag, p) in metricsTags where !c.rollups.tags.contains(tag) {
            error(p, "`metrics.dimensions`: \"tag:\(tag)\" is not in `rollups.tags`"
                  + (c.rollups.tags.isEmpty ? " (none configured)" : " (\(c.rollups.tags.joined(separator: ", ")))"))
        }
        for (tag, p) in otlpTags where !c.rollups.tags.contains(tag) {
            error(p, "`otlp.tags`: \"\(tag)\" is not in `rollups.tags`"
                  + (c.rollups.tags.isEmpty ? " (none configured)" : " (\(c.rollups.tags.joined(separator: ", ")))"))
        }
        for (topic, p) in formatTopics where !c.kafka.topics.contains(topic) {
            var message = "`kafka.input_formats`: \"\(topic)\" is not one of `kafka.topics`"
                + " (\(c.kafka.topics.joined(separator: ", ")))"
            if topic.hasPrefix("^") { message += "; a pattern subscription's topics are JSON events" }
            if let s = Suggest.closest(topic, in: c.kafka.topics) { message += "; did you mean \"\(s)\"?" }
            error(p, message)
        }
        c.origins = origins
        return c
    }

    /// Reports every entry of `t` whose name is not in `known`, with a suggestion when one is close.
    mutating func checkUnknown(_ t: TOMLTable, path: String?, known: [(String, KnownKind)]) {
        let names = known.map(\.0)
        for e in t.entries where !names.contains(e.key) {
            let full = path.map { $0 + "." + e.key } ?? e.key
            var message: String
            if e.value.isArrayOfTables {
                message = "unknown table `[[\(full)]]`"
            } else if e.value.table != nil && !e.value.isInlineTable {
                message = "unknown table `[\(full)]`"
            } else if let path {
                message = "unknown key `\(e.key)` in " + (path.contains("[[") ? path : "[\(path)]")
            } else {
                message = "unknown key `\(e.key)` at the top level"
            }
            if path?.hasPrefix("[[") == true {
                // Inside an array-of-tables entry every entry is a key.
                message = "unknown key `\(e.key)` in \(path!)"
            }
            if let s = Suggest.closest(e.key, in: names), let kind = known.first(where: { $0.0 == s })?.1 {
                let sFull = path.flatMap { $0.hasPrefix("[[") ? nil : $0 + "." + s } ?? s
                switch kind {
                case .key: message += "; did you mean `\(s)`?"
                case .table: message += "; did you mean `[\(sFull)]`?"
                case .arrayOfTables: message += "; did you mean `[[\(sFull)]]`?"
                }
            } else if path == nil, case let homes = Self.sectionKeys.filter({ $0.1.contains(e.key) }).map(\.0), !homes.isEmpty {
                message += "; it belongs in a \(Self.orList(homes)) table"
            } else if path == nil {
                message += " (known tables: " + Self.known(nil).map { $0.1 == .arrayOfTables ? "[[\($0.0)]]" : "[\($0.0)]" }
                    .joined(separator: ", ") + ")"
            }
            error(e.keyPosition, message)
        }
    }

    /// What a table may hold, from `ConfigKeys`: at the top level its sections; in a section its keys and
    /// the maps written under it (`[kafka.properties]` in `[kafka]`).
    static func known(_ section: String?) -> [(String, KnownKind)] {
        guard let section else {
            return ConfigKeys.sections.filter { !$0.name.contains(".") }.map { ($0.name, $0.shape == .arrayOfTables ? .arrayOfTables : .table) }
        }
        let keys = ConfigKeys.section(section)?.keys.map { ($0.name, KnownKind.key) } ?? []
        let tables = ConfigKeys.sections.compactMap { s -> (String, KnownKind)? in
            guard s.name.hasPrefix(section + "."), case let rest = s.name.dropFirst(section.count + 1), !rest.contains(".") else { return nil }
            return (String(rest), .table)
        }
        return keys + tables
    }

    /// The keys each entry of an array of tables must have.
    static func requiredKeys(_ section: String) -> [String] {
        ConfigKeys.section(section)?.keys.filter(\.required).map(\.name) ?? []
    }

    /// Which section each key belongs in, to help with a key written above every header.
    static let sectionKeys: [(String, [String])] = ConfigKeys.sections.filter { !$0.keys.isEmpty }.map { ($0.header, $0.keys.map(\.name)) }

    /// What to do instead of writing an empty value: `omit the key for "127.0.0.1:9092"`, the default
    /// as the key table prints it.
    static func omitForDefault(_ path: String) -> String {
        let value = ConfigKeys.keys.first { $0.path == path }?.value(in: TokenmeterConfig())
        return value.map { "omit the key for \($0)" } ?? "omit the key for the default"
    }

    /// `a`, `a or b`, `a, b or c`.
    static func orList(_ items: [String]) -> String {
        items.count <= 1 ? items.joined() : items.dropLast().joined(separator: ", ") + " or " + items.last!
    }

    // MARK: typed getters
    //
    // Each returns nil when the key is absent or its value is wrong (the problem is then already reported).
    // `name` is how the key is called in messages (`kafka.brokers`, `price.input`).

    /// `emptyHint` explains what to do instead of an empty string (for keys with a default: omit the key).
    mutating func string(_ t: TOMLTable, _ key: String, _ name: String, emptyHint: String? = nil)
        -> (String, TOMLPosition)? {
        guard let v = t[key] else { return nil }
        guard let s = v.string else {
            error(v.position, "`\(name)` must be a string, not \(v.typeDescription)")
            return nil
        }
        if s.allSatisfy(\.isWhitespace) {
            error(v.position, "`\(name)` must not be empty" + (emptyHint.map { " (\($0))" } ?? ""))
            return nil
        }
        return (s, v.position)
    }

    mutating func required(_ t: TOMLTable, _ key: String, _ section: String) {
        if t[key] == nil { error(t.position, "\(section) is missing the required key `\(key)`") }
    }

    mutating func bool(_ t: TOMLTable, _ key: String, _ name: String) -> Bool? {
        guard let v = t[key] else { return nil }
        guard let b = v.bool else {
            error(v.position, "`\(name)` must be a boolean (true or false), not \(v.typeDescription)")
            return nil
        }
        return b
    }

    mutating func duration(_ t: TOMLTable, _ key: String, _ name: String) -> (DurationSpec, TOMLPosition)? {
        guard let v = t[key] else { return nil }
        return duration(v, name)
    }

    mutating func duration(_ v: TOMLValue, _ name: String) -> (DurationSpec, TOMLPosition)? {
        guard let s = v.string else {
            let hint = v.isNumber ? " such as \"\(v.text)s\" (with a unit: ms, s, m, h, d, w)" : " such as \"30s\""
            error(v.position, "`\(name)` must be a duration string\(hint), not \(v.typeDescription)")
            return nil
        }
        guard let d = DurationSpec.parse(s) else {
            error(v.position, "`\(name)`: invalid duration \"\(s)\" (expected a whole number and a unit: ms, s, m, h, d "
                  + "or w, such as \"30s\", \"5m\", \"1h\")")
            return nil
        }
        return (d, v.position)
    }

    /// The decimal text of a finite number (integers in any base become decimal text).
    mutating func numberText(_ v: TOMLValue, _ name: String) -> String? {
        switch v.kind {
        case .integer(let i): return String(i)
        case .float(let d):
            guard d.isFinite else {
                error(v.position, "`\(name)` must be a finite number, not \(v.text)")
                return nil
            }
            return v.text
        case .string(let s):
            let hint = FixedDecimal.parse(s, scale: 0) != nil ? " (write the number without quotes)" : ""
            error(v.position, "`\(name)` must be a number, not a string\(hint)")
            return nil
        default:
            error(v.position, "`\(name)` must be a number, not \(v.typeDescription)")
            return nil
        }
    }

    /// An exact decimal scaled by 10^scale; more than `scale` decimals is an error, not a silent rounding.
    mutating func exact(_ v: TOMLValue, _ name: String, scale: Int, unit: String) -> Int128? {
        guard let text = numberText(v, name) else { return nil }
        guard let fine = FixedDecimal.parse(text, scale: 18), let value = FixedDecimal.parse(text, scale: scale) else {
            error(v.position, "`\(name)` is too large")
            return nil
        }
        var div: Int128 = 1
        for _ in 0..<(18 - scale) { div *= 10 }
        if fine % div != 0 {
            error(v.position, "`\(name)` has more than \(scale) decimal places (\(unit))")
            return nil
        }
        return value
    }

    mutating func price(_ t: TOMLTable, _ key: String) -> PricePerMillion? {
        guard let v = t[key] else { return nil }
        let name = "price.\(key)"
        guard let nanos = exact(v, name, scale: 9, unit: "prices are kept in nano-dollars per 1M tokens") else { return nil }
        if nanos < 0 {
            error(v.position, "`\(name)` must be zero or more (USD per 1M tokens), not \(v.text)")
            return nil
        }
        guard nanos <= Int128(Int64.max) else {
            error(v.position, "`\(name)` is too large")
            return nil
        }
        return PricePerMillion(nanos: Int64(nanos))
    }

    enum Sign { case positive, nonNegative }

    mutating func money(_ t: TOMLTable, _ key: String, _ name: String, _ sign: Sign) -> Money? {
        guard let v = t[key] else { return nil }
        guard let text = numberText(v, name) else { return nil }
        guard let m = Money.parse(text) else {
            error(v.position, "`\(name)` is too large")
            return nil
        }
        switch sign {
        case .positive where m.femtos <= 0:
            error(v.position, "`\(name)` must be greater than 0 (USD), not \(v.text)")
            return nil
        case .nonNegative where m.femtos < 0:
            error(v.position, "`\(name)` must be zero or more (USD), not \(v.text)")
            return nil
        default:
            return m
        }
    }

    mutating func integer(_ t: TOMLTable, _ key: String, _ name: String) -> (Int64, TOMLPosition)? {
        guard let v = t[key] else { return nil }
        guard let i = v.integer else {
            error(v.position, "`\(name)` must be an integer, not \(v.typeDescription)")
            return nil
        }
        return (i, v.position)
    }

    /// An array of non-empty strings. Each bad element is reported at its position and left out, and `ok`
    /// becomes false; nil when the value is not an array at all.
    mutating func stringList(_ t: TOMLTable, _ key: String, _ name: String, unique: Bool, ok: inout Bool)
        -> [(String, TOMLPosition)]? {
        guard let v = t[key] else { return nil }
        guard let arr = v.array, !v.isArrayOfTables else {
            let hint = v.string.map { " (write [\"\($0)\"])" } ?? ""
            error(v.position, "`\(name)` must be an array of strings, not \(v.typeDescription)\(hint)")
            ok = false
            return nil
        }
        var out: [(String, TOMLPosition)] = []
        for el in arr {
            guard let s = el.string else {
                error(el.position, "`\(name)` must contain only strings, not \(el.typeDescription)")
                ok = false
                continue
            }
            if s.allSatisfy(\.isWhitespace) {
                error(el.position, "`\(name)` must not contain an empty string")
                ok = false
                continue
            }
            if unique, let first = out.first(where: { $0.0 == s }) {
                error(el.position, "`\(name)` lists \"\(s)\" twice (first at line \(first.1.line), column \(first.1.column))")
                ok = false
                continue
            }
            out.append((s, el.position))
        }
        return out
    }

    mutating func period(_ t: TOMLTable, _ key: String, _ name: String) -> BudgetPeriod? {
        guard let (s, p) = string(t, key, name) else { return nil }
        if let period = BudgetPeriod(rawValue: s) { return period }
        let all = BudgetPeriod.allCases.map(\.rawValue)
        var message = "`\(name)` must be one of \(all.joined(separator: ", ")), not \"\(s)\""
        if let sug = Suggest.closest(s, in: all) { message += "; did you mean \"\(sug)\"?" }
        error(p, message)
        return nil
    }

    // MARK: [kafka]

    static let managedProperties: [String: String] = [
        "group.id": "set `group_id` in [kafka] instead",
        "bootstrap.servers": "set `brokers` in [kafka] instead",
        "metadata.broker.list": "set `brokers` in [kafka] instead",
        "enable.auto.commit": "tokenmeter commits offsets itself, only after the state they cover is checkpointed",
        "enable.auto.offset.store": "tokenmeter stores offsets itself, only after the state they cover is checkpointed",
        "group.instance.id": "set `static_membership = true` in [kafka] instead (the instance name becomes the id)",
    ]

    mutating func kafka(_ t: TOMLTable) -> KafkaSettings {
        var k = KafkaSettings()
        checkUnknown(t, path: "kafka", known: Self.known("kafka"))
        if let (d, p) = duration(t, "handover_timeout", "kafka.handover_timeout") {
            if d.millis < 0 { error(p, "`kafka.handover_timeout` must not be negative") } else { k.handoverTimeout = d }
        }
        if let b = bool(t, "static_membership", "kafka.static_membership") { k.staticMembership = b }
        if let (d, p) = duration(t, "ready_grace", "kafka.ready_grace") {
            if d.millis < 0 { error(p, "`kafka.ready_grace` must not be negative") } else { k.readyGrace = d }
        }
        if let v = t["brokers"] {
            if let list = v.array, !v.isArrayOfTables {
                // A list of brokers is accepted too and joined with commas.
                var ok = true
                if let items = stringList(t, "brokers", "kafka.brokers", unique: true, ok: &ok), ok {
                    if items.isEmpty { error(v.position, "`kafka.brokers` must list at least one broker") } else {
                        k.brokers = items.map(\.0).joined(separator: ",")
                    }
                }
                _ = list
            } else if let (s, _) = string(t, "brokers", "kafka.brokers", emptyHint: Self.omitForDefault("kafka.brokers")) {
                k.brokers = s
            }
            record("kafka.brokers", key: t.entries.first { $0.key == "brokers" }?.keyPosition, value: v.position)
        }
        if let (s, _) = string(t, "group_id", "kafka.group_id", emptyHint: Self.omitForDefault("kafka.group_id")) { k.groupId = s }
        var topicPositions: [String: TOMLPosition] = [:]
        var topicsOK = true
        if let v = t["topics"], let items = stringList(t, "topics", "kafka.topics", unique: true, ok: &topicsOK) {
            if items.isEmpty {
                if topicsOK { error(v.position, "`kafka.topics` must list at least one topic") }
            } else {
                var ok = topicsOK
                for (s, p) in items where !s.hasPrefix("^") {
                    if let problem = Self.topicProblem(s) { error(p, "`kafka.topics`: \(problem)"); ok = false }
                }
                if ok { k.topics = items.map(\.0) }
                for (s, p) in items { topicPositions[s] = p }
            }
        }
        // Checked against the topics as written, even when some of them were invalid.
        let listedTopics = t["topics"] != nil ? Set(topicPositions.keys) : Set(k.topics)
        if let (s, p) = string(t, "alerts_topic", "kafka.alerts_topic", emptyHint: Self.omitForDefault("kafka.alerts_topic")) {
            if let problem = Self.topicProblem(s) { error(p, "`kafka.alerts_topic`: \(problem)") } else {
                k.alertsTopic = s
                if listedTopics.contains(s) {
                    error(p, "`kafka.alerts_topic` \"\(s)\" is also listed in `kafka.topics`: alerts would be read back as usage events")
                }
            }
        }
        if let (s, p) = string(t, "dead_letter_topic", "kafka.dead_letter_topic",
                                 emptyHint: "omit the key to only count and log bad input") {
            if let problem = Self.topicProblem(s) { error(p, "`kafka.dead_letter_topic`: \(problem)") } else {
                k.deadLetterTopic = s
                if listedTopics.contains(s) {
                    error(p, "`kafka.dead_letter_topic` \"\(s)\" is also listed in `kafka.topics`: rejected messages would be read again")
                } else if s == k.alertsTopic {
                    error(p, "`kafka.dead_letter_topic` must differ from `kafka.alerts_topic` (\"\(s)\")")
                }
            }
        }
        // Scale-out topics (`kafka.spend_topic`): internal, so none may be one the daemon reads or writes otherwise.
        var internalTopics: [String: String] = [:]
        for (key, name) in [("changelog_topic", "kafka.changelog_topic"), ("spend_topic", "kafka.spend_topic")] {
            guard let (s, p) = string(t, key, name, emptyHint: "omit the key for single-instance state") else { continue }
            if let problem = Self.topicProblem(s) { error(p, "`\(name)`: \(problem)"); continue }
            if listedTopics.contains(s) || s == k.alertsTopic || s == k.deadLetterTopic || internalTopics[s] != nil {
                error(p, "`\(name)` \"\(s)\" must be a topic of its own (it is already used by `\(internalTopics[s] ?? (listedTopics.contains(s) ? "kafka.topics" : s == k.alertsTopic ? "kafka.alerts_topic" : "kafka.dead_letter_topic"))`)")
                continue
            }
            internalTopics[s] = name
            if key == "changelog_topic" { k.changelogTopic = s } else { k.spendTopic = s }
        }
        if k.spendTopic != nil && k.changelogTopic == nil, let v = t["spend_topic"] {
            error(v.position, "`kafka.spend_topic` needs `kafka.changelog_topic`: alert shards keep their state in the changelog")
        }
        var propertyLines: [String: TOMLPosition] = [:]
        if let v = t["properties"] {
            record("[kafka.properties]", key: t.entries.first { $0.key == "properties" }?.keyPosition, value: nil)
            if let pt = v.table {
                for (key, p, value) in flatten(pt, prefix: "") {
                    let name = "kafka.properties.\"\(key)\""
                    if let why = Self.managedProperties[key] {
                        error(p, "librdkafka property `\(key)` is managed by tokenmeter: \(why)")
                        continue
                    }
                    let text: String
                    switch value.kind {
                    case .string(let s): text = s
                    case .integer(let i): text = String(i)
                    case .boolean(let b): text = b ? "true" : "false"
                    default:
                        error(value.position, "`\(name)` must be a string, an integer or a boolean, not \(value.typeDescription)"
                              + (value.isNumber ? " (write it as a string)" : ""))
                        continue
                    }
                    propertyLines[key] = p
                    record("kafka.properties.\(key)", key: p, value: value.position)
                    k.properties.append(KeyValue(key, text))
                }
            } else {
                error(v.position, "`kafka.properties` must be a table (`[kafka.properties]`), not \(v.typeDescription)")
            }
        }
        if let v = t["secret_files"] {
            record("[kafka.secret_files]", key: t.entries.first { $0.key == "secret_files" }?.keyPosition, value: nil)
            if let st = v.table {
                for (key, p, value) in flatten(st, prefix: "") {
                    if let why = Self.managedProperties[key] {
                        error(p, "librdkafka property `\(key)` is managed by tokenmeter: \(why)")
                        continue
                    }
                    if let first = propertyLines[key] {
                        error(p, "librdkafka property `\(key)` is set both here and in [kafka.properties] "
                              + "(line \(first.line)); keep one")
                        continue
                    }
                    guard let path = value.string else {
                        error(value.position, "`kafka.secret_files.\"\(key)\"` must be a file path (a string), not \(value.typeDescription)")
                        continue
                    }
                    if path.allSatisfy(\.isWhitespace) {
                        error(value.position, "`kafka.secret_files.\"\(key)\"` must not be empty: give the path of the file that holds the value")
                        continue
                    }
                    record("kafka.secret_files.\(key)", key: p, value: value.position)
                    k.secretFiles.append(KeyValue(key, path))
                }
            } else {
                error(v.position, "`kafka.secret_files` must be a table (`[kafka.secret_files]`), not \(v.typeDescription)")
            }
        }
        if let v = t["input_formats"] {
            if let ft = v.table { k.inputFormats = inputFormats(ft) } else {
                error(v.position, "`kafka.input_formats` must be a table (`[kafka.input_formats]`) of topic name to format, not \(v.typeDescription)")
            }
        }
        return k
    }

    /// `topic = "otlp_proto"`: a topic of `kafka.topics` (checked at the end) and one of `InputFormat`.
    /// Topic names may hold dots: an unquoted dotted key is the topic name it spells.
    mutating func inputFormats(_ t: TOMLTable) -> [KeyValue] {
        var out: [KeyValue] = []
        let all = InputFormat.allCases.map(\.rawValue)
        for (topic, p, value) in flatten(t, prefix: "") {
            let name = "kafka.input_formats.\"\(topic)\""
            formatTopics.append((topic, p))
            guard let text = value.string else {
                error(value.position, "`\(name)` must be one of \(Self.orList(all)) (a string), not \(value.typeDescription)")
                continue
            }
            guard InputFormat(rawValue: text) != nil else {
                var message = "`\(name)` must be one of \(Self.orList(all)), not \"\(text)\""
                if let s = Suggest.closest(text, in: all) { message += "; did you mean \"\(s)\"?" }
                error(value.position, message)
                continue
            }
            out.append(KeyValue(topic, text))
        }
        return out
    }

    // MARK: [otlp]

    mutating func otlp(_ t: TOMLTable) -> OTLPSettings {
        var o = OTLPSettings()
        checkUnknown(t, path: "otlp", known: Self.known("otlp"))
        for (key, keyPath) in [("workflow_attributes", \OTLPSettings.workflowAttributes),
                               ("owner_attributes", \OTLPSettings.ownerAttributes)] {
            let name = "otlp." + key
            var ok = true
            guard let items = stringList(t, key, name, unique: true, ok: &ok), ok else { continue }
            if items.isEmpty || items.count > OTLPSettings.maxAttributes {
                error(t[key]!.position, "`\(name)` must name 1 to \(OTLPSettings.maxAttributes) attributes, not \(items.count)")
                continue
            }
            if let long = items.first(where: { $0.0.utf8.count > EventDecoder.maxNameBytes }) {
                error(long.1, "`\(name)`: an attribute name is at most \(EventDecoder.maxNameBytes) bytes")
                continue
            }
            o[keyPath: keyPath] = items.map(\.0)
        }
        if let v = t["tags"] {
            guard let tt = v.table else {
                error(v.position, "`otlp.tags` must be a table (`[otlp.tags]`) of tag name to attribute name, not \(v.typeDescription)")
                return o
            }
            for (tag, p, value) in flatten(tt, prefix: "") {
                let name = "otlp.tags.\"\(tag)\""
                guard let attribute = value.string else {
                    error(value.position, "`\(name)` must be an attribute name (a string), not \(value.typeDescription)")
                    continue
                }
                if attribute.isEmpty || attribute.utf8.count > EventDecoder.maxNameBytes {
                    error(value.position, "`\(name)` must be an attribute name of 1 to \(EventDecoder.maxNameBytes) bytes")
                    continue
                }
                if o.tags.count >= OTLPSettings.maxAttributes {
                    error(p, "`otlp.tags` may map at most \(OTLPSettings.maxAttributes) tags")
                    continue
                }
                otlpTags.append((tag, p))
                o.tags.append(KeyValue(tag, attribute))
            }
        }
        return o
    }

    /// Nested tables become dotted names: `security.protocol = "x"` without quotes is the property
    /// `security.protocol`.
    /// The position reported is that of the first part of the dotted name.
    func flatten(_ t: TOMLTable, prefix: String, at: TOMLPosition? = nil) -> [(String, TOMLPosition, TOMLValue)] {
        var out: [(String, TOMLPosition, TOMLValue)] = []
        for e in t.entries {
            let name = prefix.isEmpty ? e.key : prefix + "." + e.key
            if let sub = e.value.table {
                out.append(contentsOf: flatten(sub, prefix: name, at: at ?? e.keyPosition))
            } else {
                out.append((name, at ?? e.keyPosition, e.value))
            }
        }
        return out
    }

    /// Kafka's topic name rules: 1 to 249 of `a-z A-Z 0-9 . _ -`, not `.` or `..`.
    static func topicProblem(_ s: String) -> String? {
        let legal = s.utf8.allSatisfy {
            ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x30 && $0 <= 0x39)
                || $0 == 0x2E || $0 == 0x5F || $0 == 0x2D
        }
        if !legal || s.utf8.count > 249 || s == "." || s == ".." {
            return "\"\(s)\" is not a valid Kafka topic name (1 to 249 letters, digits, `.`, `_` or `-`)"
        }
        return nil
    }

    // MARK: [rollups], [state], [dedup], [http]

    mutating func rollups(_ t: TOMLTable) -> RollupSettings {
        var r = RollupSettings()
        checkUnknown(t, path: "rollups", known: Self.known("rollups"))
        if let (s, p) = string(t, "dir", "rollups.dir", emptyHint: Self.omitForDefault("rollups.dir")) {
            r.dir = s
            record("rollups.dir", key: nil, value: p)
        }
        if let v = t["windows"] {
            if let arr = v.array, !v.isArrayOfTables {
                if arr.isEmpty { error(v.position, "`rollups.windows` must list at least one window") }
                var windows: [DurationSpec] = []
                var ok = !arr.isEmpty
                var seen: [Int64: DurationSpec] = [:]
                for el in arr {
                    guard let (d, p) = duration(el, "rollups.windows") else { ok = false; continue }
                    if d.millis <= 0 || d.millis % 1000 != 0 {
                        error(p, "`rollups.windows`: window \"\(d.label)\" must be a positive whole number of seconds")
                        ok = false
                    } else if 86_400_000 % d.millis != 0 && d.millis % 86_400_000 != 0 {
                        error(p, "`rollups.windows`: window \"\(d.label)\" must divide one day (such as 1m, 5m, 15m, 1h, "
                              + "6h, 1d) or be a whole number of days, so that windows start at the same times every day")
                        ok = false
                    } else if let first = seen[d.millis] {
                        error(p, "`rollups.windows`: window \"\(d.label)\" is listed twice"
                              + (first.label == d.label ? "" : " (as \"\(first.label)\")"))
                        ok = false
                    } else {
                        seen[d.millis] = d
                        windows.append(d)
                    }
                }
                if ok { r.windows = windows }
            } else {
                error(v.position, "`rollups.windows` must be an array of durations such as [\"1m\", \"1h\", \"1d\"], "
                      + "not \(v.typeDescription)")
            }
        }
        let grace = duration(t, "grace", "rollups.grace")
        if let (d, _) = grace { r.grace = d }
        if let (d, p) = duration(t, "idle_close", "rollups.idle_close") {
            if d.millis <= 0 { error(p, "`rollups.idle_close` must be longer than 0") } else { r.idleClose = d }
        }
        let late = duration(t, "late_horizon", "rollups.late_horizon")
        if let (d, _) = late { r.lateHorizon = d }
        if (grace != nil || late != nil) && r.lateHorizon.millis < r.grace.millis {
            let p = late?.1 ?? grace!.1
            error(p, "`rollups.late_horizon` (\(r.lateHorizon.label)) must not be shorter than `rollups.grace` "
                  + "(\(r.grace.label)): events later than the late horizon are dead-lettered")
        }
        if let (d, p) = duration(t, "max_future", "rollups.max_future") {
            if d.millis <= 0 {
                error(p, "`rollups.max_future` must be longer than 0: it is how far ahead of the clock an event may be")
            } else {
                r.maxFuture = d
            }
        }
        var tagsOK = true
        if let items = stringList(t, "tags", "rollups.tags", unique: true, ok: &tagsOK), tagsOK { r.tags = items.map(\.0) }
        if let (s, p) = string(t, "instance", "rollups.instance", emptyHint: "omit the key to use the host name") {
            let legal = s.utf8.allSatisfy {
                ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x30 && $0 <= 0x39)
                    || $0 == 0x2E || $0 == 0x5F || $0 == 0x2D
            }
            if !legal || s.hasPrefix(".") {
                error(p, "`rollups.instance` \"\(s)\" may contain only letters, digits, `.`, `_` and `-` (and must not "
                      + "start with `.`): it is part of rollup file names")
            } else {
                r.instance = s
            }
        }
        if let (n, p) = integer(t, "max_keys_per_window", "rollups.max_keys_per_window") {
            if n < 1 { error(p, "`rollups.max_keys_per_window` must be at least 1") } else { r.maxKeysPerWindow = Int(n) }
        }
        return r
    }

    mutating func metrics(_ t: TOMLTable) -> MetricsSettings {
        var m = MetricsSettings()
        checkUnknown(t, path: "metrics", known: Self.known("metrics"))
        var ok = true
        if let items = stringList(t, "dimensions", "metrics.dimensions", unique: true, ok: &ok), ok {
            var dims: [SpendDimension] = []
            for (text, p) in items {
                if let d = SpendDimension(text) {
                    dims.append(d)
                    if case .tag(let name) = d { metricsTags.append((name, p)) }
                } else {
                    error(p, "`metrics.dimensions`: unknown dimension \"\(text)\" (use owner, workflow, model, provider, "
                          + "model_family or tag:NAME with NAME one of rollups.tags)")
                    ok = false
                }
            }
            if ok { m.dimensions = dims }
        }
        if let (n, p) = integer(t, "max_series", "metrics.max_series") {
            if n < 1 || n > 100_000 {
                error(p, "`metrics.max_series` must be between 1 and 100000: each series is scraped on every scrape")
            } else {
                m.maxSeries = Int(n)
            }
        }
        return m
    }

    mutating func state(_ t: TOMLTable) -> StateSettings {
        var s = StateSettings()
        checkUnknown(t, path: "state", known: Self.known("state"))
        if let (d, p) = string(t, "dir", "state.dir", emptyHint: Self.omitForDefault("state.dir")) {
            s.dir = d
            record("state.dir", key: nil, value: p)
        }
        if let (d, p) = duration(t, "checkpoint_interval", "state.checkpoint_interval") {
            if d.millis <= 0 { error(p, "`state.checkpoint_interval` must be longer than 0") } else { s.checkpointInterval = d }
        }
        if let v = t["max_memory"] {
            if let text = v.string, let size = ByteSize.parse(text), size.bytes > 0 {
                s.maxMemory = size
            } else {
                error(v.position, "`state.max_memory` must be a size such as \"512MiB\" or \"2GiB\" (a whole number and B, KiB, "
                      + "MiB, GiB, TiB, KB, MB, GB or TB, above 0), not \(v.string.map { "\"\($0)\"" } ?? v.typeDescription)")
            }
        }
        return s
    }

    /// `"prefix" = "provider"`: both non-empty, at most `ProviderPrefixes.maxBytes` bytes (a provider reaches
    /// rollups, metrics and alerts). Written as a quoted key, since prefixes often contain dots
    /// (`"us.anthropic." = "bedrock"`); an unquoted dotted key is taken as the dotted name it spells.
    mutating func providerPrefixes(_ t: TOMLTable) -> [KeyValue] {
        var out: [KeyValue] = []
        for (prefix, p, value) in flatten(t, prefix: "") {
            let name = "provider_prefixes.\"\(prefix)\""
            guard let provider = value.string else {
                error(value.position, "`\(name)` must be a provider name (a string), not \(value.typeDescription)")
                continue
            }
            if prefix.isEmpty || prefix.utf8.count > ProviderPrefixes.maxBytes {
                error(p, "a provider prefix must be 1 to \(ProviderPrefixes.maxBytes) bytes, not \(prefix.utf8.count)")
                continue
            }
            if provider.allSatisfy(\.isWhitespace) || provider.utf8.count > ProviderPrefixes.maxBytes {
                error(value.position, "`\(name)` must be a provider name of 1 to \(ProviderPrefixes.maxBytes) bytes")
                continue
            }
            if provider.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }) {
                error(value.position, "`\(name)` must not contain control characters")
                continue
            }
            out.append(KeyValue(prefix, provider))
        }
        return out
    }

    mutating func dedup(_ t: TOMLTable) -> DedupSettings {
        var s = DedupSettings()
        checkUnknown(t, path: "dedup", known: Self.known("dedup"))
        if let (d, _) = duration(t, "window", "dedup.window") { s.window = d }
        return s
    }

    mutating func http(_ t: TOMLTable) -> HTTPSettings {
        var s = HTTPSettings()
        checkUnknown(t, path: "http", known: Self.known("http"))
        if let (l, p) = string(t, "listen", "http.listen", emptyHint: Self.omitForDefault("http.listen")) {
            if let problem = Self.listenProblem(l) { error(p, "`http.listen`: \(problem)") } else {
                s.listen = l
                record("http.listen", key: nil, value: p)
            }
        }
        return s
    }

    /// `[focus]`: the billing account that `report --format focus` names on every row. FOCUS tools join
    /// on it, so it is bounded and printable (no control characters).
    mutating func focus(_ t: TOMLTable) -> FocusSettings {
        var s = FocusSettings()
        checkUnknown(t, path: "focus", known: Self.known("focus"))
        for (key, name) in [("billing_account_id", "focus.billing_account_id"), ("billing_account_name", "focus.billing_account_name")] {
            guard let (v, p) = string(t, key, name, emptyHint: Self.omitForDefault(name)) else { continue }
            if let problem = FocusSettings.problem(v) { error(p, "`\(name)` \(problem)"); continue }
            if key == "billing_account_id" { s.billingAccountId = v } else { s.billingAccountName = v }
        }
        return s
    }

    /// `host:port` or `[v6]:port`, port 0-65535.
    static func listenProblem(_ s: String) -> String? {
        let host: Substring
        let port: Substring
        if s.hasPrefix("[") {
            guard let close = s.firstIndex(of: "]") else { return "missing `]` in \"\(s)\"" }
            host = s[s.index(after: s.startIndex)..<close]
            let rest = s[s.index(after: close)...]
            guard rest.hasPrefix(":") else { return "expected `:port` after `]` in \"\(s)\"" }
            port = rest.dropFirst()
            if host.isEmpty || !host.contains(":") { return "\"\(s)\": brackets are for IPv6 addresses such as [::1]:9464" }
        } else {
            guard let colon = s.lastIndex(of: ":") else {
                return "expected host:port (such as 127.0.0.1:9464 or [::1]:9464), got \"\(s)\""
            }
            host = s[..<colon]
            port = s[s.index(after: colon)...]
            if host.contains(":") { return "an IPv6 address must be in brackets, such as [::1]:9464, got \"\(s)\"" }
            if host.isEmpty { return "missing host in \"\(s)\" (use 0.0.0.0:\(port) for all interfaces)" }
        }
        if host.contains(where: { $0.isWhitespace }) { return "the host in \"\(s)\" contains a space" }
        guard !port.isEmpty, port.count <= 5, port.allSatisfy({ $0.isASCII && $0.isNumber }), let n = Int(port), n <= 65535 else {
            return "the port in \"\(s)\" must be a number from 0 to 65535"
        }
        return nil
    }

    // MARK: include

    /// `include = ["prices.toml"]`: files of `[[price]]` entries (a maintained price list kept apart from
    /// the site's settings), paths relative to this file's folder. Their entries come after this file's,
    /// each with its own `FILE:LINE` origin; their problems are reported at their own positions. An
    /// included file holds `[[price]]` entries only (no settings, no further includes), and an entry the
    /// same as one already read (model, provider, tier, minimum, date) is ambiguous, as within one file.
    mutating func includedPrices(_ root: TOMLTable, after earlier: [PriceEntry]) -> [PriceEntry] {
        var ok = true
        guard let paths = stringList(root, "include", "include", unique: true, ok: &ok) else { return [] }
        let folder = file.lastIndex(of: "/").map { String(file[..<$0]) }
        var seen: [PriceIdentity: String] = [:]
        for e in earlier { seen[Self.identity(e)] = e.origin }
        var out: [PriceEntry] = []
        for (path, position) in paths {
            let full = path.hasPrefix("/") || folder == nil ? path : folder! + "/" + path
            // Only a regular file: a FIFO or a device (`/dev/stdin`) would block the load or never end.
            var st = stat()
            if stat(full, &st) == 0 && (st.st_mode & S_IFMT) != S_IFREG {
                error(position, "`include` \"\(path)\": \(full) is not a regular file")
                continue
            }
            let bytes: [UInt8]
            switch ConfigLoader.readFile(full) {
            case .success(let b): bytes = b
            case .failure(let reason):
                error(position, "`include` \"\(path)\": cannot read \(full): \(reason.message)")
                continue
            }
            if let (p, message) = ConfigLoader.firstInvalidUTF8(bytes) {
                diagnostics.append(ConfigDiagnostic(file: full, line: p.line, column: p.column, message: message))
                continue
            }
            let included: TOMLTable
            do {
                included = try TOMLParser.parse(bytes: bytes)
            } catch {
                diagnostics.append(ConfigDiagnostic(file: full, line: error.position.line, column: error.position.column,
                                                    message: error.message))
                continue
            }
            var builder = ConfigBuilder(file: full)
            for e in included.entries where e.key != "price" {
                builder.error(e.keyPosition, "`\(e.key)`: an included file holds [[price]] entries only; settings belong in \(file)")
            }
            let tables = included["price"]?.array?.compactMap(\.table) ?? []
            if let v = included["price"], v.array == nil || tables.count != v.array!.count {
                builder.error(v.position, "`price` must be [[price]] entries")
            }
            for entry in builder.prices(tables) {
                if let first = seen[Self.identity(entry)] {
                    let line = Int(entry.origin.split(separator: ":").last ?? "") ?? 1
                    builder.error(TOMLPosition(line: line, column: 1), "ambiguous price for model \"\(entry.model)\": the [[price]] "
                                  + "entry at \(first) has the same model, provider, service_tier, min_input_tokens and effective_from")
                    continue
                }
                seen[Self.identity(entry)] = entry.origin
                out.append(entry)
            }
            diagnostics += builder.diagnostics
        }
        return out
    }

    static func identity(_ e: PriceEntry) -> PriceIdentity {
        PriceIdentity(model: e.model, provider: e.provider, serviceTier: e.serviceTier, minInputTokens: e.minInputTokens ?? 0,
                      effectiveFrom: e.effectiveFrom)
    }

    // MARK: [[price]]

    struct PriceIdentity: Hashable {
        var model: String
        var provider: String?
        var serviceTier: String?
        var minInputTokens: Int64
        var effectiveFrom: EpochMillis?
    }

    mutating func prices(_ tables: [TOMLTable]) -> [PriceEntry] {
        var out: [PriceEntry] = []
        var seen: [PriceIdentity: TOMLPosition] = [:]
        for t in tables {
            checkUnknown(t, path: "[[price]]", known: Self.known("price"))
            for k in Self.requiredKeys("price") { required(t, k, "[[price]] entry") }
            var ok = true
            let model = string(t, "model", "price.model")
            let provider = string(t, "provider", "price.provider")
            let input = price(t, "input")
            let output = price(t, "output")
            let cacheRead = price(t, "cache_read")
            let cacheWrite = price(t, "cache_write")
            let cacheWrite1h = price(t, "cache_write_1h")
            let reasoning = price(t, "reasoning")
            let tier = string(t, "service_tier", "price.service_tier")
            var minInput: Int64?
            if let (i, p) = integer(t, "min_input_tokens", "price.min_input_tokens") {
                if i < 0 { error(p, "`price.min_input_tokens` must be zero or more, not \(i)"); ok = false } else { minInput = i }
            }
            var effective: EpochMillis?
            if let v = t["effective_from"] {
                effective = effectiveFrom(v)
                if effective == nil { ok = false }
            }
            for k in ["provider", "cache_read", "cache_write", "cache_write_1h", "reasoning", "service_tier", "min_input_tokens"]
            where t[k] != nil {
                // Any invalid optional value keeps the entry out (its problem is already reported).
                switch k {
                case "provider": if provider == nil { ok = false }
                case "cache_read": if cacheRead == nil { ok = false }
                case "cache_write": if cacheWrite == nil { ok = false }
                case "cache_write_1h": if cacheWrite1h == nil { ok = false }
                case "reasoning": if reasoning == nil { ok = false }
                case "service_tier": if tier == nil { ok = false }
                default: break
                }
            }
            guard ok, let (m, _) = model, let input, let output else { continue }
            let entry = PriceEntry(model: m, provider: provider?.0, input: input, cacheRead: cacheRead,
                                   cacheWrite: cacheWrite, cacheWrite1h: cacheWrite1h, output: output,
                                   reasoning: reasoning, effectiveFrom: effective, serviceTier: tier?.0,
                                   minInputTokens: minInput, origin: "\(file):\(t.position.line)")
            let id = PriceIdentity(model: m, provider: entry.provider, serviceTier: entry.serviceTier,
                                   minInputTokens: minInput ?? 0, effectiveFrom: effective)
            if let first = seen[id] {
                error(t.position, "ambiguous price for model \"\(m)\": the [[price]] entry at line \(first.line) has the same "
                      + "model, provider, service_tier, min_input_tokens and effective_from")
                continue
            }
            seen[id] = t.position
            out.append(entry)
        }
        return out
    }

    mutating func effectiveFrom(_ v: TOMLValue) -> EpochMillis? {
        let name = "price.effective_from"
        switch v.kind {
        case .string(let s):
            if let ms = RFC3339.parse(s, allowDateOnly: true) { return ms }
            error(v.position, "`\(name)`: invalid date \"\(s)\" (expected a date such as 2024-10-01 or an RFC 3339 time "
                  + "such as 2024-10-01T00:00:00Z)")
        case .localDate(let s), .offsetDateTime(let s):
            if let ms = RFC3339.parse(s, allowDateOnly: true) { return ms }
            error(v.position, "`\(name)`: invalid date \(s)")
        case .localDateTime(let s):
            error(v.position, "`\(name)` \(s) has no time zone: add `Z` for UTC (\(s)Z) or an offset")
        default:
            error(v.position, "`\(name)` must be a date (2024-10-01) or an RFC 3339 time (2024-10-01T00:00:00Z), "
                  + "not \(v.typeDescription)")
        }
        return nil
    }

    // MARK: rules

    /// Names must be unique within one kind of rule.
    mutating func uniqueName(_ t: TOMLTable, _ kind: String, _ seen: inout [String: TOMLPosition]) -> String? {
        guard let (n, p) = string(t, "name", "\(kind).name") else { return nil }
        if let first = seen[n] {
            error(p, "duplicate \(kind) name \"\(n)\" (first used at line \(first.line))")
            return nil
        }
        seen[n] = p
        return n
    }

    /// An optional glob such as `owner` or `workflow`: nil when absent, `.some(nil)` when invalid.
    mutating func optionalString(_ t: TOMLTable, _ key: String, _ name: String, ok: inout Bool) -> String? {
        guard t[key] != nil else { return nil }
        guard let (s, _) = string(t, key, name) else { ok = false; return nil }
        return s
    }

    mutating func budgets(_ tables: [TOMLTable]) -> [BudgetRule] {
        var out: [BudgetRule] = []
        var names: [String: TOMLPosition] = [:]
        for t in tables {
            checkUnknown(t, path: "[[budget]]", known: Self.known("budget"))
            for k in Self.requiredKeys("budget") { required(t, k, "[[budget]] entry") }
            var ok = true
            let name = uniqueName(t, "budget", &names)
            let owner = optionalString(t, "owner", "budget.owner", ok: &ok)
            let workflow = optionalString(t, "workflow", "budget.workflow", ok: &ok)
            let period = period(t, "period", "budget.period")
            let amount = money(t, "amount_usd", "budget.amount_usd", .positive)
            var thresholds = [50, 80, 100]
            if let v = t["thresholds"] {
                if let list = thresholdList(v) { thresholds = list } else { ok = false }
            }
            var forecast = false
            if t["forecast"] != nil {
                if let b = bool(t, "forecast", "budget.forecast") { forecast = b } else { ok = false }
            }
            guard ok, let name, let period, let amount else { continue }
            out.append(BudgetRule(name: name, owner: owner, workflow: workflow, period: period, amount: amount,
                                  thresholds: thresholds, forecast: forecast))
        }
        return out
    }

    mutating func thresholdList(_ v: TOMLValue) -> [Int]? {
        let name = "budget.thresholds"
        guard let arr = v.array, !v.isArrayOfTables else {
            error(v.position, "`\(name)` must be an array of percentages such as [50, 80, 100], not \(v.typeDescription)")
            return nil
        }
        if arr.isEmpty {
            error(v.position, "`\(name)` must list at least one percentage (omit the key for [50, 80, 100])")
            return nil
        }
        var out: [Int] = []
        var ok = true
        var last: Int64?
        for el in arr {
            guard let i = el.integer else {
                error(el.position, "`\(name)` must contain whole percentages (integers), not \(el.typeDescription)")
                ok = false
                continue
            }
            if i < 1 || i > 1000 {
                error(el.position, "`\(name)`: \(i) is outside 1 to 1000 (percent of the budget)")
                ok = false
                continue
            }
            if let last, i <= last {
                error(el.position, "`\(name)` must be strictly ascending: \(i) comes after \(last)")
                ok = false
            }
            last = i
            out.append(Int(i))
        }
        return ok ? out : nil
    }

    mutating func spikes(_ tables: [TOMLTable]) -> [SpikeRule] {
        var out: [SpikeRule] = []
        var names: [String: TOMLPosition] = [:]
        for t in tables {
            checkUnknown(t, path: "[[spike]]", known: Self.known("spike"))
            for k in Self.requiredKeys("spike") { required(t, k, "[[spike]] entry") }
            var ok = true
            let name = uniqueName(t, "spike", &names)
            var by: SpikeDimension?
            if let (s, p) = string(t, "by", "spike.by") {
                by = SpikeDimension(rawValue: s)
                if by == nil {
                    var message = "`spike.by` must be \"workflow\" or \"owner\", not \"\(s)\""
                    if let sug = Suggest.closest(s, in: SpikeDimension.allCases.map(\.rawValue)) {
                        message += "; did you mean \"\(sug)\"?"
                    }
                    error(p, message)
                }
            }
            var window: DurationSpec?
            if let (d, p) = duration(t, "window", "spike.window") {
                if d.millis <= 0 { error(p, "`spike.window` must be longer than 0") } else { window = d }
            }
            var factor: Int64?
            if let v = t["factor"], let milli = exact(v, "spike.factor", scale: 3, unit: "the factor is kept in thousandths") {
                if milli <= 1000 {
                    error(v.position, "`spike.factor` must be greater than 1.0 (spend over factor x its trailing average), "
                          + "not \(v.text)")
                } else if milli > Int128(Int64.max) {
                    error(v.position, "`spike.factor` is too large")
                } else {
                    factor = Int64(milli)
                }
            }
            var minUSD = Money.zero
            if t["min_usd"] != nil {
                if let m = money(t, "min_usd", "spike.min_usd", .nonNegative) { minUSD = m } else { ok = false }
            }
            guard ok, let name, let by, let window, let factor else { continue }
            out.append(SpikeRule(name: name, by: by, window: window, factorMilli: factor, min: minUSD))
        }
        return out
    }

    mutating func outcomeLimits(_ tables: [TOMLTable]) -> [OutcomeLimitRule] {
        var out: [OutcomeLimitRule] = []
        var names: [String: TOMLPosition] = [:]
        for t in tables {
            checkUnknown(t, path: "[[outcome_limit]]", known: Self.known("outcome_limit"))
            for k in Self.requiredKeys("outcome_limit") { required(t, k, "[[outcome_limit]] entry") }
            var ok = true
            let name = uniqueName(t, "outcome_limit", &names)
            let workflow = optionalString(t, "workflow", "outcome_limit.workflow", ok: &ok)
            let owner = optionalString(t, "owner", "outcome_limit.owner", ok: &ok)
            let outcome = string(t, "outcome", "outcome_limit.outcome")?.0
            let maxCost = money(t, "max_cost_usd", "outcome_limit.max_cost_usd", .positive)
            var period = BudgetPeriod.day
            if t["period"] != nil {
                if let p = self.period(t, "period", "outcome_limit.period") { period = p } else { ok = false }
            }
            guard ok, let name, let outcome, let maxCost else { continue }
            out.append(OutcomeLimitRule(name: name, workflow: workflow, owner: owner, outcome: outcome, maxCost: maxCost,
                                        period: period))
        }
        return out
    }
}
