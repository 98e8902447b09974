import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A small HTTP/1.1 server for /metrics and the health endpoints, on plain POSIX sockets and ONE thread of
/// its own (never the polling thread). Non-blocking sockets and `poll(2)`: a slow or silent client cannot
/// stall the others. Bounds: a request head of at most 8 KiB (431 beyond), at most 64 open connections
/// (the oldest beyond that is dropped), 5 s per connection from accept to the last byte written, one request
/// per connection (`Connection: close`). Only GET and HEAD (405 otherwise); bodies are not read.
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
    private let stopFlag = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)
    private var started = false

    static let maxHead = 8192
    static let maxConnections = 64
    static let connectionTimeoutMs: Int64 = 5000

    /// Binds `listen` (`host:port` or `[v6]:port`; port 0 picks a free port). Throws when it cannot.
    public init(listen: String, handler: @escaping @Sendable (_ path: String) -> Response) throws {
        self.handler = handler
        let (host, port) = try Self.split(listen)
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE
        var res: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, port, &hints, &res)
        guard rc == 0, let ai = res else {
            throw DaemonError("http.listen \(listen): cannot resolve \(host): \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(res) }
        let fd = socket(ai.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw DaemonError("http.listen \(listen): socket: \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        guard bind(fd, ai.pointee.ai_addr, ai.pointee.ai_addrlen) == 0, Glibc.listen(fd, 64) == 0 else {
            let e = String(cString: strerror(errno))
            close(fd)
            throw DaemonError("http.listen \(listen): cannot listen: \(e)")
        }
        listenFD = fd
        boundAddress = Self.localAddress(fd) ?? listen
    }

    deinit { close(listenFD) }

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
        var responding: Bool { !output.isEmpty }
    }

    private func serve() {
        var conns: [Connection] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !stopFlag.load(ordering: .acquiring) {
            var fds = [pollfd(fd: listenFD, events: Int16(POLLIN), revents: 0)]
            for c in conns { fds.append(pollfd(fd: c.fd, events: Int16(c.responding ? POLLOUT : POLLIN), revents: 0)) }
            _ = poll(&fds, nfds_t(fds.count), 200)
            let now = WallClock.monotonicMillis()
            if fds[0].revents & Int16(POLLIN) != 0 {
                while true {
                    let cfd = accept(listenFD, nil, nil)
                    if cfd < 0 { break }
                    _ = fcntl(cfd, F_SETFD, FD_CLOEXEC)
                    _ = fcntl(cfd, F_SETFL, fcntl(cfd, F_GETFL) | O_NONBLOCK)
                    if conns.count >= Self.maxConnections { close(conns.removeFirst().fd) }
                    conns.append(Connection(fd: cfd, deadline: now + Self.connectionTimeoutMs))
                }
            }
            var keep: [Connection] = []
            for var c in conns {
                let i = fds.firstIndex { $0.fd == c.fd } ?? -1
                let ev = i >= 0 ? fds[i].revents : 0
                var open = now < c.deadline
                if open && !c.responding && ev & Int16(POLLIN | POLLHUP | POLLERR) != 0 {
                    let n = buffer.withUnsafeMutableBytes { recv(c.fd, $0.baseAddress, $0.count, 0) }
                    if n > 0 {
                        c.input.append(contentsOf: buffer[0..<n])
                        if let r = respond(to: c.input) { c.output = r }
                    } else if n == 0 || (errno != EAGAIN && errno != EINTR) {
                        open = false
                    }
                }
                if open && c.responding && ev & Int16(POLLOUT | POLLHUP | POLLERR) != 0 {
                    let n = c.output.withUnsafeBytes { send(c.fd, $0.baseAddress! + c.written, $0.count - c.written, Int32(MSG_NOSIGNAL)) }
                    if n > 0 { c.written += n } else if errno != EAGAIN && errno != EINTR { open = false }
                    if c.written == c.output.count { open = false }
                }
                if open { keep.append(c) } else { close(c.fd) }
            }
            conns = keep
        }
        for c in conns { close(c.fd) }
    }

    /// The whole response once the request head is complete (or too large); nil while more is needed.
    private func respond(to input: [UInt8]) -> [UInt8]? {
        let end = Self.headEnd(input)
        if end == nil {
            return input.count > Self.maxHead ? Self.encode(Response(status: 431, body: "request header too large\n"), head: false) : nil
        }
        let line = input.prefix { $0 != 0x0D && $0 != 0x0A }
        let parts = line.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: true)
        guard parts.count == 3, parts[2].starts(with: Array("HTTP/1.".utf8)) else {
            return Self.encode(Response(status: 400, body: "bad request\n"), head: false)
        }
        let method = String(decoding: parts[0], as: UTF8.self)
        var path = String(decoding: parts[1], as: UTF8.self)
        if let q = path.firstIndex(of: "?") { path = String(path[..<q]) }
        guard method == "GET" || method == "HEAD" else {
            return Self.encode(Response(status: 405, body: "method not allowed\n"), head: false, extra: "Allow: GET, HEAD\r\n")
        }
        return Self.encode(handler(path), head: method == "HEAD")
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
