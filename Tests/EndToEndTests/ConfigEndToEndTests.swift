import Foundation
import Testing
import TokenmeterCore

/// The configuration as the real binary handles it: `check-config --print` of a file that sets every key
/// reads back as the same configuration, and a SIGHUP that changes a key needing a restart says so.
@Suite struct ConfigEndToEndTests {
    /// The file that sets every key of the key table (its secret file need not exist: `--file-only`).
    @Test(.timeLimit(.minutes(1))) func checkConfigPrintsEveryKeyAndItReadsBack() throws {
        let dir = try Harness.tempDir("print-every-key")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/every.toml"
        try ConfigKeys.everyKeyTOML().write(toFile: path, atomically: true, encoding: .utf8)
        let r = try runTokenmeter(["check-config", "--file-only", "--print", "--config", path])
        #expect(r.status == 0, "\(r.stderr)")
        let printed = try #require(r.stdout.components(separatedBy: "\n\(path): ok (").first)
        for key in ConfigKeys.keys where ConfigKeys.section(key.section)?.shape == .table {
            #expect(printed.contains("\n\(key.name) = "), "\(key.path) is not printed:\n\(printed)")
        }
        #expect(printed.contains("\nhandover_timeout = \"20s\"\n") && printed.contains("\nmax_keys_per_window = 5000\n"))
        let printedPath = dir + "/printed.toml"
        try printed.write(toFile: printedPath, atomically: true, encoding: .utf8)
        let again = try runTokenmeter(["check-config", "--file-only", "--config", printedPath])
        #expect(again.status == 0, "\(again.stderr)")
        var original = try ConfigLoader.load(path: path).get()
        var back = try ConfigLoader.load(path: printedPath).get()
        for i in original.prices.indices { original.prices[i].origin = "" }
        for i in back.prices.indices { back.prices[i].origin = "" }
        #expect(back == original)
    }

    /// `kafka.handover_timeout` and `rollups.max_keys_per_window` changed in the file: the reload applies
    /// the rest and names both in a "restart needed" warning (no broker is needed for a reload).
    @Test(.timeLimit(.minutes(1))) func aReloadThatChangesARestartKeySaysRestartNeeded() throws {
        let dir = try Harness.tempDir("reload-restart")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let config = try KafkaEdgeCaseTests.config(dir, broker: "127.0.0.1:1", group: "reload-restart")
        let text = try String(contentsOfFile: config, encoding: .utf8)
        let log = dir + "/run.log"
        let daemon = try Harness.start(["run", "--config", config], log: log)
        defer { if daemon.isRunning { daemon.terminate(); daemon.waitUntilExit() } }
        func logText() -> String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
        // The SIGHUP handler is installed before the daemon logs its start.
        #expect(Harness.await(seconds: 20) { logText().contains("tokenmeter starting") }, "no start; see \(log)")
        try text.replacingOccurrences(of: "[kafka]\n", with: "[kafka]\nhandover_timeout = \"40s\"\n")
            .replacingOccurrences(of: "[rollups]\n", with: "[rollups]\nmax_keys_per_window = 77\n")
            .write(toFile: config, atomically: true, encoding: .utf8)
        kill(daemon.processIdentifier, SIGHUP)
        #expect(Harness.await(seconds: 20) { logText().contains("configuration reloaded") }, "no reload; see \(log)")
        let warning = logText().split(separator: "\n").first { $0.contains("restart needed:") }
        #expect(warning?.contains("restart needed: the configuration file changes kafka.handover_timeout, "
                                  + "rollups.max_keys_per_window, which the daemon keeps") == true, "\(logText())")
        KafkaEdgeCaseTests.stop(daemon, log)
    }
}
