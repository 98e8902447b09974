import Foundation
import Testing
import TokenmeterCore
@testable import TokenmeterDaemon

@Suite("Start checks")
struct StartupChecksTests {
    func config(_ text: String) throws -> TokenmeterConfig {
        try ConfigLoader.parse(text: text, file: "t.toml").get()
    }

    @Test func aGoodConfigurationPassesAndKeepsItsSecretsForTheDaemon() throws {
        let dir = NSTemporaryDirectory() + "tokenmeter-startchecks-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data("Mv3-value\n".utf8).write(to: URL(fileURLWithPath: dir + "/pw"))
        #expect(chmod(dir + "/pw", 0o600) == 0)
        let c = try config("""
            [kafka]
            brokers = "127.0.0.1:1"
            [kafka.properties]
            "socket.timeout.ms" = "1000"
            [kafka.secret_files]
            "sasl.password" = "\(dir)/pw"
            [state]
            dir = "\(dir)/state"
            [rollups]
            dir = "\(dir)/rollups"
            [http]
            listen = "127.0.0.1:0"
            """)
        let checks = StartupChecks.run(c, instance: "t")
        #expect(checks.diagnostics.isEmpty, "\(checks.diagnostics)")
        #expect(checks.kafkaProperties.map(\.0) == ["bootstrap.servers", "client.id", "socket.timeout.ms", "sasl.password"])
        #expect(checks.kafkaProperties.last?.1 == "Mv3-value")
        #expect(checks.secretValues == ["Mv3-value"])
    }

    /// A reload cannot apply a new Kafka property, but it says now that the next start would refuse it.
    @Test func aReloadWarnsOfWhatTheNextStartWouldRefuse() throws {
        let old = try config("[http]\nlisten = \"127.0.0.1:0\"\n[state]\ndir = \"/tmp\"\n")
        let prices = try config("[http]\nlisten = \"127.0.0.1:0\"\n[state]\ndir = \"/tmp\"\n"
                                + "[[price]]\nmodel = \"m\"\ninput = 1\noutput = 2\n")
        #expect(ConfigReload.problemsForTheNextStart(old: old, new: prices, instance: "t").isEmpty)
        let bad = try config("[kafka.properties]\n\"linger.msx\" = \"5\"\n[http]\nlisten = \"127.0.0.1:0\"\n[state]\ndir = \"/tmp\"\n")
        let problems = ConfigReload.problemsForTheNextStart(old: old, new: bad, instance: "t").map(\.description)
        #expect(problems.count == 1)
        #expect(problems.first?.hasPrefix("t.toml:2:1: error: unknown librdkafka property `linger.msx`") == true, "\(problems)")
    }

    @Test func listenHosts() {
        #expect(StartupChecks.listenProblem(host: "127.0.0.1", port: "0") == nil)
        #expect(StartupChecks.listenProblem(host: "localhost", port: "9464") == nil)
        #expect(StartupChecks.listenProblem(host: "no-such-host.invalid", port: "9464")?.hasPrefix("cannot resolve the host \"no-such-host.invalid\"") == true)
        #expect(StartupChecks.listenProblem(host: "192.0.2.1", port: "9464")?.contains("is not an address of this machine") == true)
    }

    @Test func problemsArePlacedAtTheirValues() throws {
        let c = try config("""
            [kafka.properties]
            "fetch.wait.max.msx" = "10"
            "ssl.key.password" = "Hq2-inline"
            [http]
            listen = "no-such-host.invalid:1"
            """)
        let checks = StartupChecks.run(c, instance: "t")
        let lines = checks.errors.map(\.description)
        #expect(lines.contains { $0.hasPrefix("t.toml:2:1: error: unknown librdkafka property `fetch.wait.max.msx`; did you mean `fetch.wait.max.ms`?") }, "\(lines)")
        #expect(lines.contains { $0.hasPrefix("t.toml:5:10: error: `http.listen` \"no-such-host.invalid:1\": cannot resolve") }, "\(lines)")
        #expect(!lines.joined().contains("Hq2"))
        #expect(StartupChecks.display("kafka.properties.ssl.key.password") == "kafka.properties.\"ssl.key.password\"")
    }
}
