import ArgumentParser
import TokenmeterCore
import TokenmeterDaemon
#if canImport(Glibc)
import Glibc
#endif

/// The run pipeline fed from a file: the same decode, price, windows and files, with the file as one
/// partition and line numbers as offsets. Rollups go under `rollups.dir`, written by `<instance>-replay`.
struct ReplayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Feed a JSON Lines file of events through the pipeline (backfill, tests).")

    @OptionGroup var options: ConfigOption

    @Option(name: .long, help: "Write rejected lines here as JSON Lines with their reason.")
    var deadLetters: String?

    @Option(name: .long, help: "Write the alerts the events raise here, one JSON object per line (nothing is published).")
    var alerts: String?

    @Option(name: .long, help: "Writer name in rollup file names (default: <instance>-replay).")
    var writer: String?

    @Argument(help: "Events, one JSON object per line.")
    var events: String

    func run() throws {
        var config = loadConfigOrExit(options.config)
        config.kafka.topics = ["replay"]
        let instance = writer ?? ((config.rollups.instance ?? WallClock.hostName()) + "-replay")
        let pipeline = Pipeline(config: config, instance: instance)
        guard let file = fopen(events, "r") else {
            printError("tokenmeter replay: cannot open \(events): \(String(cString: strerror(errno)))")
            throw ExitCode(66)  // EX_NOINPUT, as produce
        }
        defer { fclose(file) }
        var dead: [UInt8] = []
        var raised: [UInt8] = []
        var alertCount = 0
        func takeAlerts() {
            for a in pipeline.alerts.takePending() {
                alertCount += 1
                if alerts != nil { raised += a.jsonBytes; raised.append(0x0A) }
            }
        }
        var line: UnsafeMutablePointer<CChar>? = nil
        var cap = 0
        var offset: Int64 = 0
        // Only for refusing far-future event times; windows close on event time alone, so replays stay
        // deterministic.
        var wallNow = WallClock.now()
        while true {
            let n = getline(&line, &cap, file)
            if n < 0 { break }
            var len = n
            while len > 0 && (line![len - 1] == 10 || line![len - 1] == 13) { len -= 1 }
            defer { offset += 1 }
            if len == 0 { continue }
            let bytes = UnsafeRawBufferPointer(start: line!, count: len)
            if offset & 4095 == 0 { wallNow = WallClock.now() }
            let result = pipeline.process(bytes, topicIndex: 0, partition: 0, offset: offset, messageTime: nil, wallNow: wallNow)
            if case .rejected(let reason) = result, deadLetters != nil {
                dead += #"{"line":"#.utf8; dead += String(offset + 1).utf8
                dead += #","error":"#.utf8; appendString(&dead, reason.description)
                dead += #","value":"#.utf8; appendString(&dead, String(decoding: bytes, as: UTF8.self))
                dead += "}\n".utf8
            }
            if pipeline.pending.count > 64 { try pipeline.writePending() }
            if !pipeline.alerts.pending.isEmpty { takeAlerts() }
        }
        free(line)
        pipeline.closeAll()
        try pipeline.writePending()
        takeAlerts()
        if let deadLetters { try DurableFile.write(dead, to: deadLetters) }
        if let alerts { try DurableFile.write(raised, to: alerts) }
        let m = pipeline.metrics
        printError("replayed \(m.messages) lines: \(m.usageEvents) usage, \(m.outcomeEvents) outcomes, \(m.rejectedTotal) rejected, \(m.duplicates) duplicates, \(m.lateEvents) late; \(alertCount) alerts; \(m.filesWritten) rollup files in \(config.rollups.dir)")
    }
}
