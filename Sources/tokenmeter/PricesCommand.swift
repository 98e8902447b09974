import ArgumentParser
import TokenmeterCore
import TokenmeterPriceTools
import TokenmeterDaemon
#if canImport(Glibc)
import Glibc
#endif

/// `tokenmeter prices import|check`: keep the price table current and audit it.
struct PricesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prices",
        abstract: "Import [[price]] entries from LiteLLM's price list, or check which price each model in a sample gets.",
        subcommands: [PricesImportCommand.self, PricesCheckCommand.self]
    )
}

/// `tokenmeter prices import --from litellm FILE`: prints `[[price]]` TOML on stdout.
struct PricesImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Print [[price]] entries (USD per 1M tokens) converted exactly from LiteLLM's model_prices_and_context_window.json.",
        discussion: """
            Reads chat, completion and responses models; per-token prices become per-1M prices exactly (decimal, \
            never floating point); above_Nk_tokens rates become entries with min_input_tokens = N*1000 + 1; \
            _priority/_flex/_batches rates become entries with service_tier priority/flex/batch. \
            See the README's Prices section for every field read and not read.
            """
    )

    enum Source: String, ExpressibleByArgument { case litellm }

    @Option(name: .long, help: "The format of FILE (only `litellm`).")
    var from: Source

    @Option(name: .long, help: ArgumentHelp("Only models of this provider (contract name such as google, or LiteLLM's such as vertex_ai-language-models).", valueName: "P"))
    var provider: String?

    @Option(name: .long, help: ArgumentHelp("Only models whose name matches this glob (* and ?).", valueName: "GLOB"))
    var model: String?

    @Option(name: .long, help: ArgumentHelp("Stamp every entry with this effective_from (2025-06-01 or an RFC 3339 time).", valueName: "DATE"))
    var effectiveFrom: String?

    @Argument(help: "LiteLLM's model_prices_and_context_window.json.")
    var file: String

    func validate() throws {
        if let e = effectiveFrom, RFC3339.parse(e, allowDateOnly: true) == nil {
            throw ValidationError("--effective-from: invalid date \"\(e)\" (expected 2025-06-01 or 2025-06-01T00:00:00Z)")
        }
    }

    func run() throws {
        let bytes: [UInt8]
        do {
            guard let b = try DurableFile.read(file) else {
                printError("tokenmeter prices import: cannot read \(file): no such file")
                throw ExitCode(66)   // EX_NOINPUT
            }
            bytes = b
        } catch let e as FileError {
            printError("tokenmeter prices import: cannot read \(file): \(e)")
            throw ExitCode(66)
        }
        let options = LiteLLMImport.Options(provider: provider, model: model, effectiveFrom: effectiveFrom)
        let result: LiteLLMImport.Result
        do {
            result = try LiteLLMImport.read(json: bytes, options: options)
        } catch {
            printError("tokenmeter prices import: \(file): \(error)")
            throw ExitCode(65)   // EX_DATAERR
        }
        writeOut(LiteLLMImport.render(result, source: file, importedAt: WallClock.now(), options: options))
        printError("tokenmeter prices import: \(result.entries.count) entries from \(Set(result.entries.map(\.sourceKey)).count) "
                   + "models (\(result.models) in the file; \(result.skippedModes.values.reduce(0, +)) skipped by mode, "
                   + "\(result.skipped.count) skipped for their data, \(result.filteredOut) left out by filters)")
        if result.entries.isEmpty { printError("tokenmeter prices import: warning: no entries") }
    }
}

/// `tokenmeter prices check --config FILE EVENTS.jsonl`: which entry prices each model of a sample, why, and
/// which models have no price.
struct PricesCheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Show which [[price]] entry each (model, provider, service tier) of a sample resolves to, and why.",
        discussion: """
            Decodes EVENTS.jsonl with the daemon's decoder and prices every request the way the pipeline does \
            (the event's provider, service tier, input tokens and time; events without a time are priced as of now). \
            Lists models with no price: those are counted but never costed, fix them with [[price]] entries. \
            Exits 0, or 1 with --strict when any model is unpriced; 78 on a bad config.
            """
    )

    @OptionGroup var options: ConfigOption

    @Flag(name: .long, help: "Exit 1 when any model of the sample has no price.")
    var strict = false

    @Flag(name: .long, help: "Print JSON instead of a table.")
    var json = false

    @Argument(help: "Events, one JSON object per line.")
    var events: String

    func run() throws {
        let config = loadConfigOrExit(options.config)
        guard let file = fopen(events, "r") else {
            printError("tokenmeter prices check: cannot open \(events): \(String(cString: strerror(errno)))")
            throw ExitCode(66)
        }
        defer { fclose(file) }
        var check = PriceCheck(prices: config.prices, fallbackTime: WallClock.now())
        var line: UnsafeMutablePointer<CChar>? = nil
        var cap = 0
        while true {
            let n = getline(&line, &cap, file)
            if n < 0 { break }
            var len = n
            while len > 0 && (line![len - 1] == 10 || line![len - 1] == 13) { len -= 1 }
            if len == 0 { continue }
            check.add(UnsafeRawBufferPointer(start: line!, count: len))
        }
        free(line)
        writeOut(json ? Self.json(check, config: options.config, events: events) : Self.table(check, config: options.config, events: events))
        if strict && !check.unpriced.isEmpty { throw ExitCode(1) }
    }

    static func show(_ s: String?) -> String { s ?? "-" }

    static func table(_ c: PriceCheck, config: String, events: String) -> String {
        var o = "prices check: \(c.lines) events in \(events) (\(c.usageEvents) usage, \(c.outcomeEvents) outcomes, \(c.rejected) rejected"
        if !c.rejectReasons.isEmpty {
            o += ": " + c.rejectReasons.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        }
        o += ") against \(config) (\(c.table.entries.count) [[price]] entries)\n"
        if c.untimed > 0 { o += "\(c.untimed) event\(c.untimed == 1 ? " has" : "s have") no timestamp: priced as of now\n" }
        let groups = c.results
        var rows: [[String]] = [["MODEL", "PROVIDER", "TIER", "REQUESTS", "PRICED BY"]]
        for g in groups {
            let priced = g.resolutions.map { r -> String in
                let what = r.entry.map { "\(c.origin($0)) (\(c.table.entries[$0].model))" } ?? "UNPRICED"
                return g.resolutions.count > 1 ? "\(what) x\(r.requests)" : what
            }.joined(separator: "; ")
            var requests = String(g.requests)
            if g.costGiven > 0 { requests += " (\(g.costGiven) with cost_usd)" }
            rows.append([g.key.model ?? "(no model)", show(g.key.provider), g.key.serviceTier ?? "-", requests, priced])
        }
        var widths = [Int](repeating: 0, count: 5)
        for r in rows { for (i, s) in r.enumerated() { widths[i] = max(widths[i], s.count) } }
        o += "\n"
        for r in rows {
            var l = ""
            for (i, s) in r.enumerated() {
                l += i == r.count - 1 ? s : s + String(repeating: " ", count: widths[i] - s.count + 2)
            }
            o += l + "\n"
        }
        o += "\nWhy (the precedence chain for one request of each):\n"
        for g in groups {
            for r in g.resolutions {
                o += "\n\(g.key.model ?? "(no model)") provider \(show(g.key.provider)) tier \(g.key.serviceTier ?? "standard"): "
                    + "\(r.requests) request\(r.requests == 1 ? "" : "s") -> \(r.entry.map { c.origin($0) } ?? "unpriced")\n"
                for l in c.explain(g, r) { o += "  " + l + "\n" }
            }
        }
        let unpriced = c.unpriced
        if unpriced.isEmpty {
            o += "\nEvery model in the sample has a price.\n"
        } else {
            o += "\nUnpriced models (their tokens are counted, their cost is not; add [[price]] entries for them):\n"
            for u in unpriced {
                o += "  \(u.model ?? "(no model: the events name none)") provider \(show(u.provider)): \(u.requests) request\(u.requests == 1 ? "" : "s")\n"
            }
        }
        return o
    }

    static func json(_ c: PriceCheck, config: String, events: String) -> String {
        func str(_ s: String?) -> String { s.map(jsonString) ?? "null" }
        var o = "{\"config\":\(jsonString(config)),\"events_file\":\(jsonString(events)),\"events\":\(c.lines),"
        o += "\"usage_events\":\(c.usageEvents),\"outcome_events\":\(c.outcomeEvents),\"rejected\":\(c.rejected),"
        o += "\"rejected_by_reason\":{" + c.rejectReasons.sorted { $0.key < $1.key }.map { "\(jsonString($0.key)):\($0.value)" }.joined(separator: ",") + "},"
        o += "\"untimed_events\":\(c.untimed),\"price_entries\":\(c.table.entries.count),\"models\":["
        o += c.results.map { g -> String in
            var m = "{\"model\":\(str(g.key.model)),\"provider\":\(str(g.key.provider)),\"service_tier\":\(str(g.key.serviceTier)),"
            m += "\"requests\":\(g.requests),\"cost_usd_given\":\(g.costGiven),\"unpriced_requests\":\(g.unpricedRequests),\"resolutions\":["
            m += g.resolutions.map { r -> String in
                var e = "{\"requests\":\(r.requests),"
                if let i = r.entry {
                    let p = c.table.entries[i]
                    e += "\"origin\":\(jsonString(c.origin(i))),\"pattern\":\(jsonString(p.model)),\"entry_provider\":\(str(p.provider)),"
                    e += "\"entry_service_tier\":\(str(p.serviceTier)),\"min_input_tokens\":\(p.minInputTokens.map(String.init) ?? "null"),"
                    e += "\"effective_from\":\(str(p.effectiveFrom.map { RFC3339.format($0) })),"
                } else {
                    e += "\"origin\":null,"
                }
                e += "\"explain\":[" + c.explain(g, r).map(jsonString).joined(separator: ",") + "]}"
                return e
            }.joined(separator: ",")
            return m + "]}"
        }.joined(separator: ",")
        o += "],\"unpriced\":["
        o += c.unpriced.map { "{\"model\":\(str($0.model)),\"provider\":\(str($0.provider)),\"requests\":\($0.requests)}" }.joined(separator: ",")
        return o + "]}\n"
    }
}
