import TokenmeterCore
import TokenmeterDaemon
import TokenmeterTOML
#if canImport(Glibc)
import Glibc
#endif

/// `tokenmeter notify`'s configuration: its own file (default `/etc/tokenmeter/notify.toml`), in the same
/// TOML style and with the same diagnostics as the daemon's (docs/notify.md lists every key).
///
/// A file of its own rather than a `[notify]` table in tokenmeter.toml: notify runs as its own service,
/// often on another host and under another user, holds other secrets (Slack and webhook tokens), and is
/// restarted on its own; the daemon's file should not have to change, or be readable, for it.
public struct NotifyConfig: Sendable {
    public static let defaultPath = "/etc/tokenmeter/notify.toml"

    public var brokers = ""
    public var topic = "llm-alerts"
    public var groupID = "tokenmeter-notify"
    /// This instance's name in the group's commit metadata (the hand-over between instances); nil: the host
    /// name and the state folder, which is what the delivered log belongs to.
    public var instance: String?
    /// How long a partition handed to this instance waits for its previous owner's release.
    public var handoverTimeoutMillis: Int64 = 30_000
    /// librdkafka properties (`[kafka.properties]`), as text.
    public var kafkaProperties: [(String, String)] = []
    public var stateDir = "/var/lib/tokenmeter-notify"
    /// How long after its period's end an `alert_id` is still remembered.
    public var rememberMillis: Int64 = 7 * 86_400_000
    public var maxRememberedPerSink = 100_000
    public var queueSize = 1_000
    public var retry = RetryPolicy()
    public var timeoutMillis: Int64 = 10_000
    /// nil: `<state.dir>/dead-letters.jsonl`.
    public var deadLetterFile: String?
    public var deadLetterMaxBytes = 64 << 20
    /// `delivery.dead_letter_topic`: given-up alerts go to this topic (the file only when the topic fails).
    public var deadLetterTopic: String?
    public var shutdownTimeoutMillis: Int64 = 10_000
    /// `/metrics` listen address, or nil for none.
    public var metricsListen: String?
    public var sinks: [SinkConfig] = []
    public var routes: [Route] = []

    public init() {}

    /// A sink as written: its URL and secret are read from files at start (`resolveSinks`), never here.
    public struct SinkConfig: Sendable {
        public var name: String
        public var kind: Sink.Kind
        /// Inline `url` (fine for Alertmanager on a private network).
        public var url: String?
        /// `url_file`: a file holding the URL (Slack's and webhooks' carry a token).
        public var urlFile: String?
        /// `secret_file` (webhook): the HMAC key.
        public var secretFile: String?
        public var timeoutMillis: Int64?
        public var position: TOMLPosition

        public init(name: String, kind: Sink.Kind, url: String?, urlFile: String?, secretFile: String?,
                    timeoutMillis: Int64?, position: TOMLPosition) {
            self.name = name; self.kind = kind; self.url = url; self.urlFile = urlFile; self.secretFile = secretFile
            self.timeoutMillis = timeoutMillis; self.position = position
        }
    }

    public var deadLetterPath: String { deadLetterFile ?? stateDir + "/dead-letters.jsonl" }

    /// `kafka.instance`, or the host name and the state folder (what the delivered log belongs to).
    public var instanceName: String { instance ?? "\(WallClock.hostName()):\(stateDir)" }

    /// The sinks with their files read: URLs and secrets from `url_file`/`secret_file` (a relative path is
    /// a systemd credential name under `$CREDENTIALS_DIRECTORY`). Problems name the file, never its content.
    public func resolveSinks(file: String, credentialsDirectory: String? = getenv("CREDENTIALS_DIRECTORY").map { String(cString: $0) })
        -> (sinks: [Sink], diagnostics: [ConfigDiagnostic]) {
        var out: [Sink] = []
        var diags: [ConfigDiagnostic] = []
        func path(_ p: String) -> String {
            guard !p.hasPrefix("/"), let dir = credentialsDirectory, !dir.isEmpty else { return p }
            return dir + "/" + p
        }
        for s in sinks {
            func problem(_ m: String, _ severity: ConfigDiagnostic.Severity = .error) {
                diags.append(ConfigDiagnostic(file: file, line: s.position.line, column: s.position.column,
                                              message: "sink \"\(s.name)\": \(m)", severity: severity))
            }
            var url = s.url
            if let f = s.urlFile {
                switch SecretFile.read(path(f)) {
                case .success(let c):
                    url = c.value
                    if let w = c.warning { problem(w, .warning) }
                case .failure(let e): problem("url_file: \(e.message)")
                }
            }
            var secret: [UInt8]?
            if let f = s.secretFile {
                switch SecretFile.read(path(f)) {
                case .success(let c):
                    secret = Array(c.value.utf8)
                    if let w = c.warning { problem(w, .warning) }
                case .failure(let e): problem("secret_file: \(e.message)")
                }
            }
            if let u = url {
                if !(u.hasPrefix("http://") || u.hasPrefix("https://")) {
                    problem("the URL\(s.urlFile != nil ? " in url_file" : "") must start with http:// or https://")
                } else {
                    out.append(Sink(name: s.name, kind: s.kind, url: u, secret: secret, timeoutMillis: s.timeoutMillis ?? timeoutMillis))
                }
            }
        }
        return (out, diags)
    }
}
