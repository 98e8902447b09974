import Foundation
import Testing
import TokenmeterCore
import TokenmeterTOML
@testable import TokenmeterNotify

@Suite struct NotifyConfigTests {
    @Test func aFullFileIsRead() throws {
        let text = """
        [kafka]
        brokers = "127.0.0.1:9092"
        topic = "alerts"
        instance = "notify-eu-1"
        handover_timeout = "45s"
        [kafka.properties]
        "session.timeout.ms" = 6000
        [state]
        dir = "/tmp/n"
        remember = "3d"
        [delivery]
        queue_size = 50
        max_attempts = 4
        initial_backoff = "250ms"
        timeout = "2s"
        [[sink]]
        name = "pager"
        type = "alertmanager"
        url = "http://127.0.0.1:9093"
        [[sink]]
        name = "chat"
        type = "slack"
        url_file = "slack-url"
        [[route]]
        sinks = ["pager", "chat"]
        severities = ["critical"]
        continue = false
        """
        let c = try NotifyConfigLoader.parse(text: text, file: "n.toml").get()
        #expect(c.brokers == "127.0.0.1:9092" && c.topic == "alerts")
        #expect(c.kafkaProperties.map { "\($0.0)=\($0.1)" } == ["session.timeout.ms=6000"])
        #expect(c.rememberMillis == 3 * 86_400_000)
        #expect(c.instance == "notify-eu-1" && c.handoverTimeoutMillis == 45_000)
        #expect(c.queueSize == 50 && c.retry.maxAttempts == 4 && c.retry.initialBackoffMillis == 250 && c.timeoutMillis == 2000)
        #expect(c.sinks.map(\.name) == ["pager", "chat"])
        #expect(c.routes.count == 1 && c.routes[0].severities.map(\.pattern) == ["critical"] && !c.routes[0].continueMatching)
    }

    @Test func problemsAreReportedAtTheirLineAndColumn() {
        let text = """
        [kafka]
        brokers = "b:9092"
        [delivery]
        max_atempts = 3
        [[sink]]
        name = "chat"
        type = "slak"
        [[sink]]
        name = "chat2"
        type = "slack"
        url = "https://hooks.example/T/B/token"
        [[route]]
        sinks = ["chta"]
        """
        guard case .failure(let e) = NotifyConfigLoader.parse(text: text, file: "n.toml") else { Issue.record("accepted"); return }
        let lines = e.diagnostics.map(\.description)
        #expect(lines.contains("n.toml:4:1: error: unknown key `max_atempts` in [delivery]; did you mean `max_attempts`?"))
        #expect(lines.contains { $0.hasPrefix("n.toml:7:8: error: sink.type must be one of") && $0.hasSuffix("did you mean \"slack\"?") })
        #expect(lines.contains { $0.hasPrefix("n.toml:11:7: error: a Slack webhook URL carries its token") })
        #expect(lines.contains("n.toml:13:10: error: no sink is named \"chta\"; did you mean \"chat\"?"))
        // The token never appears in a message.
        #expect(!lines.joined().contains("hooks.example"))
    }

    @Test func theDeadLetterTopicIsAValidTopicOtherThanTheAlertsTopic() throws {
        let base = """
        [kafka]
        brokers = "b:9092"
        topic = "alerts"
        [delivery]
        dead_letter_topic = %@
        [[sink]]
        name = "pager"
        type = "alertmanager"
        url = "http://127.0.0.1:9093"
        """
        func parse(_ topic: String) -> Result<NotifyConfig, ConfigErrors> {
            NotifyConfigLoader.parse(text: base.replacingOccurrences(of: "%@", with: topic), file: "n.toml")
        }
        #expect(try parse("\"alerts-dead\"").get().deadLetterTopic == "alerts-dead")
        #expect(try NotifyConfigLoader.parse(text: base.replacingOccurrences(of: "dead_letter_topic = %@\n", with: ""), file: "n.toml")
            .get().deadLetterTopic == nil)
        guard case .failure(let same) = parse("\"alerts\"") else { Issue.record("the alerts topic was accepted"); return }
        #expect(same.diagnostics.map(\.description) == ["n.toml:5:21: error: delivery.dead_letter_topic must not be the alerts topic (kafka.topic)"])
        guard case .failure(let bad) = parse("\"dead letters\"") else { Issue.record("a bad topic name was accepted"); return }
        #expect(bad.diagnostics.map(\.description).first?.hasPrefix("n.toml:5:21: error: delivery.dead_letter_topic: \"dead letters\" is not a valid Kafka topic name") == true)
    }

    @Test func secretFilesAreReadAtStartAndNeverShown() throws {
        let dir = try Sample.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "https://hooks.example/services/T/B/SECRETTOKEN\n".write(toFile: dir + "/slack-url", atomically: true, encoding: .utf8)
        chmod(dir + "/slack-url", 0o600)
        var c = NotifyConfig()
        c.sinks = [.init(name: "chat", kind: .slack, url: nil, urlFile: "slack-url", secretFile: nil, timeoutMillis: nil,
                         position: TOMLPosition(line: 3, column: 1)),
                   .init(name: "hook", kind: .webhook, url: "http://x", urlFile: nil, secretFile: dir + "/missing",
                         timeoutMillis: nil, position: TOMLPosition(line: 9, column: 1))]
        let (sinks, diags) = c.resolveSinks(file: "n.toml", credentialsDirectory: dir)
        #expect(sinks.first?.url == "https://hooks.example/services/T/B/SECRETTOKEN")
        #expect(sinks.first?.redactedURL == "https://hooks.example/…")
        #expect(diags.map(\.description).contains { $0.hasPrefix("n.toml:9:1: error: sink \"hook\": secret_file: cannot open") })
    }
}

@Suite struct NotifyExampleConfigTests {
    /// The example shipped in config/ is valid and routes as its comments say.
    @Test func theExampleConfigIsValid() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("config/notify.toml").path
        let c = try NotifyConfigLoader.load(path: path).get()
        #expect(c.sinks.map(\.kind) == [.alertmanager, .slack, .webhook])
        let critical = try Sample.notifyAlert(Sample.alert(severity: .critical))
        #expect(Router.sinks(for: critical, routes: c.routes) == ["alertmanager", "finops-slack", "tickets"])
        let unpriced = try Sample.notifyAlert(Sample.alert(kind: .unpricedModel, severity: .info, rule: "unpriced_model",
                                                           scope: [KeyValue("model", "m")], threshold: nil))
        #expect(Router.sinks(for: unpriced, routes: c.routes) == ["alertmanager"])
    }
}
