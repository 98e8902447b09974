import Foundation
import TokenmeterCore
@testable import TrafficGenerator

/// A deliberately naive, test-only reading of the contract (sections 1a-1d, 1f) with JSONSerialization,
/// used to cross-check that each line says what its `expected` effect claims.
struct Decoded: Equatable {
    var id: String?
    var type: String
    var workflow: String?
    var owner: String?
    var model: String?
    var provider: String?
    var tokens = ExpectedTokens()
    var isError = false
    var eventTime: EpochMillis?
    var tags: [String: String] = [:]
    var outcome: String?
    var count: Int64 = 1
}

enum ReferenceDecoder {
    static func object(_ line: String) -> [String: Any]? {
        guard let d = line.data(using: .utf8),
              let v = try? JSONSerialization.jsonObject(with: d, options: [.fragmentsAllowed]) else { return nil }
        return v as? [String: Any]
    }

    static func isValidJSON(_ line: String) -> Bool {
        guard let d = line.data(using: .utf8) else { return false }
        return (try? JSONSerialization.jsonObject(with: d, options: [.fragmentsAllowed])) != nil
    }

    /// A non-negative integer count, a string of ASCII digits, or missing/null (0).
    static func count(_ v: Any?) -> Int64? {
        guard let v, !(v is NSNull) else { return 0 }
        if let s = v as? String {
            guard !s.isEmpty, s.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
            return Int64(s)
        }
        if let n = v as? NSNumber {
            let d = n.doubleValue
            guard d >= 0, d == d.rounded() else { return nil }
            return n.int64Value
        }
        return nil
    }

    static func time(_ v: Any?) -> EpochMillis? {
        if let s = v as? String { return RFC3339.parse(s) }
        if let n = v as? NSNumber { return n.int64Value }
        return nil
    }

    static func decode(_ line: String) -> Decoded? {
        guard var o = object(line) else { return nil }
        var d = Decoded(type: "usage")
        var subject: String?
        if o["specversion"] != nil, let data = o["data"] {
            d.id = o["id"] as? String
            d.eventTime = time(o["time"])
            subject = o["subject"] as? String
            if let s = data as? String { guard let inner = object(s) else { return nil }; o = inner } else {
                guard let inner = data as? [String: Any] else { return nil }
                o = inner
            }
        } else {
            d.id = o["id"] as? String
            d.eventTime = time(o["timestamp"] ?? o["ts"] ?? o["time"])
        }
        d.type = (o["type"] as? String) ?? "usage"
        d.workflow = (o["workflow"] as? String) ?? (o["gen_ai.workflow.name"] as? String)
        d.owner = (o["owner"] as? String) ?? subject
        d.tags = (o["tags"] as? [String: String]) ?? [:]
        if d.type == "outcome" {
            d.outcome = o["outcome"] as? String
            d.count = o["count"].flatMap { count($0) } ?? 1
            return d
        }
        d.model = (o["gen_ai.response.model"] as? String) ?? (o["model"] as? String) ?? (o["gen_ai.request.model"] as? String)
        d.provider = (o["provider"] as? String) ?? (o["gen_ai.provider.name"] as? String) ?? (o["gen_ai.system"] as? String)
        d.isError = (o["status"] as? String) == "error"

        // Provider block (1b), first matching row.
        var t = ExpectedTokens()
        var blockProvider: String?
        if let u = o["usage"] as? [String: Any] {
            let pd = u["prompt_tokens_details"] as? [String: Any] ?? [:]
            let cd = u["completion_tokens_details"] as? [String: Any] ?? [:]
            if u["prompt_tokens"] != nil {
                blockProvider = "openai"
                t.input = count(u["prompt_tokens"])!
                t.cacheRead = count(pd["cached_tokens"])!
                t.cacheWrite = count(pd["cache_write_tokens"])!
                t.output = count(u["completion_tokens"])!
                t.reasoning = count(cd["reasoning_tokens"])!
                let total = count(u["total_tokens"])!
                if total > t.input + t.output {  // 1f: thinking hidden in total_tokens
                    let extra = total - t.input - t.output
                    t.output += extra
                    t.reasoning += extra
                }
            } else if d.provider == "anthropic" || u["cache_creation_input_tokens"] != nil || u["cache_read_input_tokens"] != nil {
                blockProvider = "anthropic"
                t.cacheRead = count(u["cache_read_input_tokens"])!
                t.cacheWrite = count(u["cache_creation_input_tokens"])!
                t.input = count(u["input_tokens"])! + t.cacheRead + t.cacheWrite
                t.output = count(u["output_tokens"])!
                t.reasoning = count((u["output_tokens_details"] as? [String: Any])?["thinking_tokens"])!
            } else if u["promptTokenCount"] != nil {
                blockProvider = "google"
                t.input = count(u["promptTokenCount"])! + count(u["toolUsePromptTokenCount"])!
                t.cacheRead = count(u["cachedContentTokenCount"])!
                t.reasoning = count(u["thoughtsTokenCount"])!
                t.output = count(u["candidatesTokenCount"])! + t.reasoning
            } else if u["input_tokens"] != nil {
                blockProvider = "openai"
                let idt = u["input_tokens_details"] as? [String: Any] ?? [:]
                let odt = u["output_tokens_details"] as? [String: Any] ?? [:]
                t.input = count(u["input_tokens"])!
                t.cacheRead = count(idt["cached_tokens"])!
                t.cacheWrite = count(idt["cache_write_tokens"])!
                t.output = count(u["output_tokens"])!
                t.reasoning = count(odt["reasoning_tokens"])!
            }
        }
        // Canonical and OpenTelemetry names win over the block.
        func field(_ names: [String]) -> Int64? {
            for n in names where o[n] != nil { return count(o[n]) }
            return nil
        }
        if let v = field(["input_tokens", "gen_ai.usage.input_tokens"]) { t.input = v }
        if let v = field(["cache_read_tokens", "gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_read_input_tokens"]) { t.cacheRead = v }
        if let v = field(["cache_write_tokens", "gen_ai.usage.cache_creation.input_tokens", "gen_ai.usage.cache_creation_input_tokens"]) {
            t.cacheWrite = v
        }
        if let v = field(["output_tokens", "gen_ai.usage.output_tokens"]) { t.output = v }
        if let v = field(["reasoning_tokens", "gen_ai.usage.reasoning.output_tokens", "gen_ai.usage.reasoning_tokens"]) { t.reasoning = v }
        d.tokens = t
        if d.provider == nil { d.provider = blockProvider }
        if d.provider == nil, let model = d.model { d.provider = Catalogue.providerFromModelName(model) }
        return d
    }

    /// The exact decimal text of a top-level number field (to avoid Double), e.g. `cost_usd`.
    static func rawNumber(_ key: String, in line: String) -> String? {
        guard let r = line.range(of: "\"\(key)\":") else { return nil }
        let rest = line[r.upperBound...]
        let num = rest.prefix { "0123456789.-eE+".contains($0) }
        return num.isEmpty ? nil : String(num)
    }
}
