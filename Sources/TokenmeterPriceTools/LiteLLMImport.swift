import TokenmeterCore
import TokenmeterTOML

/// Reads LiteLLM's `model_prices_and_context_window.json` (an object of model name -> object) and turns
/// its per-token USD prices into `[[price]]` entries (USD per 1M tokens), for `tokenmeter prices import`.
///
/// Exactness: every price is read from the JSON number's text with `FixedDecimal` (never a Double) and
/// multiplied by 10^6 exactly: USD per token scaled by 10^15 is nano-dollars per 1M tokens, the unit of
/// `PricePerMillion`. A price with more precision than that (below 10^-15 USD per token) cannot be written
/// exactly; it is not rounded: the whole model is skipped and said so.
///
/// What is read, per model object:
/// - `litellm_provider` -> `provider`, mapped to the contract's names: `openai` and `text-completion-openai`
///   -> `openai`; `anthropic` -> `anthropic`; `gemini` and `vertex_ai*` -> `google`; `bedrock*` ->
///   `bedrock`; `azure*` -> `azure`; any other name is kept as LiteLLM spells it.
/// - `mode`: only `chat`, `completion` and `responses` models are imported (a missing `mode` counts as
///   chat when the model has both token prices); `embedding`, `image_generation`, `audio_*`, `rerank`,
///   `moderation`, `search`, ... are skipped: tokenmeter prices only input/output tokens of generation calls.
/// - the price fields, `<base>[_above_<N>k_tokens][_<tier>]`, with these bases:
///   `input_cost_per_token` -> `input`, `output_cost_per_token` -> `output`,
///   `cache_read_input_token_cost` -> `cache_read`, `cache_creation_input_token_cost` -> `cache_write`,
///   `cache_creation_input_token_cost_above_1hr` -> `cache_write_1h`,
///   `output_cost_per_reasoning_token` -> `reasoning`;
///   tiers `_priority` -> `service_tier = "priority"`, `_flex` -> `"flex"`, `_batches` -> `"batch"`.
///   Each distinct (above_N, tier) found becomes its own entry. LiteLLM applies an `above_Nk_tokens` rate when
///   the prompt has MORE than N*1000 tokens (as the providers bill: "prompts > 200k tokens"), so the entry
///   gets `min_input_tokens = N*1000 + 1` (`min_input_tokens` means "at least").
///   A field a tier/long-context entry lacks is taken from, in order: the same long-context group without
///   tier, the same tier without long context, the base entry; a field none of them has is left out, so the
///   contract's fallbacks apply (`cache_read`/`cache_write` = `input`, `reasoning` = `output`), as in LiteLLM.
///   Exception: an inherited rate that equals the rate it falls back to where it comes from (a `reasoning`
///   equal to `output`, a `cache_read` equal to `input`, ...) while this entry sets that rate itself is
///   left out, so that it follows this entry's own rate (Gemini's reasoning above 200k is its output rate
///   above 200k, not the short-context output rate).
/// - The model name: the key, without a leading `<provider>/` routing prefix when that prefix is the
///   model's `litellm_provider` (or its family: `vertex_ai/` for `vertex_ai-language-models`, `bedrock/` for
///   `bedrock_converse`): providers report `gemini-2.5-pro`, not `gemini/gemini-2.5-pro`. Two keys that
///   end up as the same (model, provider, tier, min_input_tokens) are imported once: the key without a
///   prefix wins, then the first in sorted order; the others are noted in the provenance comment.
///   Names containing `*` or `?` are skipped (they would be globs).
///
/// Not read: every other field. In particular per-character, per-second, per-image, per-pixel, per-query,
/// per-request and per-session prices; audio/image/video token prices (`input_cost_per_audio_token`, ...);
/// `input_cost_per_token_cache_hit`; off-peak rates; regional variants; context limits and `supports_*`
/// flags. `render` lists the price-like fields present in the source that were not read.
public enum LiteLLMImport {
    // MARK: Types

    public struct Options: Sendable {
        /// Keep only models whose contract provider (or LiteLLM provider) is this.
        public var provider: String?
        /// Keep only models whose (imported) name matches this glob.
        public var model: String?
        /// Stamped as `effective_from` on every entry (a date or RFC 3339 time, checked by the caller).
        public var effectiveFrom: String?
        public init(provider: String? = nil, model: String? = nil, effectiveFrom: String? = nil) {
            self.provider = provider; self.model = model; self.effectiveFrom = effectiveFrom
        }
    }

    /// One `[[price]]` entry to print.
    public struct Entry: Sendable, Equatable {
        public var model: String
        public var provider: String?
        public var serviceTier: String?
        public var minInputTokens: Int64?
        public var input: PricePerMillion
        public var output: PricePerMillion
        public var cacheRead: PricePerMillion?
        public var cacheWrite: PricePerMillion?
        public var cacheWrite1h: PricePerMillion?
        public var reasoning: PricePerMillion?
        /// The LiteLLM key the entry comes from, its `litellm_provider`, and the fields read
        /// (`field` for its own, `field (inherited)` for a fallback from a less specific group).
        public var sourceKey: String
        public var sourceProvider: String?
        public var sourceFields: [String]
        /// Other LiteLLM keys that map to the same entry (not printed as entries).
        public var alsoListedAs: [String] = []
    }

    public struct Skipped: Error, Sendable, Equatable {
        public var key: String
        public var reason: String
    }

    public struct Result: Sendable {
        public var entries: [Entry]
        /// Models not imported because of their data (not mode or filter): no token price, inexact price, ...
        public var skipped: [Skipped]
        /// Model objects in the file (without `sample_spec`).
        public var models: Int
        /// Skipped because of `mode` (mode -> count).
        public var skippedModes: [String: Int]
        /// Left out by `--provider` / `--model`.
        public var filteredOut: Int
        /// Price-like fields the importer does not read, in the models it considered (after mode and
        /// filters): field -> models.
        public var unreadPriceFields: [String: Int]
    }

    public struct ImportError: Error, CustomStringConvertible, Sendable {
        public var description: String
        init(_ d: String) { description = d }
    }

    public static let importedModes: Set<String> = ["chat", "completion", "responses"]

    // MARK: Field names

    enum Rate: Int, CaseIterable, Comparable {
        case input, cacheRead, cacheWrite, cacheWrite1h, output, reasoning
        static func < (a: Rate, b: Rate) -> Bool { a.rawValue < b.rawValue }
        /// The rate this one falls back to when omitted (contract section 2).
        var base: Rate? {
            switch self {
            case .cacheRead, .cacheWrite: .input
            case .cacheWrite1h: .cacheWrite
            case .reasoning: .output
            case .input, .output: nil
            }
        }
        var tomlKey: String {
            switch self {
            case .input: "input"
            case .cacheRead: "cache_read"
            case .cacheWrite: "cache_write"
            case .cacheWrite1h: "cache_write_1h"
            case .output: "output"
            case .reasoning: "reasoning"
            }
        }
    }

    /// Longest first, so that `..._above_1hr` is not read as `cache_creation_input_token_cost` + a suffix.
    static let bases: [(String, Rate)] = [
        ("cache_creation_input_token_cost_above_1hr", .cacheWrite1h),
        ("cache_creation_input_token_cost", .cacheWrite),
        ("cache_read_input_token_cost", .cacheRead),
        ("output_cost_per_reasoning_token", .reasoning),
        ("output_cost_per_token", .output),
        ("input_cost_per_token", .input),
    ]

    static let tiers: [(String, String)] = [("priority", "priority"), ("flex", "flex"), ("batches", "batch")]

    struct Group: Hashable, Comparable {
        /// `above_N` in tokens (0 = none).
        var threshold: Int64
        var tier: String?
        static func < (a: Group, b: Group) -> Bool {
            ((a.tier ?? ""), a.threshold) < ((b.tier ?? ""), b.threshold)
        }
    }

    /// Parses a LiteLLM price field name: its rate and group, or nil when it is not one the importer reads.
    static func parseField(_ name: String) -> (Rate, Group)? {
        guard let (base, rate) = bases.first(where: { name.hasPrefix($0.0) }) else { return nil }
        var rest = Substring(name.dropFirst(base.count))
        var threshold: Int64 = 0
        if rest.hasPrefix("_above_") {
            let afterAbove = rest.dropFirst("_above_".count)
            let digits = afterAbove.prefix { $0.isASCII && $0.isNumber }
            guard !digits.isEmpty, digits.count <= 9, let n = Int64(digits) else { return nil }
            var after = afterAbove.dropFirst(digits.count)
            var multiplier: Int64 = 1
            if after.hasPrefix("k") { multiplier = 1000; after = after.dropFirst() }
            guard after.hasPrefix("_tokens") else { return nil }
            threshold = n * multiplier
            guard threshold > 0 else { return nil }
            rest = after.dropFirst("_tokens".count)
        }
        var tier: String? = nil
        if !rest.isEmpty {
            guard rest.hasPrefix("_"), let t = tiers.first(where: { $0.0 == rest.dropFirst() }) else { return nil }
            tier = t.1
        }
        return (rate, Group(threshold: threshold, tier: tier))
    }

    /// Whether an unread field looks like a price (for the "not read" list).
    static func isPriceLike(_ name: String) -> Bool {
        name.contains("cost") || name.contains("price")
    }

    /// LiteLLM's provider name -> the contract's.
    public static func contractProvider(_ litellm: String) -> String {
        switch litellm {
        case "openai", "text-completion-openai": return "openai"
        case "anthropic": return "anthropic"
        case "gemini": return "google"
        default:
            if litellm.hasPrefix("vertex_ai") { return "google" }
            if litellm.hasPrefix("bedrock") { return "bedrock" }
            if litellm.hasPrefix("azure") { return "azure" }
            return litellm
        }
    }

    /// The model name as a provider reports it: the key without its routing prefix (see the type's doc).
    static func modelName(key: String, litellmProvider: String?) -> String {
        guard let slash = key.firstIndex(of: "/"), let p = litellmProvider else { return key }
        let prefix = String(key[..<slash])
        let rest = String(key[key.index(after: slash)...])
        if rest.isEmpty { return key }
        if prefix == p || p.hasPrefix(prefix + "-") || p.hasPrefix(prefix + "_") { return rest }
        return key
    }

    // MARK: Reading

    /// A model object's fields: the price-field texts by group and rate, provider and mode.
    struct RawModel {
        var key: String
        var provider: String?
        var mode: String?
        var prices: [Group: [Rate: (text: String, field: String)]] = [:]
        var unread: [String] = []
    }

    public static func read(json bytes: [UInt8], options: Options = Options()) throws(ImportError) -> Result {
        let parsed: Swift.Result<[RawModel], JSONError> = bytes.withUnsafeBytes { buf in
            do throws(JSONError) { return .success(try parseFile(buf)) } catch { return .failure(error) }
        }
        let raws: [RawModel]
        switch parsed {
        case .success(let r): raws = r
        case .failure(let error):
            throw ImportError("not LiteLLM's price list: invalid JSON at byte \(error.offset): \(error)")
        }
        let modelGlob = options.model.map(Glob.init)
        var result = Result(entries: [], skipped: [], models: raws.count, skippedModes: [:], filteredOut: 0,
                            unreadPriceFields: [:])
        var candidates: [Entry] = []
        for raw in raws {
            let hasTokenPrices = raw.prices[Group(threshold: 0, tier: nil)].map { $0[.input] != nil && $0[.output] != nil } ?? false
            if let mode = raw.mode {
                if !importedModes.contains(mode) { result.skippedModes[mode, default: 0] += 1; continue }
            } else if !hasTokenPrices {
                result.skippedModes["(none)", default: 0] += 1
                continue
            }
            let provider = raw.provider.map(contractProvider)
            let model = modelName(key: raw.key, litellmProvider: raw.provider)
            if let want = options.provider, want != provider, want != raw.provider { result.filteredOut += 1; continue }
            if let g = modelGlob, !g.matches(model) { result.filteredOut += 1; continue }
            for f in Set(raw.unread) { result.unreadPriceFields[f, default: 0] += 1 }
            if model.contains("*") || model.contains("?") {
                result.skipped.append(Skipped(key: raw.key, reason: "the name contains '*' or '?', which a [[price]] model would read as a glob"))
                continue
            }
            guard hasTokenPrices else {
                result.skipped.append(Skipped(key: raw.key, reason: "no input_cost_per_token and output_cost_per_token"))
                continue
            }
            switch entries(for: raw, model: model, provider: provider) {
            case .success(let es): candidates += es
            case .failure(let s): result.skipped.append(s)
            }
        }
        // One entry per identity: the key without a routing prefix first, then sorted key order.
        candidates.sort { a, b in
            let ka = (a.model, a.provider ?? "", a.serviceTier ?? "", a.minInputTokens ?? 0)
            let kb = (b.model, b.provider ?? "", b.serviceTier ?? "", b.minInputTokens ?? 0)
            if ka != kb { return ka < kb }
            let pa = a.sourceKey == a.model, pb = b.sourceKey == b.model
            if pa != pb { return pa }
            return a.sourceKey < b.sourceKey
        }
        for c in candidates {
            if var last = result.entries.last, last.model == c.model, last.provider == c.provider,
               last.serviceTier == c.serviceTier, last.minInputTokens == c.minInputTokens {
                let same = last.input == c.input && last.output == c.output && last.cacheRead == c.cacheRead
                    && last.cacheWrite == c.cacheWrite && last.cacheWrite1h == c.cacheWrite1h && last.reasoning == c.reasoning
                last.alsoListedAs.append(c.sourceKey + (same ? "" : " (different prices, not imported)"))
                result.entries[result.entries.count - 1] = last
                continue
            }
            result.entries.append(c)
        }
        result.skipped.sort { $0.key < $1.key }
        return result
    }

    /// The entries of one model: its base entry, then one per (above_N, tier) group it lists.
    static func entries(for raw: RawModel, model: String, provider: String?) -> Swift.Result<[Entry], Skipped> {
        // Exact conversion of every field first: one inexact price skips the model (never round).
        var nanos: [Group: [Rate: (PricePerMillion, String)]] = [:]
        for (g, fields) in raw.prices {
            for (rate, v) in fields {
                guard let fine = FixedDecimal.parse(v.text, scale: 24), let value = FixedDecimal.parse(v.text, scale: 15) else {
                    return .failure(Skipped(key: raw.key, reason: "\(v.field) = \(v.text) is too large"))
                }
                if value < 0 { return .failure(Skipped(key: raw.key, reason: "\(v.field) = \(v.text) is negative")) }
                if fine % 1_000_000_000 != 0 {
                    return .failure(Skipped(key: raw.key, reason: "\(v.field) = \(v.text) has more precision than 10^-15 USD per token "
                                            + "(nano-dollars per 1M tokens); not rounded"))
                }
                guard value <= Int128(Int64.max) else {
                    return .failure(Skipped(key: raw.key, reason: "\(v.field) = \(v.text) is too large"))
                }
                nanos[g, default: [:]][rate] = (PricePerMillion(nanos: Int64(value)), v.field)
            }
        }
        var out: [Entry] = []
        for g in nanos.keys.sorted() {
            var chain = [g]
            if g.tier != nil && g.threshold > 0 { chain.append(Group(threshold: g.threshold, tier: nil)) }
            if g.tier != nil && g.threshold > 0 { chain.append(Group(threshold: 0, tier: g.tier)) }
            if g != Group(threshold: 0, tier: nil) { chain.append(Group(threshold: 0, tier: nil)) }
            var values: [Rate: PricePerMillion] = [:]
            var fields: [String] = []
            /// The value of `rate` in `src` with inheritance down the rest of the chain.
            func resolved(_ rate: Rate, from index: Int) -> PricePerMillion? {
                for src in chain[index...] { if let (p, _) = nanos[src]?[rate] { return p } }
                return nil
            }
            for rate in Rate.allCases {
                for (i, src) in chain.enumerated() {
                    guard let (p, field) = nanos[src]?[rate] else { continue }
                    // An inherited derived rate that merely equals its base rate where it comes from
                    // (reasoning = output, cache_read = input, ...) means "same as the base": leave it
                    // out so that it follows this entry's own base rate (e.g. Gemini's reasoning rate
                    // above 200k tokens is its output rate above 200k, not the short-context one).
                    if i > 0, let base = rate.base, nanos[g]?[base] != nil, resolved(base, from: i) == p {
                        fields.append("\(field) (= \(base.tomlKey), follows it)")
                        break
                    }
                    values[rate] = p
                    fields.append(i == 0 ? field : "\(field) (inherited)")
                    break
                }
            }
            guard let input = values[.input], let output = values[.output] else { continue }
            out.append(Entry(model: model, provider: provider, serviceTier: g.tier,
                             minInputTokens: g.threshold > 0 ? g.threshold + 1 : nil,
                             input: input, output: output, cacheRead: values[.cacheRead], cacheWrite: values[.cacheWrite],
                             cacheWrite1h: values[.cacheWrite1h], reasoning: values[.reasoning],
                             sourceKey: raw.key, sourceProvider: raw.provider, sourceFields: fields))
        }
        return .success(out)
    }

    static func parseFile(_ buf: UnsafeRawBufferPointer) throws(JSONError) -> [RawModel] {
        var s = JSONScanner(buf)
        var out: [RawModel] = []
        var scratch: [UInt8] = []
        func text(_ span: JSONSpan, _ s: JSONScanner) -> String {
            scratch.removeAll(keepingCapacity: true)
            s.appendUnescaped(span, to: &scratch)
            return String(decoding: scratch, as: UTF8.self)
        }
        try s.beginObject()
        while let keySpan = try s.nextKey() {
            let key = text(keySpan, s)
            guard key != "sample_spec", try s.peekKind() == .object else { try s.skipValue(); continue }
            var m = RawModel(key: key)
            try s.beginObject()
            while let fSpan = try s.nextKey() {
                let field = text(fSpan, s)
                let kind = try s.peekKind()
                switch field {
                case "litellm_provider" where kind == .string: m.provider = text(try s.readString(), s)
                case "mode" where kind == .string: m.mode = text(try s.readString(), s)
                default:
                    if kind == .number, let (rate, group) = parseField(field) {
                        let span = try s.readNumber()
                        let t = String(decoding: s.bytes(span), as: UTF8.self)
                        m.prices[group, default: [:]][rate] = (t, field)
                    } else {
                        if kind != .null, parseField(field) == nil, isPriceLike(field) { m.unread.append(field) }
                        try s.skipValue()
                    }
                }
            }
            out.append(m)
        }
        try s.finish()
        return out
    }

    // MARK: Writing

    /// The `[[price]]` TOML: a header comment (source, date, counts, what was not read), then the entries
    /// sorted by model, provider, tier and min_input_tokens, each with its provenance comment.
    public static func render(_ r: Result, source: String, importedAt: EpochMillis?, options: Options = Options()) -> String {
        var o = "# [[price]] entries imported from LiteLLM's model_prices_and_context_window.json\n"
        o += "# by `tokenmeter prices import --from litellm`.\n"
        o += "# source: \(oneLine(source))\n"
        if let t = importedAt { o += "# imported: \(RFC3339.format(t))\n" }
        var filters: [String] = []
        if let p = options.provider { filters.append("--provider \(oneLine(p))") }
        if let m = options.model { filters.append("--model \(oneLine(m))") }
        if let e = options.effectiveFrom { filters.append("--effective-from \(oneLine(e))") }
        if !filters.isEmpty { o += "# options: \(filters.joined(separator: " "))\n" }
        let models = Set(r.entries.map(\.sourceKey)).count
        o += "# entries: \(r.entries.count) (from \(models) of the \(r.models) models in the file)\n"
        if !r.skippedModes.isEmpty {
            o += "# skipped by mode (only chat, completion, responses are imported): "
                + r.skippedModes.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ") + "\n"
        }
        if r.filteredOut > 0 { o += "# left out by --provider/--model: \(r.filteredOut)\n" }
        for s in r.skipped { o += "# skipped \(oneLine(s.key)): \(oneLine(s.reason))\n" }
        if !r.unreadPriceFields.isEmpty {
            o += "# price fields of these models that tokenmeter does not read (field: models):\n"
            for (f, n) in r.unreadPriceFields.sorted(by: { $0.key < $1.key }) { o += "#   \(oneLine(f)): \(n)\n" }
        }
        o += "# Prices: USD per 1M tokens = LiteLLM's USD per token x 1,000,000, converted exactly from the JSON text.\n"
        o += "# LiteLLM's above_Nk_tokens rates apply to MORE than N*1000 input tokens: min_input_tokens = N*1000 + 1.\n"
        for e in r.entries {
            o += "\n# litellm \(TOMLText.string(e.sourceKey))"
            if let p = e.sourceProvider { o += " (litellm_provider \(oneLine(p)))" }
            o += ": " + e.sourceFields.joined(separator: ", ") + "\n"
            if !e.alsoListedAs.isEmpty { o += "# also listed as: \(oneLine(e.alsoListedAs.joined(separator: ", ")))\n" }
            o += "[[price]]\n"
            o += "model = \(TOMLText.string(e.model))\n"
            if let p = e.provider { o += "provider = \(TOMLText.string(p))\n" }
            if let t = e.serviceTier { o += "service_tier = \(TOMLText.string(t))\n" }
            if let m = e.minInputTokens { o += "min_input_tokens = \(m)\n" }
            o += "input = \(e.input)\n"
            if let v = e.cacheRead { o += "cache_read = \(v)\n" }
            if let v = e.cacheWrite { o += "cache_write = \(v)\n" }
            if let v = e.cacheWrite1h { o += "cache_write_1h = \(v)\n" }
            o += "output = \(e.output)\n"
            if let v = e.reasoning { o += "reasoning = \(v)\n" }
            if let f = options.effectiveFrom { o += "effective_from = \(TOMLText.string(f))\n" }
        }
        return o
    }

    /// Text safe inside a `#` comment line.
    static func oneLine(_ s: String) -> String {
        String(s.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? " " : Character($0) })
    }
}
