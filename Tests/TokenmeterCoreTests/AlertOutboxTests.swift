import Foundation
import Testing
@testable import TokenmeterCore

private func tempDir() -> String {
    var template = Array("/tmp/tokenmeter-outbox-XXXXXX".utf8CString)
    let p = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }!
    return String(cString: p) + "/outbox"
}

/// Removes the temporary folder made by `tempDir` (the parent of the outbox).
private func removeTemp(_ outbox: String) {
    try? FileManager.default.removeItem(atPath: DurableFile.parentDirectory(outbox))
}

private func sample(_ id: String, emittedAt: EpochMillis, workflow: String = "invoice-extraction") -> Alert {
    Alert(id: id, kind: .budgetThreshold, severity: .warning, rule: "finance-monthly",
          scope: [KeyValue("owner", "finance-ops"), KeyValue("workflow", "invoice-*")],
          periodStart: RFC3339.parse("2026-11-01T00:00:00Z")!, periodEnd: RFC3339.parse("2026-12-01T00:00:00Z")!,
          thresholdMilliPct: 80_000, budget: Money.parse("5000"), spent: Money.parse("4012.35"), usedHundredthsPct: 8025,
          projected: nil, topWorkflows: [Alert.Share(name: workflow, cost: Money.parse("4012.35")!)],
          eventTime: RFC3339.parse("2026-11-21T14:03:00Z")!, emittedAt: emittedAt, message: "m", details: .threshold)
}

@Suite("Alert outbox")
struct AlertOutboxTests {
    @Test func addIsDurableIdempotentAndPendingSurvivesReopen() throws {
        let dir = tempDir()
        defer { removeTemp(dir) }
        let box = try AlertOutbox(dir: dir)
        #expect(try box.pending().isEmpty)
        let a = sample("00000000000000aa", emittedAt: 2000), b = sample("00000000000000bb", emittedAt: 1000)
        #expect(try box.add(a))
        #expect(try !box.add(a))  // same id: nothing new
        try box.add([b, a])
        #expect(box.count == 2)

        // A restart: a new outbox over the same folder resends both, oldest first, with key and value.
        let reopened = try AlertOutbox(dir: dir)
        let p = try reopened.pending()
        #expect(p.map(\.id) == ["00000000000000bb", "00000000000000aa"])
        #expect(p[1].key == "owner=finance-ops,workflow=invoice-*")
        #expect(p[1].value == a.jsonBytes)
        let obj = try JSONSerialization.jsonObject(with: Data(p[0].value)) as? [String: Any]
        #expect(obj?["alert_id"] as? String == "00000000000000bb")

        try reopened.remove("00000000000000bb")
        try reopened.remove("00000000000000bb")  // a second delivery report for the same id is harmless
        #expect(try reopened.pending().map(\.id) == ["00000000000000aa"])
        #expect(try AlertOutbox(dir: dir).pending().map(\.id) == ["00000000000000aa"])
    }

    @Test func deliveredAlertsStayMarkedUntilTheNextCheckpoint() throws {
        let dir = tempDir()
        defer { removeTemp(dir) }
        let box = try AlertOutbox(dir: dir)
        let a = sample("00000000000000aa", emittedAt: 1000)
        #expect(try box.add([a]).map(\.id) == [a.id])
        try box.markSent(a.id)
        // Delivered: not resent, and a replay that raises the same crossing again does not add it again.
        #expect(try box.pending().isEmpty)
        #expect(box.contains(a.id))
        #expect(try box.add([a]).isEmpty)
        #expect(try AlertOutbox(dir: dir).add([a]).isEmpty, "the marker survives a restart")
        // Once a checkpoint records the crossing, the marker goes.
        try box.forgetSent()
        #expect(!box.contains(a.id))
    }

    @Test func leftoverTemporaryFilesAreCleared() throws {
        let dir = tempDir()
        defer { removeTemp(dir) }
        _ = try AlertOutbox(dir: dir)
        try DurableFile.write(Array("partial".utf8), to: dir + "/.00000000000000cc.alert.tmp")
        try DurableFile.write(Array("not an alert".utf8), to: dir + "/junk.alert")
        let box = try AlertOutbox(dir: dir)
        #expect(try box.pending().isEmpty)  // the malformed file is skipped, not fatal
        #expect(try DurableFile.read(dir + "/.00000000000000cc.alert.tmp") == nil)
    }

    @Test func engineAlertsRoundTripThroughTheOutbox() throws {
        var names = StringTable()
        let engine = AlertEngine(budgets: [BudgetRule(name: "b", period: .day, amount: Money(dollars: 10), thresholds: [50, 100],
                                                      forecast: false)], spikes: [], outcomeLimits: [], now: { 42 })
        engine.recordUsage(workflow: names.intern("w"), owner: names.intern("o"), model: names.intern("m"),
                           cost: Money(dollars: 20), requests: 1, time: 1_000, names: { names })
        let alerts = engine.takePending()
        #expect(alerts.count == 2 && engine.pending.isEmpty)
        let dir = tempDir()
        defer { removeTemp(dir) }
        let box = try AlertOutbox(dir: dir)
        try box.add(alerts)
        let p = try box.pending()
        #expect(p.map(\.id) == alerts.map(\.id))  // same emitted_at: order of adding
        #expect(p.allSatisfy { $0.key == "all" })
    }
}

/// Alerts sized to fit whatever names the events carried, and the outbox's way out for one that still
/// cannot be produced.
@Suite("Alerts that cannot be sent")
struct AlertFittingTests {
    /// A 400,000-byte model name with control characters in it: the unpriced-model alert keeps valid JSON,
    /// far under the 1,000,000-byte producer default, with marked names, an escaped key, and the id of the
    /// whole name.
    @Test func hugeNamesAreCutWithAMarkerAndTheIdStays() throws {
        let model = "evil\n\u{1}model" + String(repeating: "é\"\\", count: 100_000)
        let scope = [KeyValue("model", model)]
        let id = Alert.makeID(rule: "unpriced_model", scope: scope, periodStart: 0, kind: .unpricedModel, threshold: "")
        let a = Alert(id: id, kind: .unpricedModel, severity: .info, rule: "unpriced_model", scope: scope, periodStart: 0,
                      periodEnd: 86_400_000, thresholdMilliPct: nil, budget: nil, spent: nil, usedHundredthsPct: nil, projected: nil,
                      topWorkflows: [Alert.Share(name: model, cost: .zero)], eventTime: 0, emittedAt: 0,
                      message: "model \(model) has no price", details: .unpriced(model: model, requests: 1, workflow: model, owner: model))
        #expect(a.jsonBytes.count > 1_000_000, "the unfitted alert is too large for a default producer")
        let f = a.fittedForPublishing()
        #expect(f.id == id)
        #expect(f.jsonBytes.count < 64 << 10, "\(f.jsonBytes.count) bytes")
        let o = try #require(try JSONSerialization.jsonObject(with: Data(f.jsonBytes)) as? [String: Any])
        let cut = try #require((o["scope"] as? [String: Any])?["model"] as? String)
        #expect(cut.hasPrefix("evil\n\u{1}modelé\"\\") && cut.hasSuffix(Alert.truncationMarker))
        #expect(cut.utf8.count <= Alert.maxNameBytes)
        #expect((o["model"] as? String) == cut)
        #expect((o["message"] as? String).map { $0.utf8.count <= Alert.maxMessageBytes && $0.hasSuffix(Alert.truncationMarker) } == true)
        // The key: no raw control character, the escapes readable.
        #expect(f.kafkaKey.hasPrefix("model=evil\\n\\u0001model"))
        #expect(!f.kafkaKey.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F })
        #expect(f.kafkaKey.utf8.count < 4 * Alert.maxNameBytes)
        // Short names are left alone.
        let small = sample("00000000000000aa", emittedAt: 1)
        #expect(small.fittedForPublishing() == small)
        #expect(small.kafkaKey == small.key)
    }

    @Test func boundedCutsWholeCharacters() {
        #expect(Alert.bounded("abc", 3) == "abc")
        let s = Alert.bounded(String(repeating: "€", count: 100), 40)   // 3 bytes each
        #expect(s.utf8.count <= 40 && s.hasSuffix(Alert.truncationMarker))
        #expect(s.dropLast(Alert.truncationMarker.count).allSatisfy { $0 == "€" })
    }

    /// A rejected alert leaves the pending list for `rejected/`, its id still counts as present (a replay
    /// does not add it again), and a full `rejected/` deletes instead of growing.
    @Test func rejectedAlertsAreMovedAsideAndStayKnown() throws {
        let dir = tempDir()
        defer { removeTemp(dir) }
        let box = try AlertOutbox(dir: dir)
        let a = sample("00000000000000aa", emittedAt: 1)
        try box.add(a)
        #expect(try box.reject(a.id))
        #expect(try box.pending().isEmpty)
        #expect(FileManager.default.fileExists(atPath: dir + "/rejected/00000000000000aa.alert"))
        #expect(box.contains(a.id))
        #expect(try !box.add(a))
        #expect(try AlertOutbox(dir: dir).pending().isEmpty, "not resent at the next start")

        for i in 0..<AlertOutbox.maxRejected { FileManager.default.createFile(atPath: dir + "/rejected/filler-\(i).alert", contents: nil) }
        let b = sample("00000000000000bb", emittedAt: 2)
        try box.add(b)
        #expect(try !box.reject(b.id), "rejected/ is full: deleted instead")
        #expect(try box.pending().isEmpty)
        #expect(!FileManager.default.fileExists(atPath: dir + "/rejected/00000000000000bb.alert"))
    }
}

@Suite("Dead-letter spill file")
struct DeadLetterSpillTests {
    /// Records hold the bytes unchanged after a header line; the file turns into `spill.1` at its cap (the
    /// older `spill.1` is dropped), and a record larger than the cap is only counted.
    @Test func recordsAreKeptUnchangedAndTheFilesStayBounded() throws {
        let dir = DurableFile.parentDirectory(tempDir())
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let spill = DeadLetterSpill(stateDir: dir, maxFileBytes: 3_000)
        let value: [UInt8] = Array("{\"bad\":\n".utf8) + [0, 0xFF]
        #expect(try spill.append(topic: "llm-usage", partition: 3, offset: 42, reason: "bad_json: line\nbreak", key: [1, 2], value: value))
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: spill.path)))
        let header = "tmspill1 llm-usage 3 42 2 \(value.count) bad_json: line break\n"
        #expect(bytes == Array(header.utf8) + [1, 2] + value + [0x0A])
        #expect(spill.spilled == 1 && spill.bytes == Int64(bytes.count))
        #expect(DeadLetterSpill(stateDir: dir, maxFileBytes: 3_000).bytes == Int64(bytes.count), "a restart knows the size")

        let third = [UInt8](repeating: 0x42, count: Int(spill.maxFileBytes / 3))
        for i in 0..<5 { #expect(try spill.append(topic: "t", partition: 0, offset: Int64(i), reason: "r", key: nil, value: third)) }
        #expect(spill.bytes <= 2 * spill.maxFileBytes)
        #expect(FileManager.default.fileExists(atPath: spill.previousPath))
        let tooBig = [UInt8](repeating: 0, count: Int(spill.maxFileBytes))
        #expect(try !spill.append(topic: "t", partition: 0, offset: 9, reason: "r", key: nil, value: tooBig))
        #expect(spill.dropped == 1 && spill.spilled == 6)
    }
}
