#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Relays TCP connections from 127.0.0.1:`port` to 127.0.0.1:`targetPort`, one thread per connection.
///
/// Exists because librdkafka 2.0.2's mock brokers only bind ephemeral ports, while `tokenmeter broker
/// --port N` promises a fixed one. Only bootstrap traffic passes here: the mock brokers advertise their
/// real ports in metadata, so clients reconnect to those directly. Connections are few and long-lived,
/// so a thread each is simpler than an event loop and costs nothing measurable.
final class LoopbackForwarder: @unchecked Sendable {
    let port: UInt16
    private let targetPort: UInt16
    private let listenFD: Int32
    private let wake: WakePipe

    init(listenPort: UInt16, targetPort: UInt16, file: String = #fileID, line: Int = #line) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Self.posixError("socket", file, line) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = Self.loopback(port: listenPort)
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 64) == 0 else {
            let err = Self.posixError("listen on 127.0.0.1:\(listenPort)", file, line)
            close(fd)
            throw err
        }
        var actual = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        self.port = UInt16(bigEndian: actual.sin_port)
        self.targetPort = targetPort
        self.listenFD = fd
        self.wake = try WakePipe(file: file, line: line)
        let wake = self.wake
        Self.startThread { [targetPort] in Self.acceptLoop(listenFD: fd, targetPort: targetPort, wake: wake) }
    }

    /// Stops accepting and ends every relayed connection; idempotent.
    func stop() {
        wake.fire()
    }

    deinit {
        wake.fire()
    }

    private static func acceptLoop(listenFD: Int32, targetPort: UInt16, wake: WakePipe) {
        defer { close(listenFD) }
        var fds = [pollfd(fd: listenFD, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: wake.readFD, events: Int16(POLLIN), revents: 0)]
        while true {
            fds[0].revents = 0; fds[1].revents = 0
            let n = poll(&fds, 2, -1)
            if n < 0 { if errno == EINTR { continue } else { return } }
            if fds[1].revents != 0 { return }
            guard fds[0].revents & Int16(POLLIN) != 0 else { continue }
            let client = accept(listenFD, nil, nil)
            if client < 0 { continue }
            startThread { relay(client: client, targetPort: targetPort, wake: wake) }
        }
    }

    private static func relay(client: Int32, targetPort: UInt16, wake: WakePipe) {
        defer { close(client) }
        let server = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard server >= 0 else { return }
        defer { close(server) }
        var addr = loopback(port: targetPort)
        let ok = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(server, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard ok == 0 else { return }
        var one: Int32 = 1
        setsockopt(client, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        setsockopt(server, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        var fds = [pollfd(fd: client, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: server, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: wake.readFD, events: Int16(POLLIN), revents: 0)]
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: 65536, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            for i in fds.indices { fds[i].revents = 0 }
            let n = poll(&fds, 3, -1)
            if n < 0 { if errno == EINTR { continue } else { return } }
            if fds[2].revents != 0 { return }
            for (from, to) in [(0, server), (1, client)] where fds[from].revents != 0 {
                let got = recv(fds[from].fd, buffer, 65536, 0)
                if got <= 0 { return }
                var sent = 0
                while sent < got {
                    // MSG_NOSIGNAL: a peer that vanished must end this relay, not the process (SIGPIPE).
                    let w = send(to, buffer + sent, got - sent, Int32(MSG_NOSIGNAL))
                    if w < 0 { if errno == EINTR { continue } else { return } }
                    sent += w
                }
            }
        }
    }

    private static func loopback(port: UInt16) -> sockaddr_in {
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        addr.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        return addr
    }

    private static func posixError(_ what: String, _ file: String, _ line: Int) -> KafkaError {
        let code = errno
        return KafkaError(code: KafkaError.invalidArgument, reason: "\(what): \(String(cString: strerror(code)))", file: file, line: line)
    }

    private final class ThreadBody {
        let run: @Sendable () -> Void
        init(_ run: @escaping @Sendable () -> Void) { self.run = run }
    }

    private static func startThread(_ body: @escaping @Sendable () -> Void) {
        let arg = Unmanaged.passRetained(ThreadBody(body)).toOpaque()
        var tid = pthread_t()
        let rc = pthread_create(&tid, nil, { arg in
            Unmanaged<ThreadBody>.fromOpaque(arg!).takeRetainedValue().run()
            return nil
        }, arg)
        if rc == 0 { pthread_detach(tid) } else { Unmanaged<ThreadBody>.fromOpaque(arg).release() }
    }

    /// Closing the write end wakes every poller at once (POLLHUP); the read end closes with the last user.
    private final class WakePipe: @unchecked Sendable {
        let readFD: Int32
        private var writeFD: Int32
        private var lock = pthread_mutex_t()

        init(file: String, line: Int) throws {
            var fds: [Int32] = [0, 0]
            guard pipe(&fds) == 0 else { throw LoopbackForwarder.posixError("pipe", file, line) }
            readFD = fds[0]
            writeFD = fds[1]
            pthread_mutex_init(&lock, nil)
        }

        func fire() {
            pthread_mutex_lock(&lock)
            if writeFD >= 0 { close(writeFD); writeFD = -1 }
            pthread_mutex_unlock(&lock)
        }

        deinit {
            if writeFD >= 0 { close(writeFD) }
            close(readFD)
            pthread_mutex_destroy(&lock)
        }
    }
}
