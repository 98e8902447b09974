import Foundation
import Testing

/// `tokenmeter bench` end to end, tiny: it runs against its own broker process and prints valid JSON.
@Suite struct BenchCommandTests {
    @Test(.timeLimit(.minutes(3)))
    func smallRunPrintsJSON() throws {
        let dir = try Harness.tempDir("bench")
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
    }
}
