import TokenmeterTOML

/// How a running daemon takes a changed key on SIGHUP.
public enum ConfigReloadClass: String, Sendable, CaseIterable {
    /// Applied by the reload: the daemon uses the new value from the next batch on.
    case atOnce = "at once"
    /// The daemon keeps its running value (it shaped the Kafka clients, the files, the windows or the
    /// listener, all built once at start); a reload names the key in a "restart needed" warning.
    case restart
    /// Not read by `run` (only by another command, such as `report`): a reload has nothing to do.
    case notRun = "not read by run"
}

/// What a key's value is, as the reference names it.
public enum ConfigValueType: String, Sendable {
    case string
    case strings = "list of strings"
    case brokers = "string or list of strings"
    case topic = "topic name"
    case topics = "list of topic names"
    case duration
    case durations = "list of durations"
    case integer
    case boolean
    case size
    case usd = "number (USD)"
    case rate = "number (USD per 1M tokens)"
    case factor = "number"
    case date = "date or date-time"
    case percentages = "list of integers"
    case listen = "host:port"
    case path
    case choice = "word"
}

/// Whether a value is a secret, for printing and logging.
public enum ConfigSecrecy: Sendable {
    /// Shown as it is.
    case none
    /// A map whose entries are hidden (`<hidden>`) when their name says they hold a secret
    /// (`ConfigKeys.isSensitiveName`): a password written in the file itself.
    case sensitiveNames
    /// A map of paths: the files' contents are the secrets, read at start and never shown; the paths are.
    case fileContents
}

/// One key of the configuration file: what it is, its default, what a reload does with it, and how its
/// effective value reads as TOML. The table `ConfigKeys.sections` is the one list of keys: the unknown-key
/// check, `check-config --print`, the reload classes and docs/configuration-reference.md derive from it.
/// Reading and checking a value stays with `ConfigLoader`, which reports each problem at `FILE:LINE:COL`.
public struct ConfigKey: Sendable {
    /// The table the key is written in: `kafka`, or `price` for a key of each `[[price]]` entry.
    public let section: String
    public let name: String
    public let type: ConfigValueType
    /// For a key of a plain table; an entry of an array of tables follows its section's class.
    public let reload: ConfigReloadClass
    /// Checked by `run` before it connects (`StartupChecks`): a reload that changes it runs those checks
    /// on the new file, so that a problem the next start would stop on is said now.
    public let startChecked: Bool
    /// A key that each entry of an array of tables must have.
    public let required: Bool
    /// How the default reads when the key is unset (`the host name`), or a note after a default value
    /// (`"1s" with kafka.spend_topic`); for an entry key, its whole default (`= input`).
    public let defaultNote: String?
    /// A valid value other than the default, as TOML text: shown in the reference, and what the file that
    /// sets every key (`ConfigKeys.everyKeyTOML`) is built from.
    public let example: String
    /// What the key does and what is checked, in one line (Markdown).
    public let doc: String
    /// The effective value as TOML text, nil when unset. `index`: the entry, for an array of tables.
    let render: @Sendable (TokenmeterConfig, Int) -> String?
    /// Whether two configurations differ in this key (for an entry key: in the whole array).
    let differs: @Sendable (TokenmeterConfig, TokenmeterConfig) -> Bool
    /// Takes this key's value (for an entry key: the whole array) from the second configuration.
    let copy: @Sendable (inout TokenmeterConfig, TokenmeterConfig) -> Void

    /// `kafka.handover_timeout`, `price.input`.
    public var path: String { section + "." + name }

    /// The effective value as TOML text (`"15s"`, `100000`, `["1m", "1h"]`), nil when unset.
    public func value(in config: TokenmeterConfig, entry: Int = 0) -> String? { render(config, entry) }
}

/// One table of the configuration file.
public struct ConfigSection: Sendable {
    public enum Shape: Sendable {
        /// `[kafka]`: the keys of `keys`.
        case table
        /// `[kafka.properties]`: any name to a value, checked by the loader.
        case map
        /// `[[price]]`: entries, each with the keys of `keys`.
        case arrayOfTables
    }

    /// `kafka`, `kafka.properties`, `price`.
    public let name: String
    public let shape: Shape
    /// What the section is for (Markdown paragraphs, for the reference).
    public let doc: String
    public let keys: [ConfigKey]
    /// For a map or an array of tables, what a reload does with it as a whole.
    public let reload: ConfigReloadClass
    public let startChecked: Bool
    public let secrecy: ConfigSecrecy
    /// For a map: example entries (`"sasl.password" = "kafka-password"`).
    public let example: [String]
    /// A map's printed lines, given `$CREDENTIALS_DIRECTORY` (secret files' relative paths are resolved
    /// against it).
    let lines: @Sendable (TokenmeterConfig, _ credentialsDirectory: String?) -> [String]
    /// The number of entries of an array of tables.
    let count: @Sendable (TokenmeterConfig) -> Int
    /// A comment after an entry's `[[header]]` (where the entry was written).
    let entryComment: @Sendable (TokenmeterConfig, Int) -> String?
    let differs: @Sendable (TokenmeterConfig, TokenmeterConfig) -> Bool
    let copy: @Sendable (inout TokenmeterConfig, TokenmeterConfig) -> Void

    /// `[kafka]`, `[[price]]`.
    public var header: String { shape == .arrayOfTables ? "[[\(name)]]" : "[\(name)]" }

    static func table(_ name: String, doc: String = "", _ keys: [ConfigKey]) -> ConfigSection {
        ConfigSection(name: name, shape: .table, doc: doc, keys: keys, reload: .restart, startChecked: false,
                      secrecy: .none, example: [], lines: { _, _ in [] }, count: { _ in 1 }, entryComment: { _, _ in nil },
                      differs: { a, b in keys.contains { $0.differs(a, b) } },
                      copy: { c, new in for k in keys { k.copy(&c, new) } })
    }

    static func map(_ name: String, doc: String, _ keyPath: WritableKeyPath<TokenmeterConfig, [KeyValue]> & Sendable,
                    reload: ConfigReloadClass, startChecked: Bool = false, secrecy: ConfigSecrecy = .none,
                    example: [String], lines: @escaping @Sendable (TokenmeterConfig, String?) -> [String]) -> ConfigSection {
        ConfigSection(name: name, shape: .map, doc: doc, keys: [], reload: reload, startChecked: startChecked,
                      secrecy: secrecy, example: example, lines: lines, count: { $0[keyPath: keyPath].count },
                      entryComment: { _, _ in nil },
                      differs: { $0[keyPath: keyPath] != $1[keyPath: keyPath] },
                      copy: { $0[keyPath: keyPath] = $1[keyPath: keyPath] })
    }

    static func array<Element: Equatable & Sendable>(
        _ name: String, doc: String, _ keyPath: WritableKeyPath<TokenmeterConfig, [Element]> & Sendable,
        reload: ConfigReloadClass, entryComment: @escaping @Sendable (Element) -> String? = { _ in nil },
        _ keys: [ConfigKey]
    ) -> ConfigSection {
        ConfigSection(name: name, shape: .arrayOfTables, doc: doc, keys: keys, reload: reload, startChecked: false,
                      secrecy: .none, example: [], lines: { _, _ in [] }, count: { $0[keyPath: keyPath].count },
                      entryComment: { c, i in entryComment(c[keyPath: keyPath][i]) },
                      differs: { $0[keyPath: keyPath] != $1[keyPath: keyPath] },
                      copy: { $0[keyPath: keyPath] = $1[keyPath: keyPath] })
    }
}

/// How values read as TOML text.
enum Render {
    static func string(_ s: String) -> String? { TOMLText.string(s) }
    static func optional(_ s: String?) -> String? { s.map(TOMLText.string) }
    static func strings(_ list: [String]) -> String? { TOMLText.strings(list) }
    static func duration(_ d: DurationSpec) -> String? { TOMLText.string(d.label) }
    static func durations(_ list: [DurationSpec]) -> String? { TOMLText.strings(list.map(\.label)) }
    static func bool(_ b: Bool) -> String? { b ? "true" : "false" }
    static func int(_ n: Int) -> String? { String(n) }
    static func size(_ s: ByteSize?) -> String? { s.map { TOMLText.string($0.label) } }
    /// Every digit of femto-dollar precision, so that the amount reads back exactly.
    static func usd(_ m: Money) -> String? { m.decimalString(decimals: 15) }
    static func rate(_ p: PricePerMillion?) -> String? { p.map(\.description) }
    static func date(_ ms: EpochMillis?) -> String? {
        ms.map { TOMLText.string(RFC3339.format($0, fraction: $0 % 1000 != 0)) }
    }
}

/// The configuration's keys, one table per section, in the order of the file, `check-config --print` and
/// the reference.
public enum ConfigKeys {
    typealias Config = TokenmeterConfig

    static func key<T: Equatable & Sendable>(
        _ section: String, _ name: String, _ keyPath: WritableKeyPath<Config, T> & Sendable, _ type: ConfigValueType,
        _ reload: ConfigReloadClass, startChecked: Bool = false, note: String? = nil, example: String, _ doc: String,
        _ render: @escaping @Sendable (T) -> String?
    ) -> ConfigKey {
        ConfigKey(section: section, name: name, type: type, reload: reload, startChecked: startChecked, required: false,
                  defaultNote: note, example: example, doc: doc, render: { c, _ in render(c[keyPath: keyPath]) },
                  differs: { $0[keyPath: keyPath] != $1[keyPath: keyPath] },
                  copy: { $0[keyPath: keyPath] = $1[keyPath: keyPath] })
    }

    static func entry<Element: Equatable & Sendable, T>(
        _ section: String, _ name: String, _ list: WritableKeyPath<Config, [Element]> & Sendable,
        _ field: KeyPath<Element, T> & Sendable, _ type: ConfigValueType, required: Bool = false, note: String? = nil,
        example: String, _ doc: String, _ render: @escaping @Sendable (T) -> String?
    ) -> ConfigKey {
        ConfigKey(section: section, name: name, type: type, reload: .atOnce, startChecked: false, required: required,
                  defaultNote: note, example: example, doc: doc,
                  render: { c, i in render(c[keyPath: list][i][keyPath: field]) },
                  differs: { $0[keyPath: list] != $1[keyPath: list] },
                  copy: { $0[keyPath: list] = $1[keyPath: list] })
    }

    /// Every section, in file order.
    public static let sections: [ConfigSection] = [
        .table("kafka", [
            key("kafka", "brokers", \.kafka.brokers, .brokers, .restart, startChecked: true,
                note: "assumed by `replay`, `report` and `prices`; `check-config` and `run` require the key",
                example: #""k1.example.com:9092,k2.example.com:9092""#,
                "bootstrap servers: a string (`\"k1:9092,k2:9092\"`) or a list of strings, at least one, no repeats; "
                    + "`replay`, `report` and `prices` read a file without it",
                Render.string),
            key("kafka", "group_id", \.kafka.groupId, .string, .restart, startChecked: true, example: #""meter-b""#,
                "the consumer group; instances sharing it split the partitions ([scale-out.md](scale-out.md))",
                Render.string),
            key("kafka", "topics", \.kafka.topics, .topics, .restart, example: #"["usage-a", "usage-b"]"#,
                "the topics of usage and outcome events: at least one, no repeats, valid Kafka topic names (1 to 249 "
                    + "of letters, digits, `.`, `_`, `-`); an entry starting with `^` is a regular expression "
                    + "(librdkafka's pattern subscription)",
                Render.strings),
            key("kafka", "alerts_topic", \.kafka.alertsTopic, .topic, .restart, example: #""meter-alerts""#,
                "alerts are published here; must not be one of `topics` (alerts would be read back as events)",
                Render.string),
            key("kafka", "dead_letter_topic", \.kafka.deadLetterTopic, .topic, .restart,
                note: "none: bad input is only counted and logged", example: #""usage-dlq""#,
                "bad input is copied here with its reason; must differ from `topics` and `alerts_topic`",
                Render.optional),
            key("kafka", "changelog_topic", \.kafka.changelogTopic, .topic, .restart,
                note: "none: partition state in the local checkpoint only", example: #""meter-changelog""#,
                "scale-out: each usage partition's state is kept in this compacted topic, so that any instance can "
                    + "take a partition over; a topic of its own, which must exist ([scale-out.md](scale-out.md#topics))",
                Render.optional),
            key("kafka", "spend_topic", \.kafka.spendTopic, .topic, .restart,
                note: "none: rules judged per instance", example: #""meter-spend""#,
                "scale-out: budgets and the other rules judged over every instance's spend; needs `changelog_topic`; "
                    + "a topic of its own, which must exist. Makes `state.checkpoint_interval` default to `1s`",
                Render.optional),
            key("kafka", "handover_timeout", \.kafka.handoverTimeout, .duration, .restart, example: #""20s""#,
                "without a changelog: how long a newly assigned partition waits for its previous owner to hand it "
                    + "over before that owner is taken for dead; not negative; unused with `changelog_topic`",
                Render.duration),
            key("kafka", "static_membership", \.kafka.staticMembership, .boolean, .restart, example: "true",
                "static group membership: the instance name (`rollups.instance`) becomes the consumer's "
                    + "`group.instance.id`, so that a restarted instance takes its partitions back at once "
                    + "([running.md](running.md#static-group-membership-kafkastatic_membership))",
                Render.bool),
            key("kafka", "ready_grace", \.kafka.readyGrace, .duration, .restart, example: #""90s""#,
                "how long the instance may be without an assigned partition, or without a reachable broker, before "
                    + "`/-/ready` and `tokenmeter_ready` say it is not ready ([running.md](running.md#readiness)); not negative",
                Render.duration),
        ]),
        .map("kafka.properties", doc: """
            Any librdkafka property, passed through to the consumer and producers, after tokenmeter's own defaults
            (so a property set here wins): `"security.protocol" = "SASL_SSL"`, `"session.timeout.ms" = 6000`. Dotted
            names need no quotes (`security.protocol = "SASL_SSL"` is the same). Values are strings, integers or
            booleans. Refused, because tokenmeter manages them: `group.id` (use `group_id`), `bootstrap.servers` and
            `metadata.broker.list` (use `brokers`), `enable.auto.commit` and `enable.auto.offset.store` (offsets are
            stored and committed only after the state they cover is checkpointed), `group.instance.id` (use
            `static_membership`). `check-config --print` shows the value of a property whose name says it is
            secret (`password`, `secret`, `key`, `token`, `jaas`, `oauthbearer.config`) as `<hidden>`: keep such
            values in `[kafka.secret_files]`.
            """, \.kafka.properties, reload: .restart, startChecked: true, secrecy: .sensitiveNames,
             example: [#""socket.timeout.ms" = "30000""#, #""fetch.wait.max.ms" = "100""#],
             lines: { c, _ in
                 c.kafka.properties.map {
                     TOMLText.string($0.key) + " = " + TOMLText.string(ConfigKeys.isSensitiveName($0.key) ? "<hidden>" : $0.value)
                 }
             }),
        .map("kafka.secret_files", doc: """
            A librdkafka property mapped to a file that holds its value: `"sasl.password" = "kafka-password"`. The
            file is read when the daemon starts, once (a trailing newline is removed), and its content is never
            logged or shown (`check-config --print` shows the path and, in a comment, the file it reads). A relative
            path is resolved against `$CREDENTIALS_DIRECTORY` (systemd's `LoadCredential=`), an absolute one is used
            as is. The same property may not also be set in `[kafka.properties]`; managed properties are refused
            here too. What is checked: [configuration.md](configuration.md#secret-files-kafkasecret_files).
            """, \.kafka.secretFiles, reload: .restart, startChecked: true, secrecy: .fileContents,
             example: [#""sasl.password" = "kafka-password""#],
             lines: { c, credentials in
                 c.kafka.secretFiles.map { entry in
                     let whence = entry.value.hasPrefix("/") ? ""
                         : credentials.map { "from " + TOMLText.comment($0 + "/" + entry.value) + " " }
                         ?? "from $CREDENTIALS_DIRECTORY (not set here) "
                     return TOMLText.string(entry.key) + " = " + TOMLText.string(entry.value)
                         + "  # the value is read \(whence)at start, never shown"
                 }
             }),
        .map("kafka.input_formats", doc: """
            How the messages of a topic of `kafka.topics` are written, by topic name: `json` (events of
            [events.md](events.md), the default for a topic not listed), `otlp_proto` or `otlp_json` (OpenTelemetry
            traces as the Collector's Kafka exporter writes them, one `ExportTraceServiceRequest` per message: each
            LLM span becomes an event, [otlp.md](otlp.md)). Topic names often contain dots, so quote them
            (`"otlp_spans" = "otlp_proto"`); a pattern subscription's topics are JSON events.
            """, \.kafka.inputFormats, reload: .restart, example: [#""usage-b" = "otlp_proto""#],
             lines: { c, _ in c.kafka.inputFormats.map { TOMLText.string($0.key) + " = " + TOMLText.string($0.value) } }),
        .table("rollups", [
            key("rollups", "dir", \.rollups.dir, .path, .restart, startChecked: true, example: #""/srv/meter/rollups""#,
                "where rollup files are written ([rollups.md](rollups.md))", Render.string),
            key("rollups", "windows", \.rollups.windows, .durations, .restart, example: #"["5m", "1d", "7d"]"#,
                "tumbling window sizes, in event time: at least one; each a positive whole number of seconds that "
                    + "divides a day (`1m`, `5m`, `15m`, `1h`, `6h`, `1d`) or is a whole number of days (`7d`, aligned "
                    + "to 1970-01-01), so windows start at the same times every day; no two of the same length (`60m` "
                    + "and `1h`). The text is the window's label in the files",
                Render.durations),
            key("rollups", "grace", \.rollups.grace, .duration, .restart, example: #""45s""#,
                "how long a window waits for out-of-order events after its end; zero or more", Render.duration),
            key("rollups", "idle_close", \.rollups.idleClose, .duration, .restart, example: #""3m""#,
                "close windows by the wall clock once a partition has been quiet (and read to its end) this long; "
                    + "more than zero",
                Render.duration),
            key("rollups", "late_horizon", \.rollups.lateHorizon, .duration, .restart, example: #""3d""#,
                "events further behind their partition's stream time are dead letters (`too_late`); not shorter "
                    + "than `grace`",
                Render.duration),
            key("rollups", "max_future", \.rollups.maxFuture, .duration, .restart, example: #""10m""#,
                "events further ahead of the wall clock are dead letters (`bad_timestamp`): one producer with a "
                    + "skewed clock would otherwise close every window early; more than zero",
                Render.duration),
            key("rollups", "tags", \.rollups.tags, .strings, .restart, example: #"["environment", "region"]"#,
                "event tag names that become rollup dimensions (each distinct value makes its own rows); no repeats",
                Render.strings),
            key("rollups", "instance", \.rollups.instance, .string, .restart, startChecked: true,
                note: "the host name", example: #""meter-b""#,
                "this instance's name: in rollup file names (without a changelog), commit metadata, the Kafka "
                    + "client id (`tokenmeter-<instance>`) and logs. Letters, digits, `.`, `_`, `-`, not starting "
                    + "with `.`; must differ between the instances of a group",
                Render.optional),
            key("rollups", "max_keys_per_window", \.rollups.maxKeysPerWindow, .integer, .restart, example: "5000",
                "distinct rows one window of one partition may hold; further keys are counted under `__overflow__` "
                    + "(totals stay right, memory stays bounded); at least 1",
                Render.int),
        ]),
        .table("state", [
            key("state", "dir", \.state.dir, .path, .restart, startChecked: true, example: #""/srv/meter/state""#,
                "the checkpoint (`checkpoint.bin`, `checkpoint.log`, dedup ids in `dedup/`) and the alert outbox (`outbox/`)", Render.string),
            key("state", "checkpoint_interval", \.state.checkpointInterval, .duration, .atOnce,
                note: "`\"1s\"` with `kafka.spend_topic`", example: #""2s""#,
                "how often open windows and offsets are checkpointed and offsets committed; with a changelog also "
                    + "how often partition state goes to it, and so the alert latency across instances; more than zero",
                Render.duration),
            key("state", "max_memory", \.state.maxMemory, .size, .atOnce, note: "none: no ceiling", example: #""2GiB""#,
                "a ceiling on the state the daemon holds (open rows, dedup ids, interned names, by the model of "
                    + "[memory.md](memory.md)): above it consuming pauses while windows close by the wall clock, until "
                    + "the state is under 90%. A whole number and `B`, `KiB`, `MiB`, `GiB`, `TiB`, `KB`, `MB`, `GB` "
                    + "or `TB`, above 0",
                Render.size),
        ]),
        .table("dedup", [
            key("dedup", "window", \.dedup.window, .duration, .restart, example: #""30m""#,
                "a repeated event `id` within this span of event time is counted once, per partition; `\"0s\"` turns "
                    + "de-duplication off. About 40 to 60 bytes of memory per distinct id in the span",
                Render.duration),
        ]),
        .table("http", [
            key("http", "listen", \.http.listen, .listen, .restart, startChecked: true, example: #""0.0.0.0:9465""#,
                "`/metrics`, `/-/healthy`, `/-/ready` ([http-endpoints.md](http-endpoints.md)): `host:port` or "
                    + "`[v6]:port`, port 0 to 65535 (0: a free port, logged at start); `0.0.0.0:9464` for every interface",
                Render.string),
        ]),
        .table("focus", doc: """
            Read only by `tokenmeter report --format focus` ([reports.md](reports.md)); `--billing-account-id` and
            `--billing-account-name` override it for one export.
            """, [
            key("focus", "billing_account_id", \.focus.billingAccountId, .string, .notRun, example: #""acct-7""#,
                "`BillingAccountId` on every FOCUS line (and the prefix of its `InvoiceId`); at most 256 bytes, no "
                    + "control characters",
                Render.string),
            key("focus", "billing_account_name", \.focus.billingAccountName, .string, .notRun,
                example: #""Example \"LLM\" spend""#, "`BillingAccountName`; the same checks", Render.string),
        ]),
        .table("metrics", doc: """
            The spend metrics on `/metrics` ([metrics.md](metrics.md)). A reload that changes them logs that they
            take effect at the next restart.
            """, [
            key("metrics", "dimensions", \.metrics.dimensions, .strings, .restart, example: #"["owner", "model_family"]"#,
                "the labels of the `tokenmeter_spend_*` counters, in this order: any of `owner`, `workflow`, `model`, "
                    + "`provider`, `model_family`, `tag:NAME` (NAME one of `rollups.tags`; the label is `tag_NAME` with "
                    + "characters other than letters, digits and `_` written `_`); no repeats; `[]` for one unlabelled series",
                { Render.strings($0.map(\.name)) }),
            key("metrics", "max_series", \.metrics.maxSeries, .integer, .restart, example: "2000",
                "label sets the spend counters may have, 1 to 100,000; the values of further ones go to one series "
                    + "whose labels are all `__other__`, counted by `tokenmeter_spend_overflow_events_total`",
                Render.int),
        ]),
        .map("provider_prefixes", doc: """
            The provider of an event that names none, from its model name: the longest matching prefix (ASCII case
            ignored). Entries here are added to the built-in table (an entry with a built-in prefix replaces it):
            `"llama-" = "meta"`. Prefixes often contain dots, so quote them (`"us.anthropic." = "bedrock"`); both
            sides 1 to 128 bytes, no control characters. `check-config --print` shows the file's entries, then the
            built-in ones as comments.
            """, \.providerPrefixes, reload: .restart, example: [#""llama-" = "meta""#],
             lines: { c, _ in
                 let own = c.providerPrefixes.map { TOMLText.string($0.key) + " = " + TOMLText.string($0.value) }
                 let replaced = Set(c.providerPrefixes.map { ProviderPrefixes.folded($0.key) })
                 let builtIn = ProviderPrefixes.builtIn.filter { !replaced.contains(ProviderPrefixes.folded($0.key)) }
                 return own + ["# built in:"] + builtIn.map { "# " + TOMLText.string($0.key) + " = " + TOMLText.string($0.value) }
             }),
        .table("otlp", doc: """
            How a span of an OTLP topic (`kafka.input_formats`) becomes an event ([otlp.md](otlp.md)). Each list is
            tried in order, the first attribute found with a non-empty string value wins; under one name the span's
            own attribute beats its resource's. A span none of whose attributes names a workflow (or an owner) is
            rejected (`missing_field`), the rest of its message is counted.
            """, [
            key("otlp", "workflow_attributes", \.otlp.workflowAttributes, .strings, .restart,
                example: #"["gen_ai.agent.name", "service.name", "gen_ai.workflow.name"]"#,
                "the span or resource attributes that name the workflow, first found wins; 1 to 16 names, no repeats",
                Render.strings),
            key("otlp", "owner_attributes", \.otlp.ownerAttributes, .strings, .restart,
                example: #"["team", "service.namespace", "service.name"]"#,
                "the span or resource attributes that name the owner, first found wins; 1 to 16 names, no repeats",
                Render.strings),
        ]),
        .map("otlp.tags", doc: """
            A tag (one of `rollups.tags`) mapped to the span or resource attribute that holds its value:
            `environment = "deployment.environment"`. String, integer, double and boolean values are kept as text
            (at most 256 bytes); at most 16 tags.
            """, \.otlp.tags, reload: .restart, example: [#"environment = "deployment.environment""#],
             lines: { c, _ in c.otlp.tags.map { TOMLText.string($0.key) + " = " + TOMLText.string($0.value) } }),
        .array("price", doc: """
            One per price entry, USD per 1 million tokens. Which entry applies to a request, and where to get
            prices: [prices.md](prices.md). Two entries with the same `model`, `provider`, `service_tier`,
            `min_input_tokens` and `effective_from` are an error (which price applies would be ambiguous).
            """, \.prices, reload: .atOnce, entryComment: { $0.origin.isEmpty ? nil : TOMLText.comment($0.origin) }, [
            entry("price", "model", \.prices, \.model, .string, required: true, example: #""gpt-x*""#,
                  "an exact model name or a glob (`*` any run, `?` one character)", Render.string),
            entry("price", "provider", \.prices, \.provider, .string, note: "any provider", example: #""openai""#,
                  "the entry applies only to events of this provider", Render.optional),
            entry("price", "input", \.prices, \.input, .rate, required: true, example: "2.5",
                  "the rate of input tokens that are neither cache reads nor writes; zero or more, at most 9 decimals",
                  { Render.rate($0) }),
            entry("price", "output", \.prices, \.output, .rate, required: true, example: "10",
                  "the rate of output tokens that are not reasoning", { Render.rate($0) }),
            entry("price", "cache_read", \.prices, \.cacheRead, .rate, note: "= `input`", example: "1.25",
                  "the rate of cache reads", Render.rate),
            entry("price", "cache_write", \.prices, \.cacheWrite, .rate, note: "= `input`", example: "3.125",
                  "the rate of cache writes", Render.rate),
            entry("price", "cache_write_1h", \.prices, \.cacheWrite1h, .rate, note: "= `cache_write`", example: "5",
                  "the rate of 1-hour cache writes (Anthropic)", Render.rate),
            entry("price", "reasoning", \.prices, \.reasoning, .rate, note: "= `output`", example: "12",
                  "the rate of reasoning tokens", Render.rate),
            entry("price", "effective_from", \.prices, \.effectiveFrom, .date, note: "none: from the beginning of time", example: #""2026-01-01""#,
                  "a date (`2025-06-10`) or an RFC 3339 time with a zone; the entry applies to events from then on. "
                      + "A date-time without a zone is an error",
                  Render.date),
            entry("price", "service_tier", \.prices, \.serviceTier, .string, note: "any tier", example: #""priority""#,
                  "the entry applies only to events of this tier (`priority`, `flex`, `batch`; an event with none is "
                      + "`standard`)",
                  Render.optional),
            entry("price", "min_input_tokens", \.prices, \.minInputTokens, .integer, note: "0", example: "200000",
                  "a long-context rate: the entry applies only to requests with at least this many input tokens "
                      + "(cache included); zero or more",
                  { $0.map(String.init) }),
        ]),
        .array("budget", doc: "One per budget. How each rule is judged and what its alerts hold: "
                   + "[alerts-reference.md](alerts-reference.md).", \.budgets, reload: .atOnce, [
            entry("budget", "name", \.budgets, \.name, .string, required: true, example: #""team-month""#,
                  "the rule's name, unique among budgets; it is the alerts' `rule`", Render.string),
            entry("budget", "owner", \.budgets, \.owner, .string, note: "every owner", example: #""team-*""#,
                  "the owners in scope, a glob; with `workflow`: spend matching both", Render.optional),
            entry("budget", "workflow", \.budgets, \.workflow, .string, note: "every workflow", example: #""chat""#,
                  "the workflows in scope, a glob", Render.optional),
            entry("budget", "period", \.budgets, \.period, .choice, required: true, example: #""month""#,
                  "`hour`, `day`, `week` (ISO, from Monday) or `month`: calendar periods in UTC of each event's time",
                  { Render.string($0.rawValue) }),
            entry("budget", "amount_usd", \.budgets, \.amount, .usd, required: true, example: "1500.5",
                  "the budget in USD for each period; more than zero", Render.usd),
            entry("budget", "thresholds", \.budgets, \.thresholds, .percentages, note: "`[50, 80, 100]`",
                  example: "[25, 75, 100]",
                  "percentages of `amount_usd`, whole numbers from 1 to 1000, strictly ascending: a "
                      + "`budget_threshold` alert at each",
                  { "[" + $0.map(String.init).joined(separator: ", ") + "]" }),
            entry("budget", "forecast", \.budgets, \.forecast, .boolean, note: "`false`", example: "true",
                  "also a `budget_forecast` alert when the period's projected spend reaches 100%", Render.bool),
        ]),
        .array("spike", doc: "One per spike rule.", \.spikes, reload: .atOnce, [
            entry("spike", "name", \.spikes, \.name, .string, required: true, example: #""wf-spike""#,
                  "unique among spike rules", Render.string),
            entry("spike", "by", \.spikes, \.by, .choice, required: true, example: #""owner""#,
                  "`workflow` or `owner`: each one's spend is judged against its own baseline",
                  { Render.string($0.rawValue) }),
            entry("spike", "window", \.spikes, \.window, .duration, required: true, example: #""10m""#,
                  "the length of the windows compared; more than zero", Render.duration),
            entry("spike", "factor", \.spikes, \.factorMilli, .factor, required: true, example: "2.5",
                  "alert when a window's spend is over `factor` x the baseline; more than 1.0, at most 3 decimals",
                  { FixedDecimal.format(Int128($0), scale: 3, maxDecimals: 3, minDecimals: 1) }),
            entry("spike", "min_usd", \.spikes, \.min, .usd, note: "0", example: "0.75",
                  "and over this amount, so that tiny spends never alert; zero or more", Render.usd),
        ]),
        .array("outcome_limit", doc: "One per unit-cost limit.", \.outcomeLimits, reload: .atOnce, [
            entry("outcome_limit", "name", \.outcomeLimits, \.name, .string, required: true, example: #""invoice-cost""#,
                  "unique among outcome limits", Render.string),
            entry("outcome_limit", "workflow", \.outcomeLimits, \.workflow, .string, note: "every workflow",
                  example: #""invoices""#, "the workflows in scope, a glob", Render.optional),
            entry("outcome_limit", "owner", \.outcomeLimits, \.owner, .string, note: "every owner",
                  example: #""finance""#, "the owners in scope, a glob", Render.optional),
            entry("outcome_limit", "outcome", \.outcomeLimits, \.outcome, .string, required: true,
                  example: #""invoice_processed""#, "the outcome name whose count divides the spend", Render.string),
            entry("outcome_limit", "max_cost_usd", \.outcomeLimits, \.maxCost, .usd, required: true, example: "0.02",
                  "the highest acceptable cost per outcome; more than zero", Render.usd),
            entry("outcome_limit", "period", \.outcomeLimits, \.period, .choice, note: "`day`", example: #""week""#,
                  "`hour`, `day`, `week` or `month`", { Render.string($0.rawValue) }),
        ]),
    ]

    /// Every key of a plain table and of an array of tables, in file order (maps have no fixed keys).
    public static var keys: [ConfigKey] { sections.flatMap(\.keys) }

    public static func section(_ name: String) -> ConfigSection? { sections.first { $0.name == name } }

    /// A librdkafka property whose name says its value is a secret: `check-config --print` hides it and
    /// librdkafka's messages are cleaned of it.
    public static func isSensitiveName(_ name: String) -> Bool {
        let n = name.lowercased()
        return ["password", "secret", "key", "token", "oauthbearer.config", "jaas"].contains { n.contains($0) }
    }
}

/// A key, or a whole map or array of tables, whose value differs between two configurations.
public struct ConfigChange: Sendable, Equatable {
    /// `kafka.handover_timeout`; a map or an array of tables by its name (`kafka.properties`, `price`).
    public var path: String
    public var reload: ConfigReloadClass
    /// Checked by `run` before it connects (see `ConfigKey.startChecked`).
    public var startChecked: Bool
}

extension ConfigKeys {
    /// What differs from `old` to `new`, in file order: what a reload applies, and what waits for a restart.
    public static func changes(from old: TokenmeterConfig, to new: TokenmeterConfig) -> [ConfigChange] {
        var out: [ConfigChange] = []
        for section in sections {
            switch section.shape {
            case .table:
                for key in section.keys where key.differs(old, new) {
                    out.append(ConfigChange(path: key.path, reload: key.reload, startChecked: key.startChecked))
                }
            case .map, .arrayOfTables:
                if section.differs(old, new) {
                    out.append(ConfigChange(path: section.name, reload: section.reload, startChecked: section.startChecked))
                }
            }
        }
        return out
    }

    /// `current` with every key that a reload applies at once taken from `new`; the others keep the values
    /// the daemon started with.
    public static func applyingReload(_ current: TokenmeterConfig, from new: TokenmeterConfig) -> TokenmeterConfig {
        var config = current
        for section in sections {
            switch section.shape {
            case .table:
                for key in section.keys where key.reload == .atOnce { key.copy(&config, new) }
            case .map, .arrayOfTables:
                if section.reload == .atOnce { section.copy(&config, new) }
            }
        }
        return config
    }

    /// A file that sets every key of the table to its example (and each map to its example entries, each
    /// array of tables to one entry): read, it differs from the defaults in every key.
    public static func everyKeyTOML() -> String {
        var out = ""
        for section in sections {
            out += "\(section.header)\n"
            switch section.shape {
            case .table, .arrayOfTables:
                for key in section.keys { out += "\(key.name) = \(key.example)\n" }
            case .map:
                for line in section.example { out += line + "\n" }
            }
            out += "\n"
        }
        return out
    }
}
