/// One POST to a sink.
public struct HTTPRequest: Sendable, Equatable {
    public var url: String
    public var headers: [(String, String)]
    public var body: [UInt8]

    public init(url: String, headers: [(String, String)], body: [UInt8]) {
        self.url = url; self.headers = headers; self.body = body
    }

    public static func == (a: HTTPRequest, b: HTTPRequest) -> Bool {
        a.url == b.url && a.body == b.body && a.headers.elementsEqual(b.headers) { $0 == $1 }
    }
}

/// What came back: a status, the `Retry-After` header if any, and the start of the body (for the log).
public struct HTTPResponse: Sendable, Equatable {
    public var status: Int
    public var retryAfter: String?
    public var bodyPrefix: String

    public init(status: Int, retryAfter: String? = nil, bodyPrefix: String = "") {
        self.status = status; self.retryAfter = retryAfter; self.bodyPrefix = bodyPrefix
    }
}

/// Why no response came: the request did not complete (connection refused, DNS, TLS, timeout).
public struct TransportError: Error, Sendable, Equatable, CustomStringConvertible {
    public var reason: String
    public var timedOut: Bool
    public init(_ reason: String, timedOut: Bool = false) { self.reason = reason; self.timedOut = timedOut }
    public var description: String { reason }
}

/// Sends one request and waits for its answer, within `timeoutMillis` for the whole exchange. The real one is
/// `CurlTransport`; tests use scripted fakes. Called from one sink worker thread at a time per instance.
public protocol HTTPTransport: Sendable {
    func post(_ request: HTTPRequest, timeoutMillis: Int64) -> Result<HTTPResponse, TransportError>
}
