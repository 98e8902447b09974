import Foundation
import TokenmeterCore

/// How one alert's delivery to one sink ended.
public enum DeliveryOutcome: Sendable, Equatable {
    case delivered(attempts: Int)
    /// Given up: a permanent refusal, or the retries ran out. The alert goes to the dead letters.
    case gaveUp(reason: String, attempts: Int)
    /// Stopped by shutdown before an answer: neither delivered nor given up, so the message is not
    /// committed and the next start tries again.
    case abandoned
}

/// One sink's deliveries: a bounded queue and one thread that works through it in order, one alert at a
/// time, with retries. Each sink has its own worker, so a sink that hangs or stays down holds up only its
/// own queue; the others go on. `offer` never blocks: a full queue says no, and the caller gives that alert
/// up for this sink (dead letter) rather than stall every other sink behind it.
public final class SinkWorker: @unchecked Sendable {
    public let sink: Sink
    public let capacity: Int
    let transport: HTTPTransport
    let policy: RetryPolicy
    let clock: NotifyClock
    let random: @Sendable () -> Double
    /// Called on the worker's thread when a delivery ends.
    let completion: @Sendable (_ sink: String, _ alertID: String, _ outcome: DeliveryOutcome) -> Void
    /// Called on the worker's thread before each wait: why, which attempt failed, how long the wait is.
    let onRetry: @Sendable (_ sink: String, _ alertID: String, _ attempt: Int, _ reason: String, _ waitMillis: Int64) -> Void

    private let cond = NSCondition()
    private var queue: [NotifyAlert] = []
    private var head = 0
    private var busy = false
    private var stopping = false
    private var thread: Thread?
    private let done = DispatchSemaphore(value: 0)

    public init(sink: Sink, capacity: Int, transport: HTTPTransport, policy: RetryPolicy, clock: NotifyClock,
                random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) },
                onRetry: @escaping @Sendable (String, String, Int, String, Int64) -> Void = { _, _, _, _, _ in },
                completion: @escaping @Sendable (String, String, DeliveryOutcome) -> Void) {
        self.sink = sink; self.capacity = max(1, capacity); self.transport = transport; self.policy = policy
        self.clock = clock; self.random = random; self.onRetry = onRetry; self.completion = completion
    }

    /// Queues `alert`; false when the queue already holds `capacity` alerts.
    public func offer(_ alert: NotifyAlert) -> Bool {
        cond.lock(); defer { cond.unlock() }
        guard !stopping, queue.count - head < capacity else { return false }
        queue.append(alert)
        cond.signal()
        return true
    }

    /// Alerts waiting or being delivered.
    public var depth: Int {
        cond.lock(); defer { cond.unlock() }
        return queue.count - head + (busy ? 1 : 0)
    }

    public func start() {
        let t = Thread { [self] in
            run()
            done.signal()
        }
        t.name = "notify-\(sink.name)"
        thread = t
        t.start()
    }

    /// Stops taking alerts; the one in delivery ends at its next wait (`abandoned`) or answer. Waits at
    /// most `timeoutMillis` for the thread.
    public func stop(timeoutMillis: Int64) {
        cond.lock(); stopping = true; cond.broadcast(); cond.unlock()
        if thread != nil { _ = done.wait(timeout: .now() + .milliseconds(Int(timeoutMillis))) }
    }

    var isStopping: Bool { cond.lock(); defer { cond.unlock() }; return stopping }

    private func run() {
        while true {
            cond.lock()
            while head == queue.count && !stopping { cond.wait() }
            if stopping { cond.unlock(); return }
            let alert = queue[head]
            head += 1
            if head > 256 && head * 2 > queue.count { queue.removeFirst(head); head = 0 }
            busy = true
            cond.unlock()
            let outcome = deliver(alert)
            cond.lock(); busy = false; cond.unlock()
            completion(sink.name, alert.id, outcome)
        }
    }

    /// Delivers one alert with retries, on the calling thread (the worker's; tests call it directly).
    public func deliver(_ alert: NotifyAlert) -> DeliveryOutcome {
        let first = clock.nowMillis()
        var attempt = 0
        while true {
            attempt += 1
            let result = transport.post(sink.request(for: alert, now: clock.nowMillis()), timeoutMillis: sink.timeoutMillis)
            switch RetryPolicy.judge(result, now: clock.nowMillis()) {
            case .delivered:
                return .delivered(attempts: attempt)
            case .reject(let reason):
                return .gaveUp(reason: reason, attempts: attempt)
            case .retry(let reason, let retryAfter):
                if attempt >= policy.maxAttempts {
                    return .gaveUp(reason: "\(reason) (\(attempt) attempts)", attempts: attempt)
                }
                var wait = policy.backoff(afterAttempt: attempt, random: random())
                if let retryAfter, retryAfter > wait { wait = min(retryAfter, policy.maxRetryAfterMillis) }
                if clock.nowMillis() + wait - first > policy.giveUpAfterMillis {
                    return .gaveUp(reason: "\(reason) (still failing after \((clock.nowMillis() - first) / 1000) s, \(attempt) attempts)",
                                   attempts: attempt)
                }
                onRetry(sink.name, alert.id, attempt, reason, wait)
                // Wait in slices, so that a shutdown does not sit out a long Retry-After.
                var left = wait
                while left > 0 {
                    if isStopping { return .abandoned }
                    let slice = min(left, 200)
                    clock.sleep(millis: slice)
                    left -= slice
                }
                if isStopping { return .abandoned }
            }
        }
    }
}
