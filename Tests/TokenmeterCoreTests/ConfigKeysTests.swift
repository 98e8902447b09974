import Foundation
import Testing
@testable import TokenmeterCore
import TokenmeterTOML

/// The key table (`ConfigKeys`) and what derives from it: the loader reads every key it lists and no
/// other, `check-config --print` prints every key and reads back to the same configuration, and the
/// configuration reference in docs/ is the table's.
@Suite("Config key table")
struct ConfigKeysTests {
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    func load(_ text: String, file: String = "t.toml") throws -> TokenmeterConfig {
        switch ConfigLoader.parse(text: text, file: file) {
        case .success(let c): return c
        case .failure(let e): Issue.record("\(e)\n--- in ---\n\(text)"); throw e
        }
    }

    /// Where a price entry was written is not part of what it prices: a printed file has other lines.
    func withoutOrigins(_ c: TokenmeterConfig) -> TokenmeterConfig {
        var c = c
        for i in c.prices.indices { c.prices[i].origin = "" }
        return c
    }

    /// The file that sets every key of the table (built from it, so a key added to the table is in it).
    func everyKey() throws -> TokenmeterConfig { try load(ConfigKeys.everyKeyTOML()) }

    @Test func theLoaderReadsEveryKeyOfTheTable() throws {
        let every = try everyKey()
        let defaults = try load("")
        #expect(defaults == TokenmeterConfig(), "an empty file gives the defaults of TokenmeterConfig")
        for section in ConfigKeys.sections {
            switch section.shape {
            case .table:
                for key in section.keys {
                    #expect(key.value(in: every) != key.value(in: defaults),
                            "`\(key.path) = \(key.example)` is not read: its value is still the default")
                }
            case .map:
                #expect(section.count(every) == section.example.count, "\(section.header): the example entries are not read")
            case .arrayOfTables:
                #expect(section.count(every) == 1, "\(section.header): the example entry is refused")
                // Each optional key, left out, changes the entry: so it was read.
                for key in section.keys where !key.required {
                    let others = section.keys.filter { $0.name != key.name }.map { "\($0.name) = \($0.example)\n" }.joined()
                    let without = try load("\(section.header)\n" + others)
                    #expect(key.value(in: without) != key.value(in: every), "`\(key.path) = \(key.example)` is not read")
                }
                // Each required key, left out, is an error at the entry's header.
                for key in section.keys where key.required {
                    let others = section.keys.filter { $0.name != key.name }.map { "\($0.name) = \($0.example)\n" }.joined()
                    guard case .failure(let e) = ConfigLoader.parse(text: "\(section.header)\n" + others, file: "t.toml") else {
                        Issue.record("\(section.header) without `\(key.name)` is accepted"); continue
                    }
                    #expect(e.diagnostics.map(\.description).contains(
                        "t.toml:1:1: error: \(section.header) entry is missing the required key `\(key.name)`"), "\(e)")
                }
            }
        }
    }

    @Test func printingEveryKeyAndReadingItBackGivesTheSameConfiguration() throws {
        let every = try everyKey()
        let printed = ConfigPrinter.text(every, header: ["every key"])
        // Every key of a plain table is a `key = value` line, those the issue found missing included.
        let lines = Set(printed.split(separator: "\n").map(String.init))
        for key in ConfigKeys.sections.filter({ $0.shape == .table }).flatMap(\.keys) {
            #expect(lines.contains("\(key.name) = \(key.value(in: every) ?? "?")"), "\(key.path) is not printed:\n\(printed)")
        }
        #expect(lines.contains("handover_timeout = \"20s\"") && lines.contains("max_keys_per_window = 5000"))
        let back = try load(printed, file: "printed.toml")
        #expect(withoutOrigins(back) == withoutOrigins(every), "printed:\n\(printed)")
    }

    @Test func printingTheDefaultsNamesEveryKey() throws {
        let defaults = TokenmeterConfig()
        let printed = ConfigPrinter.text(defaults)
        for key in ConfigKeys.sections.filter({ $0.shape == .table }).flatMap(\.keys) {
            let set = key.value(in: defaults).map { "\(key.name) = \($0)" }
            #expect(printed.contains("\n" + (set ?? "# \(key.name): not set (")), "\(key.path) is not printed:\n\(printed)")
        }
        #expect(try load(printed) == defaults)
    }

    /// TOML allows no raw control character in a basic string: each is escaped, and reads back as itself.
    @Test func controlCharactersInPrintedStringsReadBack() throws {
        var weird = "a"
        for v in Array(0x01...0x1F) + [0x7F] { weird.unicodeScalars.append(Unicode.Scalar(UInt8(v))) }
        weird += "\"\\é\u{2028}z"
        var c = TokenmeterConfig()
        c.rollups.tags = [weird]
        c.kafka.properties = [KeyValue("client.rack", weird)]
        c.prices = [PriceEntry(model: weird, provider: weird, input: PricePerMillion(nanos: 1), output: PricePerMillion(nanos: 2),
                               serviceTier: weird)]
        c.budgets = [BudgetRule(name: weird, owner: weird, period: .day, amount: Money(femtos: 1), thresholds: [50], forecast: false)]
        c.outcomeLimits = [OutcomeLimitRule(name: "o", outcome: weird, maxCost: Money(femtos: 3), period: .hour)]
        let printed = ConfigPrinter.text(c)
        #expect(!printed.unicodeScalars.contains { ($0.value < 0x20 && $0 != "\n") || $0.value == 0x7F }, "\(printed.debugDescription)")
        #expect(printed.contains(#""a\u0001\u0002\u0003\u0004\u0005\u0006\u0007\b\t\n\u000B\f\r\u000E"#), "\(printed)")
        let back = try load(printed)
        #expect(withoutOrigins(back) == c)
    }

    @Test func secretsAreNotPrinted() throws {
        let c = try load("""
            [kafka.properties]
            "sasl.password" = "hunter2-inline"
            "ssl.key.password" = "k3y-pass"
            "socket.timeout.ms" = "30000"
            [kafka.secret_files]
            "sasl.oauthbearer.client.secret" = "oauth-secret"
            """)
        let printed = ConfigPrinter.text(c, credentialsDirectory: "/run/credentials/tokenmeter.service")
        #expect(!printed.contains("hunter2") && !printed.contains("k3y-pass"))
        #expect(printed.contains("\"sasl.password\" = \"<hidden>\"\n\"ssl.key.password\" = \"<hidden>\"\n\"socket.timeout.ms\" = \"30000\"\n"))
        #expect(printed.contains("\"sasl.oauthbearer.client.secret\" = \"oauth-secret\"  # the value is read from "
                                 + "/run/credentials/tokenmeter.service/oauth-secret at start, never shown\n"), "\(printed)")
    }

    @Test func builtInProviderPrefixesArePrintedAsComments() throws {
        let c = try load("[provider_prefixes]\n\"llama-\" = \"meta\"\n\"Grok-\" = \"x-ai\"\n")
        let printed = ConfigPrinter.text(c)
        let section = try #require(printed.components(separatedBy: "[provider_prefixes]\n").last?.components(separatedBy: "\n\n").first)
        let lines = section.split(separator: "\n").map(String.init)
        #expect(Array(lines.prefix(3)) == ["\"llama-\" = \"meta\"", "\"Grok-\" = \"x-ai\"", "# built in:"])
        #expect(lines.contains("# \"claude-\" = \"anthropic\"") && lines.contains("# \"us.anthropic.\" = \"bedrock\""))
        #expect(!lines.contains { $0.hasPrefix("# \"grok-\"") }, "a replaced built-in prefix is not shown")
        #expect(try load(printed).providerPrefixes == c.providerPrefixes)
    }

    /// A key the table does not list is refused in every section, at its line and column.
    @Test func anUnknownKeyIsRefusedInEverySection() {
        for section in ConfigKeys.sections where section.shape != .map {
            let text = "\(section.header)\n  no_such_key = 1\n"
            guard case .failure(let e) = ConfigLoader.parse(text: text, file: "t.toml") else {
                Issue.record("\(section.header): an unknown key is accepted"); continue
            }
            let path = section.shape == .arrayOfTables ? section.header : "[\(section.name)]"
            #expect(e.diagnostics.map(\.description).contains("t.toml:2:3: error: unknown key `no_such_key` in \(path)"), "\(e)")
        }
        // Above every header: the tables a key of that name belongs in.
        #expect(ConfigLoader.parse(text: "max_keys_per_window = 3\n", file: "t.toml").failure?.description
                == "t.toml:1:1: error: unknown key `max_keys_per_window` at the top level; it belongs in a [rollups] table")
        #expect(ConfigLoader.parse(text: "dir = \"/x\"\n", file: "t.toml").failure?.description
                == "t.toml:1:1: error: unknown key `dir` at the top level; it belongs in a [rollups] or [state] table")
    }

    /// An empty string is refused with what to do instead: omit the key for its default, as printed.
    @Test func anEmptyValueNamesTheDefault() {
        let textual: Set<ConfigValueType> = [.string, .brokers, .topic, .path, .listen]
        let keys = ConfigKeys.sections.filter { $0.shape == .table }.flatMap(\.keys)
            .filter { textual.contains($0.type) && $0.value(in: TokenmeterConfig()) != nil }
        #expect(keys.count >= 8)
        for key in keys {
            let message = ConfigLoader.parse(text: "[\(key.section)]\n\(key.name) = \"\"\n", file: "t.toml").failure?.description
            #expect(message == "t.toml:2:\(key.name.count + 4): error: `\(key.path)` must not be empty "
                    + "(omit the key for \(key.value(in: TokenmeterConfig()) ?? "?"))")
        }
    }

    /// docs/configuration-reference.md is generated from the table: regenerate it with
    /// `swift run tokenmeter check-config --reference > docs/configuration-reference.md`.
    @Test func theReferenceInTheDocsIsGeneratedFromTheTable() throws {
        let path = Self.repoRoot.appendingPathComponent("docs/configuration-reference.md").path
        let inDocs = try String(contentsOfFile: path, encoding: .utf8)
        let generated = ConfigReference.markdown()
        #expect(inDocs == generated, """
            docs/configuration-reference.md is not the table's: run \
            `swift run tokenmeter check-config --reference > docs/configuration-reference.md`
            """)
        for key in ConfigKeys.keys {
            #expect(generated.contains("| `\(key.name)` |"), "\(key.path) is not in the reference")
        }
    }
}

private extension Result {
    var failure: Failure? { if case .failure(let e) = self { return e }; return nil }
}
