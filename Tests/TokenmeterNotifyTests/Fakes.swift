import Foundation
import Synchronization
import TokenmeterCore
import TokenmeterDaemon
import TokenmeterKafka
@testable import TokenmeterNotify

/// Time that moves only when a worker sleeps: a retry's wait is recorded and passes at once.
final class ManualClock: NotifyClock, @unchecked Sendable {
    private let lock = NSLock()
    private var now: Int64
    private(set) var slept: Int64 = 0
    init(_ start: Int64 = 1_780_000_000_000) { now = start }
    func nowMillis() -> Int64 { lock.lock(); defer { lock.unlock() }; return now }
    func sleep(millis: Int64) { lock.lock(); now += millis; slept += millis; lock.unlock() }
    func advance(_ ms: Int64) { lock.lock(); now += ms; lock.unlock() }
}

/// A sink that answers from a script (then 200 forever) and keeps every request it got.
final class ScriptedTransport: HTTPTransport, @unchecked Sendable {
    private let lock = NSLock()
    private var script: [Result<HTTPResponse, TransportError>]
    private(set) var requests: [HTTPRequest] = []
    /// Calls that began (a gated call begins before it answers).
    private var entered = 0
    var began: Int { lock.lock(); defer { lock.unlock() }; return entered }
    /// While set, `post` waits for it: a sink that hangs.
    let gate: DispatchSemaphore?

    init(_ script: [Result<HTTPResponse, TransportError>] = [], gate: DispatchSemaphore? = nil) {
        self.script = script; self.gate = gate
    }

    func post(_ request: HTTPRequest, timeoutMillis: Int64) -> Result<HTTPResponse, TransportError> {
        lock.lock(); entered += 1; lock.unlock()
        gate?.wait()
        lock.lock(); defer { lock.unlock() }
        requests.append(request)
        return script.isEmpty ? .success(HTTPResponse(status: 200)) : script.removeFirst()
    }

    var count: Int { lock.lock(); defer { lock.unlock() }; return requests.count }
    var ids: [String] {
        lock.lock(); defer { lock.unlock() }
        return requests.compactMap { r in r.headers.first { $0.0 == "X-Tokenmeter-Alert-Id" }?.1 }
    }
}

enum Sample {
    /// A real alert as the daemon publishes it (TokenmeterCore's `Alert.json`).
    static func alert(id: String = "a1b2c3d4e5f60718", kind: Alert.Kind = .budgetThreshold, severity: Alert.Severity = .warning,
                      rule: String = "finance-monthly", scope: [KeyValue] = [KeyValue("owner", "finance-ops")],
                      threshold: Int64? = 80_000, periodEnd: Int64 = 1_782_864_000_000) -> Alert {
        Alert(id: id, kind: kind, severity: severity, rule: rule, scope: scope, periodStart: 1_780_272_000_000,
              periodEnd: periodEnd, thresholdMilliPct: threshold, budget: Money.parse("5000")!, spent: Money.parse("4012.35")!,
              usedHundredthsPct: 8024, projected: Money.parse("6110.10")!,
              topWorkflows: [Alert.Share(name: "invoice-<extraction>", cost: Money.parse("3000.05")!)],
              eventTime: 1_780_300_000_000, emittedAt: 1_780_300_000_123,
              message: "finance-monthly: 80% of $5000.00 used ($4012.35)", details: .threshold)
    }

    static func notifyAlert(_ a: Alert = alert()) throws -> NotifyAlert { try NotifyAlert.parse(a.jsonBytes) }

    /// A new folder under the temporary directory; the test removes it when done.
    static func tempDir() throws -> String {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("notify-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    static func json(_ bytes: [UInt8]) throws -> Any { try JSONSerialization.jsonObject(with: Data(bytes)) }
}

/// A producer whose acknowledgements come when the test says: `produce` keeps the message, `poll` reports
/// what `settle` released (nil: delivered, else the error).
final class HeldProducer: MessageProducer {
    struct Message { var topic: String; var key: [UInt8]?; var value: [UInt8]; var headers: [String: String]; var token: UInt64 }
    var onDelivery: ((UInt64, KafkaError?) -> Void)?
    var onUndelivered: ((UInt64, KafkaError, UnsafeRawBufferPointer?, UnsafeRawBufferPointer, [(String, [UInt8])]) -> Void)?
    var deliveryLatencyMicros: Int64 { -1 }
    private(set) var produced: [Message] = []
    private var held: [UInt64] = []
    private var released: [(UInt64, KafkaError?)] = []
    /// Thrown by the next `produce`.
    var refuseNext: KafkaError?
    var outstanding: Int { held.count + released.count }

    func produce(topic: String, key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer, headers: [(String, [UInt8])],
                 partition: Int32?, token: UInt64) throws {
        if let e = refuseNext { refuseNext = nil; throw e }
        var h: [String: String] = [:]
        for (k, v) in headers { h[k] = String(decoding: v, as: UTF8.self) }
        produced.append(Message(topic: topic, key: key.map { Array($0) }, value: Array(value), headers: h, token: token))
        held.append(token)
    }

    /// Releases the oldest held message's report.
    func settle(_ error: KafkaError? = nil) { released.append((held.removeFirst(), error)) }

    func poll(timeoutMs: Int32) -> Int {
        let r = released
        released.removeAll()
        for (t, e) in r { onDelivery?(t, e) }
        return r.count
    }

    func flush(timeoutMs: Int32) -> Bool { _ = poll(timeoutMs: 0); return held.isEmpty }
}
