#if canImport(Glibc)
import Glibc
#endif

/// sd_notify(3) without libsystemd: one datagram per message to the AF_UNIX socket named by
/// `$NOTIFY_SOCKET` (a leading `@` is an abstract socket). Does nothing when the variable is unset, as when
/// the daemon runs outside systemd or under `Type=simple`.
///
/// The watchdog interval comes from `$WATCHDOG_USEC` (honoured only when `$WATCHDOG_PID` is unset or ours,
/// as sd_watchdog_enabled does). The daemon pings from its consume loop, so a stuck loop stops the pings
/// and systemd restarts the service.
public final class SystemdNotifier: @unchecked Sendable {
    private let fd: Int32
    private var address = sockaddr_un()
    private var addressLength: socklen_t = 0
    /// Half of `$WATCHDOG_USEC` in milliseconds (nil: no watchdog).
    public let watchdogIntervalMs: Int64?

    public var enabled: Bool { fd >= 0 }

    public init(environment: (String) -> String? = { name in getenv(name).map { String(cString: $0) } }) {
        var interval: Int64? = nil
        if let usec = environment("WATCHDOG_USEC").flatMap({ Int64($0) }), usec > 0 {
            let pid = environment("WATCHDOG_PID").flatMap { Int32($0) }
            if pid == nil || pid == getpid() { interval = max(usec / 2000, 1) }
        }
        watchdogIntervalMs = interval
        guard let path = environment("NOTIFY_SOCKET"), !path.isEmpty,
              path.hasPrefix("/") || path.hasPrefix("@") else {
            fd = -1
            return
        }
        var bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard bytes.count < capacity else { fd = -1; return }
        let abstract = bytes.first == UInt8(ascii: "@")
        if abstract { bytes[0] = 0 }
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
        // An abstract address is exactly as long as its name; a path one includes the terminating zero.
        addressLength = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + (abstract ? 0 : 1))
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    }

    deinit { if fd >= 0 { close(fd) } }

    /// Sends `state` (newline-separated `KEY=VALUE` assignments); returns false when not delivered.
    @discardableResult
    public func notify(_ state: String) -> Bool {
        guard fd >= 0 else { return false }
        var bytes = Array(state.utf8)
        var addr = address
        let n = bytes.withUnsafeMutableBytes { buf in
            withUnsafePointer(to: &addr) { a in
                a.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, buf.baseAddress, buf.count, Int32(MSG_NOSIGNAL), $0, addressLength)
                }
            }
        }
        return n == bytes.count
    }

    public func ready(status: String? = nil) { notify("READY=1" + (status.map { "\nSTATUS=" + Self.oneLine($0) } ?? "")) }
    public func status(_ s: String) { notify("STATUS=" + Self.oneLine(s)) }
    public func watchdog() { notify("WATCHDOG=1") }
    public func stopping() { notify("STOPPING=1") }

    /// `RELOADING=1` with `MONOTONIC_USEC=` (CLOCK_MONOTONIC now), as systemd 253+ requires for reload
    /// notifications and earlier versions accept.
    public func reloading() {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        let usec = UInt64(ts.tv_sec) * 1_000_000 + UInt64(ts.tv_nsec / 1000)
        notify("RELOADING=1\nMONOTONIC_USEC=\(usec)")
    }

    static func oneLine(_ s: String) -> String {
        String(s.map { $0 == "\n" || $0 == "\r" ? " " : $0 })
    }
}
