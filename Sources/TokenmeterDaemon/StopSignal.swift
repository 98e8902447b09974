import Dispatch
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Turns SIGTERM/SIGINT (stop) and SIGHUP (reload) into flags the polling thread checks between batches:
/// the hot loop never blocks on a signal and never runs handler code in signal context.
///
/// `@unchecked Sendable`: the flags are atomics and `sources` is written only in `init`.
public final class StopSignal: @unchecked Sendable {
    private let stopFlag = Atomic<Bool>(false)
    private let reloadFlag = Atomic<Bool>(false)
    private var sources: [DispatchSourceSignal] = []
    private let queue = DispatchQueue(label: "tokenmeter.signals")

    public init(handleReload: Bool = false) {
        var signals = [SIGTERM, SIGINT]
        if handleReload { signals.append(SIGHUP) }
        for sig in signals {
            signal(sig, SIG_IGN)
            let src = DispatchSource.makeSignalSource(signal: sig, queue: queue)
            src.setEventHandler { [unowned self] in
                if sig == SIGHUP { self.reloadFlag.store(true, ordering: .releasing) } else { self.stopFlag.store(true, ordering: .releasing) }
            }
            src.resume()
            sources.append(src)
        }
    }

    public var stopRequested: Bool { stopFlag.load(ordering: .acquiring) }
    public func requestStop() { stopFlag.store(true, ordering: .releasing) }

    /// True once per SIGHUP.
    public func takeReload() -> Bool { reloadFlag.exchange(false, ordering: .acquiringAndReleasing) }
}
