import Foundation
import Testing

/// `tokenmeter bench` end to end, tiny: it runs against its own broker process and prints valid JSON.
@Suite struct BenchCommandTests {
    @Test(.timeLimit(.minutes(3)))
    func smallRunPrintsJSON() throws {
        let dir = try Harness.tempDir("bench")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let out = Pipe()
        let p = try Harness.start(["bench", "--events", "2000", "--runs", "1", "--partitions", "8", "--json"],
                                  log: dir + "/bench.log", stdout: out)
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        let json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(json["events"] as? Int == 2000)
        for name in ["raw", "tokenmeter", "coreCanonical", "coreProviderShaped"] {
            let r = try #require(json[name] as? [String: Any])
            let eps = try #require(r["eventsPerSecond"] as? [String: Any])
            #expect((eps["median"] as? Double ?? 0) > 0, "\(name)")
        }
        #expect(json["ratio"] != nil)
        // The CPU ratio is the daemon's CPU per event over the raw consumer's, from the same runs.
        let raw = try #require(json["raw"] as? [String: Any]), tm = try #require(json["tokenmeter"] as? [String: Any])
        let rawCPU = try #require((raw["cpuSecondsPerMillionEvents"] as? [String: Any])?["median"] as? Double)
        let tmCPU = try #require((tm["cpuSecondsPerMillionEvents"] as? [String: Any])?["median"] as? Double)
        let cpuRatio = try #require((json["cpuRatio"] as? [String: Any])?["median"] as? Double)
        #expect(rawCPU > 0 && tmCPU > 0)
        #expect(abs(cpuRatio - tmCPU / rawCPU) < 1e-9 * max(1, cpuRatio))
        let load = try #require(json["load"] as? [String: Any])
        #expect((load["start"] as? [Double])?.count == 3 && (load["end"] as? [Double])?.count == 3, "the load average, 1, 5 and 15 minutes")
    }
}
