#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A file-system error with the path and the system's reason, for logs and metrics.
public struct FileError: Error, CustomStringConvertible, Sendable {
    public var operation: String
    public var path: String
    public var errno: Int32
    public var description: String { "\(operation) \(path): \(String(cString: strerror(errno)))" }
}

/// Atomic, durable file replacement: write a temporary file, fsync it, rename it over the target, fsync
/// the folder. A reader sees the old file or the whole new one, never a part, and after `write` returns
/// the file survives a power cut.
public enum DurableFile {
    /// With `syncDirectory: false` the caller must `syncDirectory` the parent before relying on the file:
    /// a batch of files in one folder then costs one folder fsync instead of one each.
    public static func write(_ bytes: [UInt8], to path: String, syncDirectory syncDir: Bool = true) throws(FileError) {
        let dir = parentDirectory(path)
        try makeDirectories(dir)
        let name = path.split(separator: "/").last.map(String.init) ?? path
        let tmp = dir + "/." + name + ".tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FileError(operation: "create", path: tmp, errno: errno) }
        var ok = true
        var err: Int32 = 0
        bytes.withUnsafeBytes { buf in
            var off = 0
            while off < buf.count {
                let n = Glibc.write(fd, buf.baseAddress! + off, buf.count - off)
                if n < 0 {
                    if errno == EINTR { continue }
                    ok = false; err = errno; return
                }
                off += n
            }
        }
        if ok && fsync(fd) != 0 { ok = false; err = errno }
        close(fd)
        guard ok else { unlink(tmp); throw FileError(operation: "write", path: tmp, errno: err) }
        guard rename(tmp, path) == 0 else {
            let e = errno
            unlink(tmp)
            throw FileError(operation: "rename", path: path, errno: e)
        }
        if syncDir { try syncDirectory(dir) }
    }

    public static func read(_ path: String) throws(FileError) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return nil }
            throw FileError(operation: "open", path: path, errno: errno)
        }
        defer { close(fd) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress!, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw FileError(operation: "read", path: path, errno: errno)
            }
            if n == 0 { break }
            out += chunk[0..<n]
        }
        return out
    }

    public static func syncDirectory(_ dir: String) throws(FileError) {
        let fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw FileError(operation: "open", path: dir, errno: errno) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw FileError(operation: "fsync", path: dir, errno: errno) }
    }

    /// `mkdir -p`, fsyncing each parent it creates so that the new folder entries are durable too.
    public static func makeDirectories(_ path: String) throws(FileError) {
        var st = stat()
        if stat(path, &st) == 0 { return }
        let parent = parentDirectory(path)
        if parent != path { try makeDirectories(parent) }
        if mkdir(path, 0o755) != 0 && errno != EEXIST { throw FileError(operation: "mkdir", path: path, errno: errno) }
        try syncDirectory(parent)
    }

    public static func parentDirectory(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }
}
