#if canImport(Glibc)
import Glibc
#endif

/// Writes one line to stderr with write(2): Swift 6 forbids touching C's global `stderr` FILE, and one
/// write per line keeps lines from several threads whole.
func printError(_ text: String) {
    let bytes = Array((text + "\n").utf8)
    var off = 0
    while off < bytes.count {
        let n = bytes.withUnsafeBytes { write(2, $0.baseAddress! + off, $0.count - off) }
        if n <= 0 { if n < 0 && errno == EINTR { continue }; return }
        off += n
    }
}

/// Writes text to stdout unbuffered (progress lines must show at once; C's `stdout` is off limits in Swift 6).
func writeOut(_ text: String) {
    let bytes = Array(text.utf8)
    var off = 0
    while off < bytes.count {
        let n = bytes.withUnsafeBytes { write(1, $0.baseAddress! + off, $0.count - off) }
        if n <= 0 { if n < 0 && errno == EINTR { continue }; return }
        off += n
    }
}
