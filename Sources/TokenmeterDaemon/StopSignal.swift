import Dispatch
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Turns SIGTERM/SIGINT (stop) and SIGHUP (reload) into flags the polling thread checks between batches:
/// the hot loop never blocks on a signal and never runs handler code in signal context.
public final class StopSignal: Sendable {
    private let stopFlag = Atomic<Bool>(false)
    private let reloadFlag = Atomic<Bool>(false)
    private let sources: Mutex<[DispatchSourceSignal]> = Mutex([])
    private let queue = DispatchQueue(label: "tokenmeter.signals")

    public init(handleReload: Bool = false) {
        var signals = [SIGTERM, SIGINT]
        if handleReload { signals.append(SIGHUP) }
        var made: [DispatchSourceSignal] = []
        for sig in signals {
            signal(sig, SIG_IGN)
            let src = DispatchSource.makeSignalSource(signal: sig, queue: queue)
            src.setEventHandler { [stopFlag, reloadFlag] in
                if sig == SIGHUP { reloadFlag.store(true, ordering: .releasing) } else { stopFlag.store(true, ordering: .releasing) }
            }
            src.resume()
            made.append(src)
        }
        sources.withLock { $0 = made }
    }

    public var stopRequested: Bool { stopFlag.load(ordering: .acquiring) }
    public func requestStop() { stopFlag.store(true, ordering: .releasing) }

    /// True once per SIGHUP.
    public func takeReload() -> Bool { reloadFlag.exchange(false, ordering: .acquiringAndReleasing) }
}
