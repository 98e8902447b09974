import TokenmeterCore
import Foundation
import TokenmeterKafka
#if canImport(Glibc)
import Glibc
#endif

/// Every check `run` makes before it connects, so that `check-config` (the unit's `ExecStartPre=`) passes
/// exactly the configurations `run` accepts:
/// - the secret files (`[kafka.secret_files]`) are read, at most 64 KiB each (see `SecretFile`); a file
///   the group or others may read is a warning;
/// - every librdkafka property, secrets included, is set on a real librdkafka configuration, and a
///   consumer and a producer are built from it without a broker to reach (see `KafkaProperties.validate`);
/// - `http.listen` is resolved (`getaddrinfo`) and its address bound once on a throwaway port, so a host
///   that does not resolve or is not this machine's is found;
/// - `state.dir` exists as a writable folder or can be created (an error otherwise: the checkpoint and the
///   alert outbox live there); for `rollups.dir` the same is only a warning, since the daemon pauses and
///   retries until the folder can be written.
///
/// Each problem is a `ConfigDiagnostic` at the position of the value at fault (`TokenmeterConfig.origins`),
/// so both commands print `FILE:LINE:COL: error: ...` and exit 78. Messages never hold a secret: not a
/// secret file's content, not a value librdkafka refused.
public struct StartupChecks: Sendable {
    /// Errors and warnings, in file order.
    public var diagnostics: [ConfigDiagnostic] = []
    /// The librdkafka properties every client starts from: brokers, client id, `[kafka.properties]`, then
    /// the secrets read from their files. Read once per start: `run` hands these to the daemon.
    public var kafkaProperties: [(String, String)] = []
    /// The secret values, for redacting librdkafka's log lines.
    public var secretValues: [String] = []

    public var errors: [ConfigDiagnostic] { diagnostics.filter { $0.severity == .error } }
    public var warnings: [ConfigDiagnostic] { diagnostics.filter { $0.severity == .warning } }

    public static func run(_ config: TokenmeterConfig, instance: String) -> StartupChecks {
        var checks = StartupChecks()
        checks.checkKafka(config, instance: instance)
        checks.checkListen(config)
        checks.checkFolders(config)
        checks.diagnostics = checks.diagnostics.enumerated().sorted {
            ($0.element.line, $0.element.column, $0.offset) < ($1.element.line, $1.element.column, $1.offset)
        }.map(\.element)
        return checks
    }

    // MARK: librdkafka and the secret files

    /// The lists the daemon's clients are built from around the shared properties (`Daemon.run`,
    /// `AlertPublisher`, `KafkaConsumer`, `KafkaProducer`): what they add can clash with a user's property.
    static func clientLists(_ base: [(String, String)], group: String) -> [(KafkaProperties.ClientKind, [(String, String)])] {
        let consumer = [("partition.assignment.strategy", "range"), ("auto.offset.reset", "earliest"),
                        ("statistics.interval.ms", "5000")] + base
            + [("group.id", group), ("enable.auto.commit", "false"), ("enable.auto.offset.store", "false")]
        let producer = [("enable.idempotence", "true")] + base
            + [("enable.idempotence", "true"), ("message.timeout.ms", "0"), ("linger.ms", "5")]
        return [(.consumer, consumer), (.producer, producer)]
    }

    /// The librdkafka properties every client starts from, before the secrets: brokers, the client id, then
    /// the pass-through properties (a property the user sets comes later and wins).
    static func plainProperties(_ config: TokenmeterConfig, instance: String) -> [(String, String)] {
        [("bootstrap.servers", config.kafka.brokers), ("client.id", "tokenmeter-\(instance)")]
            + config.kafka.properties.map { ($0.key, $0.value) }
    }

    /// Each `kafka.secret_files` entry read (a relative path is a systemd credential name). The one reader of
    /// secret files: the start checks and the daemon's other callers both come here.
    static func readSecretFiles(_ config: TokenmeterConfig) -> [(KeyValue, Result<SecretFile.Contents, SecretFile.Problem>)] {
        config.kafka.secretFiles.map { ($0, SecretFile.read(secretPath($0.value))) }
    }

    mutating func checkKafka(_ config: TokenmeterConfig, instance: String) {
        let origins = config.origins
        var props = Self.plainProperties(config, instance: instance)
        var secretsOK = true
        for (kv, read) in Self.readSecretFiles(config) {
            let name = "kafka.secret_files.\(kv.key)"
            switch read {
            case .success(let contents):
                props.append((kv.key, contents.value))
                secretValues.append(contents.value)
                if let w = contents.warning { diagnostics.append(origins.warning(name, "`\(Self.display(name))`: \(w)")) }
            case .failure(let problem):
                secretsOK = false
                diagnostics.append(origins.error(name, "`\(Self.display(name))`: \(problem.message)"))
            }
        }
        kafkaProperties = props
        // Without a secret the clients are not built (librdkafka may need it), but every property is checked.
        let hide = secretValues + config.kafka.properties.filter { Self.isSensitive($0.key) }.map(\.value)
        let clients = secretsOK ? Self.clientLists(props, group: config.kafka.groupId) : []
        let problems = KafkaProperties.validate(props, clients: clients, hide: hide)
        guard !problems.isEmpty else { return }
        var known: [String]?
        for problem in problems {
            let property = problem.property
            let name: String
            switch property {
            case "bootstrap.servers"?, "metadata.broker.list"?: name = "kafka.brokers"
            case let p? where config.kafka.secretFiles.contains { $0.key == p }: name = "kafka.secret_files.\(p)"
            case let p? where config.kafka.properties.contains { $0.key == p }: name = "kafka.properties.\(p)"
            default: name = config.kafka.properties.isEmpty ? "[kafka]" : "[kafka.properties]"
            }
            var message: String
            switch problem.kind {
            case .unknown:
                message = "unknown librdkafka property `\(property ?? "")`"
                if known == nil { known = KafkaProperties.knownNames() }
                if let p = property, let s = Suggest.closest(p, in: known!) { message += "; did you mean `\(s)`?" }
                message += " (see librdkafka's CONFIGURATION.md for the properties of version 2.0.2)"
            case .invalidValue:
                message = property.map { _ in "`\(Self.display(name))`: librdkafka refuses the value: " } ?? ""
                message += problem.message.replacingOccurrences(of: "invalid value for Kafka property '\(property ?? "")': ", with: "")
            case .rejectedByClient:
                message = problem.message
            }
            diagnostics.append(origins.error(name, atKey: problem.kind == .unknown, message))
        }
    }

    /// `kafka.properties."sasl.mechanism"`: a librdkafka property's dots are part of its name.
    static func display(_ name: String) -> String {
        for table in ["kafka.properties.", "kafka.secret_files."] where name.hasPrefix(table) {
            return table + "\"" + name.dropFirst(table.count) + "\""
        }
        return name
    }

    /// Property names whose values are secrets even when written in the file (as `check-config --print` hides them).
    static func isSensitive(_ name: String) -> Bool { ConfigKeys.isSensitiveName(name) }

    // MARK: http.listen

    mutating func checkListen(_ config: TokenmeterConfig) {
        let listen = config.http.listen
        guard let (host, port) = try? HTTPServer.split(listen) else { return }  // the loader already refused it
        if let problem = Self.listenProblem(host: host, port: port) {
            diagnostics.append(config.origins.error("http.listen", "`http.listen` \"\(listen)\": \(problem)"))
        }
    }

    /// Resolves `host` and binds its first address on port 0 (the real port may be taken by a daemon
    /// running now; that is not a configuration problem).
    static func listenProblem(host: String, port: String) -> String? {
        let (res, rc) = HTTPServer.resolveToListen(host: host, port: port)
        guard rc == 0, let ai = res else {
            return "cannot resolve the host \"\(host)\": \(String(cString: gai_strerror(rc)))"
        }
        defer { freeaddrinfo(res) }
        let fd = socket(ai.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var storage = sockaddr_storage()
        withUnsafeMutableBytes(of: &storage) { dst in
            dst.copyMemory(from: UnsafeRawBufferPointer(start: ai.pointee.ai_addr, count: Int(ai.pointee.ai_addrlen)))
        }
        // Port 0: only whether the address belongs to this machine is asked.
        withUnsafeMutableBytes(of: &storage) { raw in
            if Int32(ai.pointee.ai_family) == AF_INET6 {
                raw.storeBytes(of: 0, toByteOffset: MemoryLayout<sockaddr_in6>.offset(of: \.sin6_port)!, as: UInt16.self)
            } else {
                raw.storeBytes(of: 0, toByteOffset: MemoryLayout<sockaddr_in>.offset(of: \.sin_port)!, as: UInt16.self)
            }
        }
        let bound = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, ai.pointee.ai_addrlen) }
        }
        if bound != 0 && (errno == EADDRNOTAVAIL || errno == EAFNOSUPPORT) {
            return "\"\(host)\" is not an address of this machine (\(String(cString: strerror(errno))))"
        }
        return nil
    }

    // MARK: Folders

    mutating func checkFolders(_ config: TokenmeterConfig) {
        // The state folder holds the checkpoint and the alert outbox: without it nothing can start. The
        // rollup folder may be fixed while the daemon runs (it pauses consuming until it is).
        for (name, path, required) in [("state.dir", config.state.dir, true), ("rollups.dir", config.rollups.dir, false)] {
            let origin = config.origins.values[name] == nil ? " (the default)" : ""
            switch FolderCheck.check(path) {
            case .ok:
                break
            case .impossible(let why), .notWritable(let why):
                let diagnostic = required
                    ? config.origins.error(name, "`\(name)`\(origin): \(why)")
                    : config.origins.warning(name, "`\(name)`\(origin): \(why); rollup files wait in memory and "
                                             + "consuming pauses until it can be written")
                diagnostics.append(diagnostic)
            }
        }
    }
}
