import Ccurl
import Synchronization

/// `HTTPTransport` over libcurl's easy API: TLS for https sinks (OpenSSL, the system's CA store), a timeout
/// on the connection and on the whole exchange, HTTP/1.1 keep-alive within one worker (one easy handle per
/// worker, reused), the `Retry-After` header read while the headers arrive, and the response body cut at
/// `maxResponseBytes` (only its start is logged; a sink that streams without end cannot fill memory).
///
/// Redirects are not followed: a webhook URL that moved is a configuration problem to see, and following
/// one would send the signed body somewhere not configured. Only http and https are allowed.
public final class CurlTransport: HTTPTransport, @unchecked Sendable {
    public static let maxResponseBytes = 16 * 1024
    public static let connectTimeoutMillis: Int64 = 5_000

    // One easy handle per transport; a transport belongs to one sink worker, the lock only guards misuse.
    private let handle: Mutex<UnsafeMutableRawPointer?>

    private static let globalInit: Void = { curl_global_init(Int(CURL_GLOBAL_DEFAULT)) }()

    public init() {
        _ = CurlTransport.globalInit
        handle = Mutex(curl_easy_init())
    }

    deinit {
        handle.withLock { if let h = $0 { curl_easy_cleanup(h) } }
    }

    /// Collects the response while curl runs (reached through curl's user-data pointer).
    final class Collector {
        var body: [UInt8] = []
        var retryAfter: String?
    }

    public func post(_ request: HTTPRequest, timeoutMillis: Int64) -> Result<HTTPResponse, TransportError> {
        handle.withLock { h -> Result<HTTPResponse, TransportError> in
            guard let h else { return .failure(TransportError("libcurl could not create a handle")) }
            curl_easy_reset(h)
            let collector = Collector()
            let opaque = Unmanaged.passUnretained(collector).toOpaque()
            var list: UnsafeMutablePointer<curl_slist>? = nil
            for (name, value) in request.headers { list = curl_slist_append(list, "\(name): \(value)") }
            // curl adds `Expect: 100-continue` to larger bodies: a wasted round trip for these small posts.
            list = curl_slist_append(list, "Expect:")
            defer { curl_slist_free_all(list) }
            return request.url.withCString { url in
                request.body.withUnsafeBytes { body in
                    _ = tm_curl_setopt_ptr(h, CURLOPT_URL, url)
                    _ = tm_curl_setopt_long(h, CURLOPT_PROTOCOLS, Int(CURLPROTO_HTTP | CURLPROTO_HTTPS))
                    _ = tm_curl_setopt_long(h, CURLOPT_NOSIGNAL, 1)
                    _ = tm_curl_setopt_long(h, CURLOPT_POST, 1)
                    _ = tm_curl_setopt_ptr(h, CURLOPT_POSTFIELDS, body.baseAddress ?? UnsafeRawPointer(bitPattern: 1))
                    _ = tm_curl_setopt_long(h, CURLOPT_POSTFIELDSIZE, body.count)
                    _ = tm_curl_setopt_ptr(h, CURLOPT_HTTPHEADER, UnsafeRawPointer(list))
                    _ = tm_curl_setopt_long(h, CURLOPT_TIMEOUT_MS, Int(max(1, timeoutMillis)))
                    _ = tm_curl_setopt_long(h, CURLOPT_CONNECTTIMEOUT_MS, Int(min(max(1, timeoutMillis), CurlTransport.connectTimeoutMillis)))
                    _ = tm_curl_setopt_long(h, CURLOPT_FOLLOWLOCATION, 0)
                    _ = tm_curl_setopt_ptr(h, CURLOPT_USERAGENT, "tokenmeter-notify")
                    _ = tm_curl_setopt_ptr(h, CURLOPT_WRITEDATA, opaque)
                    _ = tm_curl_setopt_ptr(h, CURLOPT_HEADERDATA, opaque)
                    _ = tm_curl_setopt_write(h) { data, size, count, user in
                        let n = size * count
                        guard let data, let user else { return n }
                        let c = Unmanaged<Collector>.fromOpaque(user).takeUnretainedValue()
                        let room = CurlTransport.maxResponseBytes - c.body.count
                        if room > 0 {
                            c.body.append(contentsOf: UnsafeRawBufferPointer(start: data, count: min(n, room)))
                        }
                        return n
                    }
                    _ = tm_curl_setopt_header(h) { data, size, count, user in
                        let n = size * count
                        guard let data, let user else { return n }
                        let c = Unmanaged<Collector>.fromOpaque(user).takeUnretainedValue()
                        let line = String(decoding: UnsafeRawBufferPointer(start: data, count: min(n, 512)), as: UTF8.self)
                        if line.lowercased().hasPrefix("retry-after:") {
                            c.retryAfter = String(line.dropFirst("retry-after:".count)).trimmingSpace()
                        } else if line.hasPrefix("HTTP/") {
                            c.retryAfter = nil  // a new response (after a 1xx): forget the previous one's headers
                        }
                        return n
                    }
                    let code = curl_easy_perform(h)
                    guard code == CURLE_OK else {
                        let reason = String(cString: curl_easy_strerror(code))
                        return .failure(TransportError(reason, timedOut: code == CURLE_OPERATION_TIMEDOUT))
                    }
                    var status = 0
                    _ = tm_curl_response_code(h, &status)
                    return .success(HTTPResponse(status: status, retryAfter: collector.retryAfter,
                                                 bodyPrefix: String(decoding: collector.body.prefix(300), as: UTF8.self)))
                }
            }
        }
    }
}

extension String {
    /// Without leading and trailing spaces, tabs and line ends. On scalars: "\r\n" is one Character.
    func trimmingSpace() -> String {
        var s = Substring(self).unicodeScalars
        func space(_ c: Unicode.Scalar) -> Bool { c == " " || c == "\t" || c == "\r" || c == "\n" }
        while let f = s.first, space(f) { s.removeFirst() }
        while let l = s.last, space(l) { s.removeLast() }
        return String(s)
    }
}
