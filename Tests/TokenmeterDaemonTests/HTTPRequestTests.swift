import Testing
@testable import TokenmeterDaemon

private func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

@Suite("HTTP request head")
struct HTTPRequestTests {
    @Test func aValidRequestLine() {
        #expect(HTTPServer.parse(bytes("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")) == .valid(method: "GET", path: "/metrics"))
        #expect(HTTPServer.parse(bytes("HEAD /-/ready?x=1 HTTP/1.0\r\n\r\n")) == .valid(method: "HEAD", path: "/-/ready"))
        #expect(HTTPServer.parse(bytes("GET / HTTP/1.1\n\n")) == .valid(method: "GET", path: "/"))
        #expect(HTTPServer.parse(bytes("GET /metrics HTTP/1.1\r\nHost: x\r\n")) == .incomplete)
    }

    @Test func onlyHTTP10And11() {
        for version in ["HTTP/1.7", "HTTP/2.0", "HTTP/0.9", "HTTP/3.0"] {
            guard case .refused(let status, _) = HTTPServer.parse(bytes("GET /metrics \(version)\r\n\r\n")) else {
                Issue.record("\(version) accepted"); continue
            }
            #expect(status == 505, "\(version)")
        }
    }

    @Test func malformedRequestLinesAre400() {
        let lines = ["GET /metrics", "GET  /metrics HTTP/1.1", "GET /metrics HTTP/1.1 ", " GET /metrics HTTP/1.1",
                     "GET metrics HTTP/1.1", "GET /metrics HTTP/1.", "GET /metrics HTTP/1.10", "GET /metrics http/1.1",
                     "GET /metrics HTTP/11", "GET /met\u{7}rics HTTP/1.1", "G@T /metrics HTTP/1.1", "garbage",
                     "GET /metrics HTTP/1.1\rX"]
        for line in lines {
            guard case .refused(let status, _) = HTTPServer.parse(bytes(line + "\r\n\r\n")) else {
                Issue.record("\(line.debugDescription) accepted"); continue
            }
            #expect(status == 400, "\(line.debugDescription)")
        }
    }

    /// The documented limit is the head's size, its blank line included: 8 KiB is accepted, one byte more is not.
    @Test func theHeadLimitIs8KiB() {
        func head(size: Int) -> [UInt8] {
            let start = bytes("GET /metrics HTTP/1.1\r\nX: ")
            let end = bytes("\r\n\r\n")
            return start + [UInt8](repeating: UInt8(ascii: "a"), count: size - start.count - end.count) + end
        }
        #expect(HTTPServer.parse(head(size: 8192)) == .valid(method: "GET", path: "/metrics"))
        guard case .refused(let status, _) = HTTPServer.parse(head(size: 8193)) else { Issue.record("8193 bytes accepted"); return }
        #expect(status == 431)
        // Incomplete at 8 KiB: it can only end beyond the limit.
        guard case .refused(let s2, _) = HTTPServer.parse(Array(head(size: 9000).prefix(8192))) else { Issue.record("no 431"); return }
        #expect(s2 == 431)
        #expect(HTTPServer.parse(Array(head(size: 9000).prefix(8191))) == .incomplete)
    }

    /// Over a real socket: a head a little over the limit, sent whole, is refused (it was read up to ~12 KiB
    /// and answered when complete), and no more than the limit is read.
    @Test func overTheWire() throws {
        let server = try HTTPServer(listen: "127.0.0.1:0") { _ in .init(status: 200, body: "ok\n") }
        server.start()
        defer { server.stop() }
        let a = server.boundAddress
        let big = bytes("GET /x HTTP/1.1\r\nX: ") + [UInt8](repeating: UInt8(ascii: "a"), count: 9000) + bytes("\r\n\r\n")
        #expect(Client.exchange(a, big)?.hasPrefix("HTTP/1.1 431 ") == true)
        #expect(Client.exchange(a, bytes("GET /x HTTP/1.7\r\n\r\n"))?.hasPrefix("HTTP/1.1 505 HTTP Version Not Supported\r\n") == true)
        #expect(Client.exchange(a, bytes("GET /x HTTP/1.0\r\n\r\n"))?.hasPrefix("HTTP/1.1 200 OK\r\n") == true)
        #expect(Client.exchange(a, bytes("GET  /x HTTP/1.1\r\n\r\n"))?.hasPrefix("HTTP/1.1 400 ") == true)
    }
}
