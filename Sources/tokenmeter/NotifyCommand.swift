import ArgumentParser
import Foundation
import TokenmeterCore
import TokenmeterTOML
import TokenmeterDaemon
import TokenmeterNotify

/// `tokenmeter notify`: delivers alerts from the alerts topic to Alertmanager, Slack and webhooks
/// (docs/notify.md). The work is in TokenmeterNotify; this file reads the options and the config.
struct NotifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "notify",
        abstract: "Deliver alerts to Prometheus Alertmanager, Slack and webhooks (at least once, de-duplicated by alert_id).",
        discussion: """
            With --config FILE (default /etc/tokenmeter/notify.toml when no --brokers is given) the file names \
            the sinks, routes and delivery settings; a bad file is reported as FILE:LINE:COL and exits 78. \
            The quick form needs no file: --brokers B with --alertmanager URL and/or --webhook URL sends every \
            alert to every sink named. --check validates (and reads the secret files) and exits; --print also \
            prints the settings, URLs of secrets reduced to their host. SIGTERM or SIGINT stops: in-flight \
            deliveries get delivery.shutdown_timeout to finish, then what finished is committed.
            """)

    @Option(help: "The notify configuration file (TOML).")
    var config: String?

    @Option(help: "Bootstrap servers (the quick form, without a file).")
    var brokers: String?

    @Option(help: "The alerts topic (quick form).")
    var topic: String = "llm-alerts"

    @Option(help: "Consumer group (quick form).")
    var group: String = "tokenmeter-notify"

    @Option(help: "Alertmanager base URL, e.g. http://127.0.0.1:9093 (repeatable; quick form).")
    var alertmanager: [String] = []

    @Option(help: "Webhook URL that receives each alert's JSON (repeatable; quick form, unsigned).")
    var webhook: [String] = []

    @Option(help: "Folder for the delivered-ids log and the dead letters (quick form).")
    var stateDir: String = "/var/lib/tokenmeter-notify"

    @Flag(help: "Validate the configuration and its files, then exit.")
    var check = false

    @Flag(name: .customLong("print"), help: "With --check: print the settings (secrets never shown).")
    var printSettings = false

    func validate() throws {
        if config != nil && brokers != nil { throw ValidationError("give --config or the quick form (--brokers ...), not both") }
        if brokers != nil && alertmanager.isEmpty && webhook.isEmpty {
            throw ValidationError("the quick form needs at least one --alertmanager or --webhook")
        }
        for u in alertmanager + webhook where !(u.hasPrefix("http://") || u.hasPrefix("https://")) {
            throw ValidationError("\(Sink.redact(u)): a sink URL must start with http:// or https://")
        }
    }

    func run() throws {
        var cfg: NotifyConfig
        let file: String
        if let brokers {
            file = "(command line)"
            cfg = NotifyConfig()
            cfg.brokers = brokers
            cfg.topic = topic
            cfg.groupID = group
            cfg.stateDir = stateDir
            let pos = TOMLPosition(line: 1, column: 1)
            for (i, u) in alertmanager.enumerated() {
                cfg.sinks.append(.init(name: "alertmanager\(i == 0 ? "" : "-\(i + 1)")", kind: .alertmanager, url: u,
                                       urlFile: nil, secretFile: nil, timeoutMillis: nil, position: pos))
            }
            for (i, u) in webhook.enumerated() {
                cfg.sinks.append(.init(name: "webhook\(i == 0 ? "" : "-\(i + 1)")", kind: .webhook, url: u,
                                       urlFile: nil, secretFile: nil, timeoutMillis: nil, position: pos))
            }
            cfg.routes = [Route(sinks: cfg.sinks.map(\.name))]
        } else {
            file = config ?? NotifyConfig.defaultPath
            switch NotifyConfigLoader.load(path: file) {
            case .success(let c): cfg = c
            case .failure(let errors):
                for d in errors.diagnostics { printError(d.description) }
                throw ExitCode(exitConfigError)
            }
        }
        let (sinks, diagnostics) = cfg.resolveSinks(file: file)
        for d in diagnostics { printError(d.description) }
        if diagnostics.contains(where: { $0.severity == .error }) { throw ExitCode(exitConfigError) }
        if check {
            if printSettings {
                writeOut("brokers \(cfg.brokers), topic \(cfg.topic), group \(cfg.groupID) as \(cfg.instanceName), state \(cfg.stateDir)\n")
                writeOut("dead letters: " + (cfg.deadLetterTopic.map { "topic \($0), else " } ?? "") + "file \(cfg.deadLetterPath)\n")
                for s in sinks {
                    writeOut("sink \(s.name): \(s.kind.rawValue) \(s.redactedURL)\(s.secret != nil ? " (signed)" : ""), timeout \(s.timeoutMillis) ms\n")
                }
                for (i, r) in cfg.routes.enumerated() {
                    func g(_ name: String, _ l: [Glob]) -> String { l.isEmpty ? "" : " \(name)=\(l.map(\.pattern).joined(separator: ","))" }
                    writeOut("route \(i + 1):\(g("types", r.types))\(g("severities", r.severities))\(g("rules", r.rules))"
                             + "\(g("owners", r.owners))\(g("workflows", r.workflows)) -> \(r.sinks.joined(separator: ", "))"
                             + "\(r.continueMatching ? "" : " (stop)")\n")
                }
            }
            writeOut("\(file): OK, \(sinks.count) sinks, \(cfg.routes.count) routes\n")
            return
        }
        let log = NotifyLog(perMinute: 120) { printError($0) }
        let stop = StopSignal()
        let service: NotifyService
        do {
            service = try NotifyService(config: cfg, sinks: sinks, log: log)
        } catch {
            printError("tokenmeter notify: cannot start: \(error)")
            throw ExitCode(1)
        }
        var server: HTTPServer?
        if let listen = cfg.metricsListen {
            do {
                let view = service.dispatcher.metricsView
                let s = try HTTPServer(listen: listen) { path in
                    path == "/metrics" ? .init(status: 200, contentType: "text/plain; version=0.0.4", body: view.render())
                        : .init(status: 404, body: "not found\n")
                }
                s.start()
                printError("tokenmeter notify: metrics on http://\(s.boundAddress)/metrics")
                server = s
            } catch {
                printError("tokenmeter notify: http.listen \(listen): \(error)")
                throw ExitCode(exitConfigError)
            }
        }
        defer { server?.stop() }
        do {
            try service.run(stop: { stop.stopRequested })
        } catch {
            printError("tokenmeter notify: \(error)")
            throw ExitCode(1)
        }
    }
}
