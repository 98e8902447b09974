#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A `[kafka.secret_files]` file: one librdkafka property value (a password, a key's passphrase), read once
/// per start.
///
/// Rules, and why:
/// - At most `maxBytes` (64 KiB) are read: a secret is a line, and a path pointing at `/dev/zero`, a log
///   or a disk image must fail at once with a clear message, never allocate without end. Reading stops at
///   the first byte past the limit.
/// - Trailing line ends (`\n`, `\r\n`) are removed: editors and `echo` add them, librdkafka would send them.
/// - An empty value, a NUL byte (librdkafka takes C strings: the value would be cut there) and text that is
///   not UTF-8 are errors.
/// - A regular file that the group or others may read is a warning, not an error: the secret has already
///   leaked to whoever could read it, and refusing to start would not undo that.
/// - Messages name the path and the reason, never a byte of the content.
public enum SecretFile {
    public static let maxBytes = 64 * 1024

    public struct Contents: Sendable, Equatable {
        /// The value to hand to librdkafka.
        public var value: String
        /// A problem worth a warning (permissions), or nil.
        public var warning: String?
    }

    public struct Problem: Error, Sendable, Equatable, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    public static func read(_ path: String, maxBytes: Int = maxBytes) -> Result<Contents, Problem> {
        // O_NONBLOCK: opening a FIFO with no writer must not hang the start.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)
        if fd < 0 { return .failure(Problem(message: "cannot open \(path): \(String(cString: strerror(errno)))")) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            return .failure(Problem(message: "cannot stat \(path): \(String(cString: strerror(errno)))"))
        }
        let type = st.st_mode & S_IFMT
        if type == S_IFDIR { return .failure(Problem(message: "\(path) is a folder, not a file")) }
        let limitText = maxBytes % 1024 == 0 ? "\(maxBytes / 1024) KiB" : "\(maxBytes) bytes"
        if type == S_IFREG && Int(st.st_size) > maxBytes {
            return .failure(Problem(message: "\(path) is larger than \(limitText) (\(st.st_size) bytes): a secret file "
                                    + "holds one value; is the path right?"))
        }
        var bytes = [UInt8](repeating: 0, count: maxBytes + 1)
        var count = 0
        while count <= maxBytes {
            let n = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + count, $0.count - count) }
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN { return .failure(Problem(message: "\(path) has no data to read (a pipe or socket?)")) }
                return .failure(Problem(message: "cannot read \(path): \(String(cString: strerror(errno)))"))
            }
            if n == 0 { break }
            count += n
        }
        if count > maxBytes {
            return .failure(Problem(message: "\(path) holds more than \(limitText): a secret file holds one value; "
                                    + "is the path right?"))
        }
        var end = count
        while end > 0 && (bytes[end - 1] == 0x0A || bytes[end - 1] == 0x0D) { end -= 1 }
        let content = bytes[0..<end]
        if content.isEmpty { return .failure(Problem(message: "\(path) is empty")) }
        if content.contains(0) { return .failure(Problem(message: "\(path) contains a NUL byte")) }
        guard let value = String(validating: content, as: UTF8.self) else {
            return .failure(Problem(message: "\(path) is not UTF-8 text"))
        }
        var warning: String?
        if type == S_IFREG && st.st_mode & 0o044 != 0 {
            let who = st.st_mode & 0o040 != 0 && st.st_mode & 0o004 != 0 ? "its group and every user"
                : st.st_mode & 0o040 != 0 ? "its group" : "every user"
            let mode = String(st.st_mode & 0o777, radix: 8)
            warning = "\(path) may be read by \(who) (mode 0\(mode)): make it readable by the daemon's user only "
                + "(chmod 0600), or use systemd's LoadCredential="
        }
        return .success(Contents(value: value, warning: warning))
    }
}

/// Whether the daemon can use a folder it writes (`state.dir`, `rollups.dir`), checked before it starts.
public enum FolderCheck {
    public enum Verdict: Sendable, Equatable {
        case ok
        /// The folder cannot exist: a part of its path is a file, or nothing on the way may be created.
        case impossible(String)
        /// The folder exists but cannot be written now (read-only, permissions): it may be fixed while the
        /// daemon runs.
        case notWritable(String)
    }

    /// Nothing is created: the folder, or the nearest part of its path that exists, is examined.
    public static func check(_ path: String) -> Verdict {
        var st = stat()
        if stat(path, &st) == 0 {
            guard st.st_mode & S_IFMT == S_IFDIR else { return .impossible("\(path) exists and is not a folder") }
            if access(path, W_OK | X_OK) != 0 {
                return .notWritable("\(path) is not writable: \(String(cString: strerror(errno)))")
            }
            return .ok
        }
        if errno == ENOTDIR { return .impossible("a part of \(path) is a file, not a folder") }
        // Walk up to the nearest part that exists: the daemon creates the rest (mkdir -p).
        var parent = path
        while true {
            while parent.count > 1 && parent.hasSuffix("/") { parent.removeLast() }
            guard let slash = parent.lastIndex(of: "/") else { parent = "."; break }
            parent = slash == parent.startIndex ? "/" : String(parent[..<slash])
            if stat(parent, &st) == 0 { break }
            if errno == ENOTDIR { return .impossible("a part of \(path) is a file, not a folder") }
            if parent == "/" { break }
        }
        guard st.st_mode & S_IFMT == S_IFDIR else { return .impossible("\(parent), a part of \(path), is not a folder") }
        if access(parent, W_OK | X_OK) != 0 {
            return .impossible("\(path) does not exist and cannot be created: \(parent) is not writable "
                               + "(\(String(cString: strerror(errno))))")
        }
        return .ok
    }
}
