import Foundation
import Synchronization
import Testing
@testable import TokenmeterDaemon

/// A TCP client on loopback, for the HTTP server's tests.
enum Client {
    static func connect(_ address: String) -> Int32? {
        let parts = address.split(separator: ":")
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(parts[1])!).bigEndian
        addr.sin_addr.s_addr = inet_addr(String(parts[0]))
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if rc != 0 { close(fd); return nil }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    /// Sends `request` and reads until the server closes; nil when the connection failed or was reset.
    static func exchange(_ address: String, _ request: [UInt8]) -> String? {
        guard let fd = connect(address) else { return nil }
        defer { close(fd) }
        var sent = 0
        while sent < request.count {
            let n = request.withUnsafeBytes { send(fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { break }
            sent += n
        }
        return readToClose(fd)
    }

    /// Reads until the server closes; nil when the connection was reset or timed out.
    static func readToClose(_ fd: Int32) -> String? {
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n == 0 { break }
            if n < 0 { return nil }
            out += buf[0..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }
}

@Suite("HTTP server under connection churn")
struct HTTPChurnTests {
    /// Clients that open connections, send half a request and hold them (as a slowloris or a crowd of
    /// stuck scrapers would), far more than the server keeps: every scrape made meanwhile still gets its
    /// whole answer.
    @Test(.timeLimit(.minutes(1))) func scrapesSucceedWhileOthersChurn() throws {
        let body = String(repeating: "tokenmeter_metric 1\n", count: 2000)
        let server = try HTTPServer(listen: "127.0.0.1:0") { path in
            path == "/metrics" ? .init(status: 200, body: body) : .init(status: 404, body: "no\n")
        }
        server.start()
        defer { server.stop() }
        let address = server.boundAddress
        let stop = Atomic<Bool>(false)
        let churners = 16
        let done = DispatchSemaphore(value: 0)
        for _ in 0..<churners {
            Thread.detachNewThread {
                var held: [Int32] = []
                while !stop.load(ordering: .relaxed) {
                    if let fd = Client.connect(address) {
                        _ = Array("GET /metrics HTTP/1.1\r\n".utf8).withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                        held.append(fd)
                    }
                    if held.count > 150 { close(held.removeFirst()) }
                }
                for fd in held { close(fd) }
                done.signal()
            }
        }
        var failures = 0
        let scrapes = 200
        for _ in 0..<scrapes {
            let r = Client.exchange(address, Array("GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n".utf8))
            if r?.hasPrefix("HTTP/1.1 200 OK\r\n") != true || r?.hasSuffix(body) != true { failures += 1 }
        }
        stop.store(true, ordering: .relaxed)
        for _ in 0..<churners { done.wait() }
        #expect(failures == 0, "\(failures) of \(scrapes) scrapes failed")
    }
}

extension HTTPChurnTests {
    /// Opens `count` connections that each send half a request and hold them.
    static func crowd(_ address: String, _ count: Int) -> [Int32] {
        (0..<count).compactMap { _ in
            guard let fd = Client.connect(address) else { return nil }
            _ = Array("GET /metrics HTTP/1.1\r\n".utf8).withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            return fd
        }
    }

    /// A server answering every path with 200, started.
    static func startedServer() throws -> HTTPServer {
        let server = try HTTPServer(listen: "127.0.0.1:0") { _ in .init(status: 200, body: "ok\n") }
        server.start()
        return server
    }

    /// A scrape whose request trails its connection (its thread descheduled between `connect` and `send`)
    /// keeps its slot while up to `maxConnections - 1` newer connections arrive and wait. With 64 slots,
    /// as before, it was closed here.
    @Test(.timeLimit(.minutes(1))) func aScrapeWhoseRequestTrailsItsConnectionKeepsItsSlot() throws {
        let server = try Self.startedServer()
        defer { server.stop() }
        let scrape = try #require(Client.connect(server.boundAddress))
        defer { close(scrape) }
        let held = Self.crowd(server.boundAddress, HTTPServer.maxConnections - 2)
        defer { for fd in held { close(fd) } }
        // Answered in accept order: once this one is, the server holds the whole crowd.
        let other = Client.exchange(server.boundAddress, Array("GET /metrics HTTP/1.1\r\n\r\n".utf8))
        #expect(other?.hasPrefix("HTTP/1.1 200 OK\r\n") == true)
        _ = Array("GET /metrics HTTP/1.1\r\n\r\n".utf8).withUnsafeBytes { send(scrape, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        #expect(Client.readToClose(scrape)?.hasPrefix("HTTP/1.1 200 OK\r\n") == true)
        #expect(server.connectionsShed == 0)
    }

    /// Past the cap, the oldest connection still waiting for its request makes room.
    @Test(.timeLimit(.minutes(1))) func theOldestWaitingConnectionMakesRoom() throws {
        let server = try Self.startedServer()
        defer { server.stop() }
        let silent = try #require(Client.connect(server.boundAddress))
        defer { close(silent) }
        let held = Self.crowd(server.boundAddress, HTTPServer.maxConnections)
        defer { for fd in held { close(fd) } }
        var byte: UInt8 = 0
        let got = recv(silent, &byte, 1, 0)  // SO_RCVTIMEO is 10 s: -1 if it stayed open
        #expect(got == 0, "the oldest waiting connection must be closed (recv returned \(got))")
        #expect(server.connectionsShed == 1)
    }
}

@Suite("HTTP server out of file descriptors")
struct HTTPFileShortageTests {
    /// While `accept` fails with EMFILE, the waiting connection is closed with the spare descriptor (the
    /// client sees the connection end instead of hanging) and the listener rests, doubling its pause:
    /// a few attempts a second, not the thousands of a loop woken at once by a socket that stays readable.
    @Test(.timeLimit(.minutes(1))) func emfileIsBackedOffNotSpunOn() throws {
        let shortage = Atomic<Bool>(true)
        let attempts = Atomic<Int>(0)
        let server = try HTTPServer(listen: "127.0.0.1:0", accept: { fd in
            attempts.add(1, ordering: .relaxed)
            if shortage.load(ordering: .relaxed) {
                errno = EMFILE
                return -1
            }
            return Glibc.accept(fd, nil, nil)
        }) { _ in .init(status: 200, body: "ok\n") }
        server.start()
        defer { server.stop() }
        let address = server.boundAddress
        // A client waits in the backlog: it is accepted with the spare descriptor and closed at once.
        let client = try #require(Client.connect(address))
        var byte: UInt8 = 0
        let got = recv(client, &byte, 1, 0)
        close(client)
        #expect(got == 0, "the connection must be closed unanswered (recv returned \(got))")
        #expect(server.acceptFileShortages >= 1)
        #expect(server.connectionsShed >= 1)
        // Clients connecting every 5 ms keep the listener readable for 1.5 s: the attempts stay few (pauses
        // of 50, 100, 200, 400, 800 ms), where a loop without a pause would try once per connection or more.
        let before = attempts.load(ordering: .relaxed)
        var opened: [Int32] = []
        let end = Date().addingTimeInterval(1.5)
        while Date() < end {
            if let fd = Client.connect(address) { opened.append(fd) }
            Thread.sleep(forTimeInterval: 0.005)
        }
        let during = attempts.load(ordering: .relaxed) - before
        for fd in opened { close(fd) }
        #expect(opened.count > 50)
        #expect(during <= 8, "\(during) accept attempts in 1.5 s")
        // The shortage over, connections are served again (after the current pause, at most 1 s).
        shortage.store(false, ordering: .relaxed)
        var served: String?
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline {
            served = Client.exchange(address, Array("GET /x HTTP/1.1\r\n\r\n".utf8))
            if served?.hasPrefix("HTTP/1.1 200 OK") == true { break }
        }
        #expect(served?.hasPrefix("HTTP/1.1 200 OK") == true, "\(String(describing: served))")
    }
}
