import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A small HTTP/1.1 server for /metrics and the health endpoints, on plain POSIX sockets and ONE thread of
/// its own (never the polling thread). Non-blocking sockets and `poll(2)`: a slow or silent client cannot
/// stall the others. Bounds:
/// - a request head of at most 8 KiB, request line and headers together (431 beyond; never more is read);
/// - a strict request line: `METHOD SP /path SP HTTP/1.x` with single spaces, versions 1.0 and 1.1 only
///   (400 for a malformed line, 505 for another version); only GET and HEAD (405 otherwise); bodies are
///   not read; one request per connection (`Connection: close`);
/// - at most 256 open connections: beyond that the oldest one still waiting for its request is dropped,
///   never one being answered (a scrape whose request trails its connect, its thread descheduled on a busy
///   machine, is dropped only if 256 newer connections arrive meanwhile: with 64 a crowd of 16 clients on
///   two cores did that to one scrape in a few thousand); 5 s per connection from accept to the last byte written;
/// - file descriptors: the process's last `fileReserve` (32) below `RLIMIT_NOFILE` are kept for
///   checkpoints, rollup files and Kafka connections. When a connection is accepted on one of them, the
///   connections then open become the cap (at least one; learnt again every 10 s), and the oldest one
///   still waiting for its request makes room for each new one. Should accepting fail anyway (`EMFILE`/`ENFILE`: something
///   else used them up), one descriptor held open on `/dev/null` for the purpose is released to accept and
///   close the waiting connections, and the listening socket rests for 50 ms to 1 s (doubling) instead of
///   waking `poll` at once again: the thread never spins.
/// A connection is read as soon as it is accepted and answered as soon as its head is complete, in the same
/// turn, so a scrape is served even while many other connections come and go.
public final class HTTPServer: @unchecked Sendable {
    public struct Response: Sendable {
        public var status: Int
        public var contentType: String
        public var body: String
        public init(status: Int, contentType: String = "text/plain; charset=utf-8", body: String) {
            self.status = status; self.contentType = contentType; self.body = body
        }
    }

    /// The address actually bound (`127.0.0.1:41234` when port 0 was asked for).
    public let boundAddress: String
    private let listenFD: Int32
    private let handler: @Sendable (_ path: String) -> Response
    private let acceptConnection: @Sendable (Int32) -> Int32
    private let stopFlag = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)
    private var started = false

    static let maxHead = 8192
    static let maxConnections = 256
    static let connectionTimeoutMs: Int64 = 5000
    /// File descriptors below the process's limit that a connection never takes.
    static let fileReserve: Int32 = 32
    /// Connections accepted per turn of the loop, so the open ones are served between bursts.
    static let acceptBatch = 32
    static let minAcceptPauseMs: Int64 = 50
    static let maxAcceptPauseMs: Int64 = 1000

    /// The soft `RLIMIT_NOFILE` when the server started.
    private let fileLimit: Int32
    /// Held on `/dev/null`, given up only to accept (and close) connections when no descriptor is left.
    private var spareFD: Int32 = -1
    /// Times `accept` failed for want of a descriptor, and connections closed at once to keep the reserve.
    private let fileShortages = Atomic<Int>(0)
    private let shedConnections = Atomic<Int>(0)

    /// How often `accept` found no descriptor left (`EMFILE`/`ENFILE`).
    public var acceptFileShortages: Int { fileShortages.load(ordering: .relaxed) }
    /// Connections closed unanswered because they would have used the descriptors kept in reserve.
    public var connectionsShed: Int { shedConnections.load(ordering: .relaxed) }

    /// Binds `listen` (`host:port` or `[v6]:port`; port 0 picks a free port). Throws when it cannot.
    public convenience init(listen: String, handler: @escaping @Sendable (_ path: String) -> Response) throws {
        try self.init(listen: listen, accept: { Glibc.accept($0, nil, nil) }, handler: handler)
    }

    /// `accept` takes the listening socket and returns a connection or -1 with `errno` set: tests stand in
    /// for the system's to run out of descriptors on demand.
    init(listen: String, accept: @escaping @Sendable (Int32) -> Int32,
         handler: @escaping @Sendable (_ path: String) -> Response) throws {
        self.handler = handler
        self.acceptConnection = accept
        let (host, port) = try Self.split(listen)
        let (res, rc) = Self.resolveToListen(host: host, port: port)
        guard rc == 0, let ai = res else {
            throw DaemonError("http.listen \(listen): cannot resolve \(host): \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(res) }
        let fd = socket(ai.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw DaemonError("http.listen \(listen): socket: \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        guard bind(fd, ai.pointee.ai_addr, ai.pointee.ai_addrlen) == 0, Glibc.listen(fd, 1024) == 0 else {
            let e = String(cString: strerror(errno))
            close(fd)
            throw DaemonError("http.listen \(listen): cannot listen: \(e)")
        }
        listenFD = fd
        boundAddress = Self.localAddress(fd) ?? listen
        var limit = rlimit()
        fileLimit = getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 && limit.rlim_cur < rlim_t(Int32.max) ? Int32(limit.rlim_cur) : Int32.max
        spareFD = open("/dev/null", O_RDONLY | O_CLOEXEC)
    }

    deinit {
        close(listenFD)
        if spareFD >= 0 { close(spareFD) }
    }

    /// Serves on a new thread until `stop()`.
    public func start() {
        started = true
        let t = Thread { [self] in
            serve()
            finished.signal()
        }
        t.name = "tokenmeter-http"
        t.start()
    }

    /// Stops serving and waits (at most a second) for the thread to end.
    public func stop() {
        stopFlag.store(true, ordering: .releasing)
        if started { _ = finished.wait(timeout: .now() + 1) }
    }

    private struct Connection {
        var fd: Int32
        var deadline: Int64
        var input: [UInt8] = []
        var output: [UInt8] = []
        var written = 0
        /// A refused request may have bytes we never read: closing with them unread would reset the
        /// connection and lose the answer, so the write side is shut and the rest read and dropped first.
        var lingering = false
        var draining = false
        /// Accepted on one of the descriptors kept in reserve (see `fileReserve`).
        var inReserve = false
        var responding: Bool { !output.isEmpty }
    }

    private func serve() {
        var conns: [Connection] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        var acceptPausedUntil: Int64 = 0
        var acceptPause = Self.minAcceptPauseMs
        var connectionCap = Self.maxConnections
        var capLearnt: Int64 = 0
        while !stopFlag.load(ordering: .acquiring) {
            var now = WallClock.monotonicMillis()
            let listening = now >= acceptPausedUntil
            var fds: [pollfd] = []
            if listening { fds.append(pollfd(fd: listenFD, events: Int16(POLLIN), revents: 0)) }
            // A draining connection waits to be readable: asking whether it is writable would wake poll at once.
            for c in conns { fds.append(pollfd(fd: c.fd, events: Int16(c.responding && !c.draining ? POLLOUT : POLLIN), revents: 0)) }
            let wait = listening ? 200 : Int32(max(1, min(200, acceptPausedUntil - now)))
            _ = poll(&fds, nfds_t(fds.count), wait)
            now = WallClock.monotonicMillis()
            var fresh: [Connection] = []
            if listening && fds[0].revents & Int16(POLLIN) != 0 {
                                // Once the cap is learnt, a turn takes one connection beyond it at most: the oldest waiting one
                // makes room at the end of the turn, so the reserve lends one descriptor at a time.
                let limit = connectionCap < Self.maxConnections ? max(1, connectionCap + 1 - conns.count) : Self.acceptBatch
                switch acceptBatch(now: now, limit: limit, into: &fresh) {
                case .drained: acceptPause = Self.minAcceptPauseMs
                case .more: break
                case .outOfFiles:
                    acceptPausedUntil = now + acceptPause
                    acceptPause = min(acceptPause * 2, Self.maxAcceptPauseMs)
                }
            }
            // A descriptor in the reserve: the connections open now are as many as the process can afford.
            // The cap is learnt again after a while, in case the rest of the process needs fewer later.
            if fresh.contains(where: \.inReserve) {
                connectionCap = max(1, min(connectionCap, conns.count))
                capLearnt = now
            } else if connectionCap < Self.maxConnections && now - capLearnt > 10_000 {
                connectionCap = Self.maxConnections
            }
            var keep: [Connection] = []
            // `fds` lists the connections in the order of `conns`, after the listener when it was polled.
            let first = listening ? 1 : 0
            for (n, var c) in conns.enumerated() {
                let ev = fds[first + n].revents
                if serveTurn(&c, readable: ev & Int16(POLLIN | POLLHUP | POLLERR) != 0,
                             writable: ev & Int16(POLLOUT | POLLHUP | POLLERR) != 0, now: now, buffer: &buffer) {
                    keep.append(c)
                } else {
                    close(c.fd)
                }
            }
            // New connections are read at once: a scraper's request is usually there already.
            for var c in fresh {
                if serveTurn(&c, readable: true, writable: true, now: now, buffer: &buffer) { keep.append(c) } else { close(c.fd) }
            }
            // Over the cap: the oldest connection still waiting for its request makes room (so a scrape gets
            // through a crowd of silent clients), never one being answered.
            while keep.count > connectionCap, let victim = keep.firstIndex(where: { !$0.responding }) {
                shedConnections.add(1, ordering: .relaxed)
                close(keep.remove(at: victim).fd)
            }
            conns = keep
        }
        for c in conns { close(c.fd) }
    }

    private enum AcceptOutcome { case drained, more, outOfFiles }

    /// Accepts up to `limit` (at most `acceptBatch`) connections into `fresh`.
    private func acceptBatch(now: Int64, limit: Int, into fresh: inout [Connection]) -> AcceptOutcome {
        for _ in 0..<min(limit, Self.acceptBatch) {
            let cfd = acceptConnection(listenFD)
            if cfd < 0 {
                switch errno {
                case EINTR, ECONNABORTED, EPROTO: continue
                case EMFILE, ENFILE:
                    fileShortages.add(1, ordering: .relaxed)
                    shedWithSpare()
                    return .outOfFiles
                default: return .drained  // EAGAIN: nothing waiting
                }
            }
            _ = fcntl(cfd, F_SETFD, FD_CLOEXEC)
            _ = fcntl(cfd, F_SETFL, fcntl(cfd, F_GETFL) | O_NONBLOCK)
            var c = Connection(fd: cfd, deadline: now + Self.connectionTimeoutMs)
            // Descriptors are allocated lowest first: one this high means fewer than `fileReserve` are free.
            c.inReserve = fileLimit != Int32.max && cfd >= fileLimit - Self.fileReserve
            fresh.append(c)
            // One reserved descriptor at a time, given back (by closing an older connection) before the next.
            if c.inReserve { return .more }
        }
        return .more
    }

    /// No descriptor left: the spare one is given up to accept and close what waits (the clients see a
    /// closed connection instead of hanging in the backlog), then taken back.
    private func shedWithSpare() {
        guard spareFD >= 0 else { return }
        close(spareFD)
        spareFD = -1
        for _ in 0..<Self.acceptBatch {
            let cfd = accept(listenFD, nil, nil)
            if cfd < 0 { break }
            shedConnections.add(1, ordering: .relaxed)
            close(cfd)
        }
        spareFD = open("/dev/null", O_RDONLY | O_CLOEXEC)
    }

    /// Reads, answers and writes what `c` is ready for; false when the connection is done (close it).
    private func serveTurn(_ c: inout Connection, readable: Bool, writable: Bool, now: Int64, buffer: inout [UInt8]) -> Bool {
        guard now < c.deadline else { return false }
        if c.draining {
            guard readable else { return true }
            let n = buffer.withUnsafeMutableBytes { recv(c.fd, $0.baseAddress, $0.count, 0) }
            return n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR))
        }
        if !c.responding && readable {
            // Never more than the head limit (plus one byte, to see that it is passed) is read.
            let room = min(buffer.count, Self.maxHead + 1 - c.input.count)
            let n = buffer.withUnsafeMutableBytes { recv(c.fd, $0.baseAddress, room, 0) }
            if n > 0 {
                c.input.append(contentsOf: buffer[0..<n])
                if let r = respond(to: c.input) {
                    c.output = r
                    c.lingering = !r.starts(with: Array("HTTP/1.1 2".utf8))
                }
            } else if n == 0 || (errno != EAGAIN && errno != EINTR) {
                return false
            }
        }
        if c.responding && (writable || c.written == 0) {
            let n = c.output.withUnsafeBytes { send(c.fd, $0.baseAddress! + c.written, $0.count - c.written, Int32(MSG_NOSIGNAL)) }
            if n > 0 { c.written += n } else if errno != EAGAIN && errno != EINTR { return false }
            if c.written == c.output.count {
                guard c.lingering else { return false }
                shutdown(c.fd, Int32(SHUT_WR))
                c.draining = true
            }
        }
        return true
    }

    /// What a request head asks for.
    enum Request: Equatable {
        /// The head is not complete yet.
        case incomplete
        case valid(method: String, path: String)
        /// Answer with this status and close.
        case refused(status: Int, reason: String)
    }

    /// Parses a request head: the request line strictly, the headers only for their end. The head is at
    /// most `maxHead` bytes, its blank line included.
    static func parse(_ input: [UInt8]) -> Request {
        guard let end = headEnd(input) else {
            return input.count >= maxHead ? .refused(status: 431, reason: "request header too large\n") : .incomplete
        }
        if end > maxHead { return .refused(status: 431, reason: "request header too large\n") }
        let line = input.prefix { $0 != 0x0D && $0 != 0x0A }
        // A CR must be part of the CRLF that ends the line.
        if line.count < input.count && input[line.count] == 0x0D && (line.count + 1 >= input.count || input[line.count + 1] != 0x0A) {
            return .refused(status: 400, reason: "bad request line\n")
        }
        let parts = line.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, !parts[1].isEmpty, !parts[2].isEmpty else {
            return .refused(status: 400, reason: "bad request line\n")
        }
        let isToken: (UInt8) -> Bool = { ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D || $0 == 0x5F }
        // The target: an absolute path, visible ASCII only.
        guard parts[0].allSatisfy(isToken), parts[1].first == UInt8(ascii: "/"), parts[1].allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            return .refused(status: 400, reason: "bad request line\n")
        }
        let version = Array(parts[2])
        let isDigit: (UInt8) -> Bool = { $0 >= 0x30 && $0 <= 0x39 }
        guard version.count == 8, version.starts(with: Array("HTTP/".utf8)), isDigit(version[5]), version[6] == UInt8(ascii: "."),
              isDigit(version[7]) else {
            return .refused(status: 400, reason: "bad request line\n")
        }
        guard version[5] == UInt8(ascii: "1"), version[7] == UInt8(ascii: "0") || version[7] == UInt8(ascii: "1") else {
            return .refused(status: 505, reason: "HTTP version not supported: use HTTP/1.1 or HTTP/1.0\n")
        }
        var path = String(decoding: parts[1], as: UTF8.self)
        if let q = path.firstIndex(of: "?") { path = String(path[..<q]) }
        return .valid(method: String(decoding: parts[0], as: UTF8.self), path: path)
    }

    /// The whole response once the request head is complete (or too large); nil while more is needed.
    private func respond(to input: [UInt8]) -> [UInt8]? {
        switch Self.parse(input) {
        case .incomplete:
            return nil
        case .refused(let status, let reason):
            return Self.encode(Response(status: status, body: reason), head: false)
        case .valid(let method, let path):
            guard method == "GET" || method == "HEAD" else {
                return Self.encode(Response(status: 405, body: "method not allowed\n"), head: false, extra: "Allow: GET, HEAD\r\n")
            }
            return Self.encode(handler(path), head: method == "HEAD")
        }
    }

    static func headEnd(_ b: [UInt8]) -> Int? {
        guard b.count >= 4 else { return nil }
        for i in 0...(b.count - 4) where b[i] == 0x0D && b[i + 1] == 0x0A && b[i + 2] == 0x0D && b[i + 3] == 0x0A { return i + 4 }
        // Tolerate bare LF line ends (some hand-typed clients).
        for i in 0...(b.count - 2) where b[i] == 0x0A && b[i + 1] == 0x0A { return i + 2 }
        return nil
    }

    static func encode(_ r: Response, head: Bool, extra: String = "") -> [UInt8] {
        let reason: String
        switch r.status {
        case 200: reason = "OK"
        case 400: reason = "Bad Request"
        case 404: reason = "Not Found"
        case 405: reason = "Method Not Allowed"
        case 431: reason = "Request Header Fields Too Large"
        case 505: reason = "HTTP Version Not Supported"
        case 503: reason = "Service Unavailable"
        default: reason = "Status"
        }
        let body = Array(r.body.utf8)
        var out = Array("HTTP/1.1 \(r.status) \(reason)\r\nContent-Type: \(r.contentType)\r\nContent-Length: \(body.count)\r\nCache-Control: no-store\r\nConnection: close\r\n\(extra)\r\n".utf8)
        if !head { out += body }
        return out
    }

    static func split(_ listen: String) throws -> (String, String) {
        if listen.hasPrefix("["), let close = listen.firstIndex(of: "]") {
            let host = String(listen[listen.index(after: listen.startIndex)..<close])
            return (host, String(listen[listen.index(close, offsetBy: 2)...]))
        }
        guard let colon = listen.lastIndex(of: ":") else { throw DaemonError("http.listen \(listen): expected host:port") }
        return (String(listen[..<colon]), String(listen[listen.index(after: colon)...]))
    }

    static func localAddress(_ fd: Int32) -> String? {
        var ss = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let ok = withUnsafeMutablePointer(to: &ss) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        guard ok == 0 else { return nil }
        var host = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        var serv = [CChar](repeating: 0, count: Int(NI_MAXSERV))
        let rc = withUnsafePointer(to: &ss) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                getnameinfo($0, len, &host, socklen_t(host.count), &serv, socklen_t(serv.count), NI_NUMERICHOST | NI_NUMERICSERV)
            }
        }
        guard rc == 0 else { return nil }
        func text(_ a: [CChar]) -> String { String(decoding: a.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) }
        let h = text(host), s = text(serv)
        return h.contains(":") ? "[\(h)]:\(s)" : "\(h):\(s)"
    }
}

extension HTTPServer {
    /// `getaddrinfo` for a listening socket (passive, stream, any family): the addresses to bind, to be
    /// freed with `freeaddrinfo`, and the return code. One place for the server and the start checks.
    static func resolveToListen(host: String, port: String) -> (UnsafeMutablePointer<addrinfo>?, Int32) {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE
        var res: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, port, &hints, &res)
        return (res, rc)
    }
}
