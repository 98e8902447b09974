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
                           cost: Money(dollars: 20), requests: 1, time: 1_000, names: names)
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
