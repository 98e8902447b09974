/// The validated configuration (contract section 5). Built only by `ConfigLoader`, which reports every
/// problem as `FILE:LINE:COL: error: ...`; everything downstream can trust these values.
public struct TokenmeterConfig: Sendable, Equatable {
    public var kafka: KafkaSettings
    public var rollups: RollupSettings
    public var state: StateSettings
    public var dedup: DedupSettings
    public var http: HTTPSettings
    public var prices: [PriceEntry]
    public var budgets: [BudgetRule]
    public var spikes: [SpikeRule]
    public var outcomeLimits: [OutcomeLimitRule]
    /// Only read by `report --format focus`.
    public var focus = FocusSettings()
    /// Where the file set the values checked at start (see `ConfigOrigins`); ignored by `==`.
    public var origins = ConfigOrigins()
    /// `[provider_prefixes]`: model-name prefixes (key) that name a provider (value), added to the built-in
    /// table of `ProviderPrefixes`, in file order. Added to the contract's keys.
    public var providerPrefixes: [KeyValue] = []
    /// `[metrics]`: the labels and the series cap of the spend metrics on /metrics. Added to the contract's keys.
    public var metrics = MetricsSettings()
    /// `[otlp]`: how a span of an OTLP trace topic (`kafka.input_formats`) becomes an event: which attributes
    /// name its workflow, owner and tags. Added to the contract's keys.
    public var otlp = OTLPSettings()

    public init(kafka: KafkaSettings = .init(), rollups: RollupSettings = .init(), state: StateSettings = .init(),
                dedup: DedupSettings = .init(), http: HTTPSettings = .init(), prices: [PriceEntry] = [],
                budgets: [BudgetRule] = [], spikes: [SpikeRule] = [], outcomeLimits: [OutcomeLimitRule] = []) {
        self.kafka = kafka; self.rollups = rollups; self.state = state; self.dedup = dedup; self.http = http
        self.prices = prices; self.budgets = budgets; self.spikes = spikes; self.outcomeLimits = outcomeLimits
    }
}

public struct KafkaSettings: Sendable, Equatable {
    public var brokers: String = "127.0.0.1:9092"
    public var groupId: String = "tokenmeter"
    public var topics: [String] = ["llm-usage"]
    public var alertsTopic: String = "llm-alerts"
    public var deadLetterTopic: String? = nil
    /// librdkafka properties passed through, in file order.
    public var properties: [KeyValue] = []
    /// librdkafka property name -> file whose contents (trailing newline removed) is the value. Never logged.
    public var secretFiles: [KeyValue] = []
    /// How long a newly assigned partition waits for its previous owner to hand it over (see
    /// docs/scale-out.md). Added to the contract's keys.
    public var handoverTimeout: DurationSpec = DurationSpec(millis: 15_000, label: "15s")
    public var changelogTopic: String? = nil
    public var spendTopic: String? = nil
    /// Static group membership: `group.instance.id` = the instance name (`rollups.instance`), so that a
    /// restarted instance takes its partitions back at once instead of after the session timeout (see
    /// docs/running.md for the trade-offs). Added to the contract's keys.
    public var staticMembership: Bool = false
    /// How long the instance may be without an assigned partition, or without a reachable broker, before
    /// /-/ready and `tokenmeter_ready` say it is not ready. Added to the contract's keys.
    public var readyGrace: DurationSpec = DurationSpec(millis: 60_000, label: "60s")
    /// `[kafka.input_formats]`: topic name -> how its messages are written (`InputFormat`), in file order.
    /// A topic not listed holds JSON events. Added to the contract's keys.
    public var inputFormats: [KeyValue] = []
    public init() {}

    /// How the messages of `topic` are written.
    public func inputFormat(of topic: String) -> InputFormat {
        inputFormats.last { $0.key == topic }.flatMap { InputFormat(rawValue: $0.value) } ?? .json
    }
}

/// How the messages of a topic are written: JSON events (contract section 1), or OpenTelemetry traces as
/// the Collector's Kafka exporter writes them (one `ExportTraceServiceRequest` per message), in its
/// protobuf or its JSON encoding. See docs/otlp.md.
public enum InputFormat: String, Sendable, CaseIterable {
    case json
    case otlpProto = "otlp_proto"
    case otlpJSON = "otlp_json"

    public var isTraces: Bool { self != .json }
}

/// `[otlp]`: which span or resource attributes name an LLM span's workflow, owner and tags. For each list,
/// the first name found wins; under one name a span's own attribute beats its resource's.
public struct OTLPSettings: Sendable, Equatable {
    public var workflowAttributes: [String] = ["gen_ai.agent.name", "service.name"]
    public var ownerAttributes: [String] = ["team", "service.namespace"]
    /// `[otlp.tags]`: tag name (one of `rollups.tags`) -> the attribute that holds its value.
    public var tags: [KeyValue] = []
    /// Most names a list may hold: each is compared with every attribute of every span.
    public static let maxAttributes = 16
    public init() {}
}

/// The spend metrics' labels (`metrics.dimensions`) and how many label sets they may have
/// (`metrics.max_series`; further ones are counted under `__other__`). See docs/metrics.md.
public struct MetricsSettings: Sendable, Equatable {
    public var dimensions: [SpendDimension] = [.owner]
    public var maxSeries: Int = 1_000
    public init() {}
}

/// One label of the spend metrics: an event field, the model's family (`ModelFamily`), or a configured tag.
public enum SpendDimension: Sendable, Equatable, Hashable {
    case workflow, owner, model, provider, modelFamily
    case tag(String)

    public init?(_ text: String) {
        switch text {
        case "workflow": self = .workflow
        case "owner": self = .owner
        case "model": self = .model
        case "provider": self = .provider
        case "model_family": self = .modelFamily
        default:
            guard text.hasPrefix("tag:"), text.count > 4 else { return nil }
            self = .tag(String(text.dropFirst(4)))
        }
    }

    /// As written in the configuration.
    public var name: String {
        switch self {
        case .workflow: "workflow"
        case .owner: "owner"
        case .model: "model"
        case .provider: "provider"
        case .modelFamily: "model_family"
        case .tag(let t): "tag:\(t)"
        }
    }

    /// The Prometheus label name: the dimension's name, a tag as `tag_<name>` with every character other
    /// than a letter, digit or `_` written `_`.
    public var labelName: String {
        guard case .tag(let t) = self else { return name }
        return "tag_" + String(t.unicodeScalars.map { s -> Character in
            (s.isASCII && (s.properties.isAlphabetic || ("0"..."9").contains(s))) || s == "_" ? Character(s) : "_"
        })
    }
}

public struct KeyValue: Sendable, Equatable {
    public var key: String
    public var value: String
    public init(_ key: String, _ value: String) { self.key = key; self.value = value }
}

public struct RollupSettings: Sendable, Equatable {
    public var dir: String = "/var/lib/tokenmeter/rollups"
    public var windows: [DurationSpec] = [DurationSpec(millis: 60_000, label: "1m"),
                                          DurationSpec(millis: 3_600_000, label: "1h"),
                                          DurationSpec(millis: 86_400_000, label: "1d")]
    public var grace: DurationSpec = DurationSpec(millis: 30_000, label: "30s")
    public var idleClose: DurationSpec = DurationSpec(millis: 120_000, label: "2m")
    public var lateHorizon: DurationSpec = DurationSpec(millis: 7 * 86_400_000, label: "7d")
    /// How far ahead of the wall clock an event time may be. One event from a producer with a skewed clock
    /// would otherwise move its partition's stream time ahead: every window would close early and every
    /// later event would be late until the wall clock caught up. Added to the contract's keys.
    public var maxFuture: DurationSpec = DurationSpec(millis: 300_000, label: "5m")
    public var tags: [String] = []
    /// This instance's name in rollup file names (`<window start>-<instance>-p<partition>.jsonl`).
    /// Default: the host name. Added to the contract's keys.
    public var instance: String? = nil
    /// Distinct rows one window of one partition may hold; further keys are counted under `__overflow__`
    /// so that a cardinality explosion (a tag with a request id in it, say) cannot exhaust memory.
    /// Added to the contract's keys.
    public var maxKeysPerWindow: Int = 100_000
    public init() {}
}

public struct StateSettings: Sendable, Equatable {
    public var dir: String = "/var/lib/tokenmeter/state"
    /// How often open windows and offsets are checkpointed and offsets committed. Added to the contract's keys.
    public var checkpointInterval: DurationSpec = DurationSpec(millis: 5_000, label: "5s")
    /// A ceiling on the state the daemon holds (open rows, dedup ids, interned names, by the memory model in
    /// docs/memory.md): above it consuming pauses until closing windows brings it under 90%. None: no
    /// ceiling. Added to the contract's keys.
    public var maxMemory: ByteSize? = nil
    public init() {}
}

public struct DedupSettings: Sendable, Equatable {
    public var window: DurationSpec = DurationSpec(millis: 3_600_000, label: "1h")
    public init() {}
}

/// `[focus]`: the billing account of the FOCUS export (`report --format focus`). Added to the contract's keys.
public struct FocusSettings: Sendable, Equatable {
    public static let defaultAccountId = "tokenmeter"
    public static let defaultAccountName = "LLM usage metered by tokenmeter"
    public static let maxLength = 256
    public var billingAccountId: String = FocusSettings.defaultAccountId
    public var billingAccountName: String = FocusSettings.defaultAccountName
    public init() {}

    /// Why a billing account id or name cannot be used, or nil.
    public static func problem(_ s: String) -> String? {
        if s.utf8.count > maxLength { return "is longer than \(maxLength) bytes" }
        if s.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) { return "contains a control character" }
        return nil
    }
}

public struct HTTPSettings: Sendable, Equatable {
    public var listen: String = "127.0.0.1:9464"
    public init() {}
}

/// One `[[price]]` entry: USD per 1M tokens, kept as exact nano-dollars.
public struct PriceEntry: Sendable, Equatable {
    /// Exact model name or a glob (`*`, `?`).
    public var model: String
    public var provider: String?
    public var input: PricePerMillion
    public var cacheRead: PricePerMillion?
    public var cacheWrite: PricePerMillion?
    public var cacheWrite1h: PricePerMillion?
    public var output: PricePerMillion
    public var reasoning: PricePerMillion?
    public var effectiveFrom: EpochMillis?
    public var serviceTier: String?
    public var minInputTokens: Int64?
    /// Where the entry was written (`FILE:LINE`), for `prices check` explanations.
    public var origin: String

    public init(model: String, provider: String? = nil, input: PricePerMillion, cacheRead: PricePerMillion? = nil,
                cacheWrite: PricePerMillion? = nil, cacheWrite1h: PricePerMillion? = nil, output: PricePerMillion,
                reasoning: PricePerMillion? = nil, effectiveFrom: EpochMillis? = nil, serviceTier: String? = nil,
                minInputTokens: Int64? = nil, origin: String = "") {
        self.model = model; self.provider = provider; self.input = input; self.cacheRead = cacheRead
        self.cacheWrite = cacheWrite; self.cacheWrite1h = cacheWrite1h; self.output = output
        self.reasoning = reasoning; self.effectiveFrom = effectiveFrom; self.serviceTier = serviceTier
        self.minInputTokens = minInputTokens; self.origin = origin
    }
}

public enum BudgetPeriod: String, Sendable, Equatable, CaseIterable {
    case hour, day, week, month
}

public struct BudgetRule: Sendable, Equatable {
    public var name: String
    public var owner: String?
    public var workflow: String?
    public var period: BudgetPeriod
    public var amount: Money
    /// Percentages, ascending, e.g. [50, 80, 100].
    public var thresholds: [Int]
    public var forecast: Bool

    public init(name: String, owner: String? = nil, workflow: String? = nil, period: BudgetPeriod, amount: Money,
                thresholds: [Int], forecast: Bool) {
        self.name = name; self.owner = owner; self.workflow = workflow; self.period = period
        self.amount = amount; self.thresholds = thresholds; self.forecast = forecast
    }
}

public enum SpikeDimension: String, Sendable, Equatable, CaseIterable {
    case workflow, owner
}

public struct SpikeRule: Sendable, Equatable {
    public var name: String
    public var by: SpikeDimension
    public var window: DurationSpec
    /// Kept as text-exact thousandths: `3.0` is 3000.
    public var factorMilli: Int64
    public var min: Money

    public init(name: String, by: SpikeDimension, window: DurationSpec, factorMilli: Int64, min: Money) {
        self.name = name; self.by = by; self.window = window; self.factorMilli = factorMilli; self.min = min
    }
}

public struct OutcomeLimitRule: Sendable, Equatable {
    public var name: String
    public var workflow: String?
    public var owner: String?
    public var outcome: String
    public var maxCost: Money
    public var period: BudgetPeriod

    public init(name: String, workflow: String? = nil, owner: String? = nil, outcome: String, maxCost: Money,
                period: BudgetPeriod) {
        self.name = name; self.workflow = workflow; self.owner = owner; self.outcome = outcome
        self.maxCost = maxCost; self.period = period
    }
}
