import Foundation
import Testing
import TokenmeterCore
@testable import TokenmeterNotify

@Suite struct PayloadTests {
    @Test func hmacMatchesRFC4231() {
        // Test case 1 and 2 of RFC 4231.
        let k1 = [UInt8](repeating: 0x0b, count: 20)
        #expect(HMACSHA256.hex(HMACSHA256.mac(key: k1, message: Array("Hi There".utf8)))
                == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
        #expect(HMACSHA256.hex(HMACSHA256.mac(key: Array("Jefe".utf8), message: Array("what do ya want for nothing?".utf8)))
                == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        // A key longer than the block is hashed first (test case 6).
        let k6 = [UInt8](repeating: 0xaa, count: 131)
        #expect(HMACSHA256.hex(HMACSHA256.mac(key: k6, message: Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8)))
                == "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")
        #expect(HMACSHA256.hex(HMACSHA256.sha256([])) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    @Test func alertIsReadBackExactly() throws {
        let a = Sample.alert()
        let n = try Sample.notifyAlert(a)
        #expect(n.id == a.id)
        #expect(n.type == "budget_threshold")
        #expect(n.owner == "finance-ops")
        #expect(n.workflow == nil)
        #expect(n.spentUSD == a.spent!.decimalString())
        #expect(n.projectedUSD == a.projected!.decimalString())
        #expect(n.periodEnd == a.periodEnd)
        #expect(n.eventTime == a.eventTime)
        #expect(n.topWorkflows.map(\.name) == ["invoice-<extraction>"])
        #expect(n.raw == a.jsonBytes)
    }

    @Test func invalidValuesAreRefusedWithAReason() {
        #expect(throws: NotifyAlert.Invalid.self) { try NotifyAlert.parse(Array("not json".utf8)) }
        #expect(throws: NotifyAlert.Invalid.self) { try NotifyAlert.parse(Array(#"{"type":"x"}"#.utf8)) }
        let badID = Sample.alert(id: "a b/../x").jsonBytes
        #expect(throws: NotifyAlert.Invalid.self) { try NotifyAlert.parse(badID) }
        let deep = Array((String(repeating: "[", count: 40) + String(repeating: "]", count: 40)).utf8)
        #expect(throws: NotifyAlert.Invalid.self) { try NotifyAlert.parse(deep) }
    }

    @Test func alertmanagerPayloadHasLabelsAnnotationsAndTimes() throws {
        let a = try Sample.notifyAlert()
        let r = Payloads.alertmanager(a, url: "http://127.0.0.1:9093/")
        #expect(r.url == "http://127.0.0.1:9093/api/v2/alerts")
        let list = try #require(try Sample.json(r.body) as? [[String: Any]])
        #expect(list.count == 1)
        let labels = try #require(list[0]["labels"] as? [String: String])
        #expect(labels == ["alertname": "budget_threshold", "alert_id": a.id, "rule": "finance-monthly",
                           "severity": "warning", "owner": "finance-ops", "threshold_pct": "80"])
        let ann = try #require(list[0]["annotations"] as? [String: String])
        #expect(ann["summary"] == a.message)
        #expect(ann["spent_usd"] == a.spentUSD)
        #expect(ann["budget_usd"] == a.budgetUSD)
        #expect(ann["projected_usd"] == a.projectedUSD)
        #expect(list[0]["startsAt"] as? String == RFC3339.format(a.eventTime))
        #expect(list[0]["endsAt"] as? String == RFC3339.format(a.periodEnd))
    }

    @Test func slackMessageIsBlockKit() throws {
        let a = try Sample.notifyAlert()
        let r = Payloads.slack(a, url: "https://hooks.example/T/B/x")
        let o = try #require(try Sample.json(r.body) as? [String: Any])
        #expect((o["text"] as? String)?.contains(a.message) == true)
        let blocks = try #require(o["blocks"] as? [[String: Any]])
        #expect(blocks.map { $0["type"] as? String } == ["header", "section", "section", "section", "context"])
        let header = try #require(blocks[0]["text"] as? [String: Any])
        #expect(header["type"] as? String == "plain_text")
        #expect((header["text"] as? String)?.contains("finance-monthly") == true)
        let fields = try #require(blocks[2]["fields"] as? [[String: String]])
        #expect(fields.contains { $0["text"] == "*Spent*\n$\(a.spentUSD!)" })
        #expect(fields.allSatisfy { $0["type"] == "mrkdwn" })
        // Names are escaped for mrkdwn.
        let top = try #require(blocks[3]["text"] as? [String: String])
        #expect(top["text"]?.contains("invoice-&lt;extraction&gt;") == true)
        #expect((blocks[4]["elements"] as? [[String: String]])?.first?["text"]?.contains(a.id) == true)
    }

    @Test func webhookSendsTheAlertAsPublishedAndSignsIt() throws {
        let a = try Sample.notifyAlert()
        let secret = Array("s3cret".utf8)
        let r = Payloads.webhook(a, url: "http://h/x", secret: secret, now: 1_780_300_001_999)
        #expect(r.body == a.raw)
        let h = Dictionary(r.headers, uniquingKeysWith: { $1 })
        #expect(h["X-Tokenmeter-Timestamp"] == "1780300001")
        let expected = "sha256=" + HMACSHA256.hex(HMACSHA256.mac(key: secret, message: Array("1780300001.".utf8) + a.raw))
        #expect(h["X-Tokenmeter-Signature"] == expected)
        #expect(Payloads.webhook(a, url: "http://h/x", secret: nil, now: 0).headers.allSatisfy { $0.0 != "X-Tokenmeter-Signature" })
    }

    @Test func urlsAreRedactedToTheirHost() {
        #expect(Sink.redact("https://hooks.slack.com/services/T0/B0/secret") == "https://hooks.slack.com/…")
        #expect(Sink.redact("http://user:pw@127.0.0.1:9093") == "http://127.0.0.1:9093")
    }
}
