/// The provider of an event that names none and whose usage block names none either, from its model
/// name (contract 1b): the longest prefix of the table that the model starts with, compared ignoring ASCII
/// case. The built-in table covers the providers' own model names and the Bedrock model ids; the config's
/// `[provider_prefixes]` table adds prefixes or overrides built-in ones (a config entry with the same
/// prefix replaces the built-in one). Only when no prefix matches is the provider null.
///
/// Matching allocates nothing: the table is kept as bytes, longest prefix first, so the first match wins.
public struct ProviderPrefixes: Sendable, Equatable {
    /// The built-in table, in the order `check-config --print` shows it (by provider).
    public static let builtIn: [KeyValue] = [
        KeyValue("claude-", "anthropic"),
        KeyValue("gpt-", "openai"), KeyValue("chatgpt-", "openai"), KeyValue("o1", "openai"), KeyValue("o3", "openai"),
        KeyValue("o4", "openai"), KeyValue("text-embedding-", "openai"), KeyValue("davinci-", "openai"),
        KeyValue("babbage-", "openai"), KeyValue("dall-e-", "openai"), KeyValue("whisper-", "openai"),
        KeyValue("tts-", "openai"), KeyValue("omni-moderation-", "openai"), KeyValue("codex-", "openai"),
        KeyValue("computer-use-", "openai"),
        KeyValue("gemini-", "google"), KeyValue("models/gemini-", "google"), KeyValue("text-embedding-00", "google"),
        KeyValue("text-multilingual-embedding-", "google"), KeyValue("imagen-", "google"), KeyValue("veo-", "google"),
        KeyValue("grok-", "xai"),
        KeyValue("mistral-", "mistral"), KeyValue("codestral-", "mistral"), KeyValue("ministral-", "mistral"),
        KeyValue("magistral-", "mistral"), KeyValue("pixtral-", "mistral"), KeyValue("devstral-", "mistral"),
        KeyValue("open-mistral-", "mistral"), KeyValue("open-mixtral-", "mistral"), KeyValue("voxtral-", "mistral"),
        KeyValue("command-", "cohere"), KeyValue("embed-english-", "cohere"), KeyValue("embed-multilingual-", "cohere"),
        KeyValue("embed-v4", "cohere"), KeyValue("rerank-", "cohere"), KeyValue("c4ai-aya-", "cohere"),
        KeyValue("deepseek-", "deepseek"),
        // Bedrock model ids: `<vendor>.<model>`, with a cross-region inference prefix in front when routed.
        KeyValue("anthropic.", "bedrock"), KeyValue("us.anthropic.", "bedrock"), KeyValue("eu.anthropic.", "bedrock"),
        KeyValue("apac.anthropic.", "bedrock"), KeyValue("global.anthropic.", "bedrock"), KeyValue("jp.anthropic.", "bedrock"),
        KeyValue("au.anthropic.", "bedrock"), KeyValue("meta.", "bedrock"), KeyValue("us.meta.", "bedrock"),
        KeyValue("amazon.", "bedrock"), KeyValue("us.amazon.", "bedrock"), KeyValue("eu.amazon.", "bedrock"),
        KeyValue("apac.amazon.", "bedrock"), KeyValue("cohere.", "bedrock"), KeyValue("mistral.", "bedrock"),
        KeyValue("ai21.", "bedrock"), KeyValue("deepseek.", "bedrock"), KeyValue("us.deepseek.", "bedrock"),
        KeyValue("writer.", "bedrock"), KeyValue("us.writer.", "bedrock"), KeyValue("qwen.", "bedrock"),
        KeyValue("openai.gpt-oss-", "bedrock"), KeyValue("twelvelabs.", "bedrock"), KeyValue("stability.", "bedrock"),
    ]

    /// The longest a prefix or a provider may be (a provider reaches rollups, metrics and alerts).
    public static let maxBytes = EventDecoder.maxNameBytes

    /// The effective table, longest prefix first (ties: by prefix), as (prefix, provider).
    public private(set) var entries: [KeyValue]
    /// Every prefix, ASCII-lowercased, one after the other; entry `i` is `prefixBytes[prefixEnds[i-1]..<prefixEnds[i]]`.
    private var prefixBytes: [UInt8]
    private var prefixEnds: [Int]
    private var providerBytes: [[UInt8]]

    /// The built-in table with `extra` (the config's entries) added; an extra prefix that equals a
    /// built-in one (ignoring ASCII case) replaces it.
    public init(extra: [KeyValue] = []) {
        var byPrefix: [String: KeyValue] = [:]
        for e in ProviderPrefixes.builtIn + extra { byPrefix[ProviderPrefixes.folded(e.key)] = e }
        entries = byPrefix.values.sorted {
            $0.key.utf8.count != $1.key.utf8.count ? $0.key.utf8.count > $1.key.utf8.count : $0.key < $1.key
        }
        prefixBytes = []
        prefixEnds = []
        for e in entries {
            prefixBytes += Array(ProviderPrefixes.folded(e.key).utf8)
            prefixEnds.append(prefixBytes.count)
        }
        providerBytes = entries.map { Array($0.value.utf8) }
    }

    static func folded(_ s: String) -> String {
        String(decoding: s.utf8.map { $0 >= 65 && $0 <= 90 ? $0 + 32 : $0 }, as: UTF8.self)
    }

    /// The index in `entries` of the longest prefix `model` starts with, ignoring ASCII case.
    public func match(_ model: UnsafeRawBufferPointer) -> Int? {
        guard model.count > 0 else { return nil }
        return prefixBytes.withUnsafeBufferPointer { all -> Int? in
            var start = 0
            for i in 0..<prefixEnds.count {
                let end = prefixEnds[i]
                defer { start = end }
                guard end - start <= model.count else { continue }
                var j = 0
                while j < end - start {
                    var c = model[j]
                    if c >= 65 && c <= 90 { c += 32 }
                    if c != all[start + j] { break }
                    j += 1
                }
                if j == end - start { return i }
            }
            return nil
        }
    }

    /// The provider of entry `i` as bytes, for the decoder's scratch buffer.
    @inline(__always)
    func withProvider<R>(_ i: Int, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        providerBytes[i].withUnsafeBytes(body)
    }

    /// The provider for `model` (allocates; tools and tests).
    public func provider(forModel model: String) -> String? {
        var m = model
        return m.withUTF8 { match(UnsafeRawBufferPointer($0)) }.map { entries[$0].value }
    }
}
