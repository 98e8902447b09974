import CSystem
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
    /// With `syncDirectory: false` the caller must `syncDirectory` the parent before relying on the file.
    public static func write(_ bytes: [UInt8], to path: String, syncDirectory syncDir: Bool = true) throws(FileError) {
        let batch = DurableBatch()
        try batch.stage(bytes, to: path)
        try batch.commit(syncDirectories: syncDir)
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

    /// Appends one record to a file of records whose whole records end at `length` (the file is created
    /// when missing), and makes it durable: fsync, and the folder's too when the file is new. On failure the
    /// file is cut back to `length`, since a partial record would make every later one unreadable.
    public static func appendRecord(_ bytes: [UInt8], to path: String, length: Int64) throws(FileError) {
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw FileError(operation: "open", path: path, errno: errno) }
        defer { close(fd) }
        func failed(_ operation: String) -> FileError {
            let e = errno
            _ = ftruncate(fd, off_t(length))
            return FileError(operation: operation, path: path, errno: e)
        }
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + done, $0.count - done) }
            if n < 0 {
                if errno == EINTR { continue }
                throw failed("write")
            }
            done += n
        }
        guard fsync(fd) == 0 else { throw failed("fsync") }
        if length == 0 { try syncDirectory(parentDirectory(path)) }
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
        // Searched as UTF-8 bytes: `String.lastIndex(of:)` walks characters (about 300 instructions each
        // as callgrind counts them; a small share natively, see docs/performance.md).
        guard let slash = path.utf8.lastIndex(of: UInt8(ascii: "/")) else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }
}

/// Files made durable together, with the guarantees of `DurableFile.write` for each: all are written to
/// temporary names first, then flushed to disk at once, then renamed, then each folder is fsynced once.
///
/// Why: rollup files close in bursts (a backlog of event time closes thousands of minute windows), and
/// an fsync per file costs a journal commit each. Past `fsyncEachLimit` files one `syncfs` flushes the
/// whole batch (measured here: 0.17 ms per file with an fsync each, 0.04 ms with one syncfs per 2,000).
/// `syncfs` also flushes other writers' dirty pages on the same file system, so small batches, the
/// steady state of a daemon that keeps up, still fsync each file.
public final class DurableBatch {
    public static let fsyncEachLimit = 16
    /// Paths as NUL-terminated UTF-8 (what `open` and `rename` take): a rollup file's path is built as
    /// bytes, and its folder is found as bytes, not by `String`'s character-by-character search (about
    /// 20,000 instructions per path under callgrind; natively about 1% of a replay, see docs/performance.md).
    private var staged: [(tmp: [UInt8], path: [UInt8])] = []
    /// Open descriptors of the staged files while the batch is small enough to fsync them one by one.
    private var open: [Int32] = []
    private var bulk = false
    private var lastDir: [UInt8] = []
    /// The folders of the staged files, each once, in the order first staged (fsynced by `commit`).
    private var folders: [[UInt8]] = []

    public init() {}

    /// A batch given up on (a stage failed, or the caller threw) takes its temporary files with it.
    deinit { reset() }

    public var count: Int { staged.count }

    /// Writes `bytes` to a temporary file next to `path`. Nothing is visible at `path` before `commit`.
    public func stage(_ bytes: [UInt8], to path: String) throws(FileError) {
        try stage(bytes, toPath: Array(path.utf8))
    }

    /// `stage(_:to:)` with the path as UTF-8 bytes (no terminating NUL).
    public func stage(_ bytes: [UInt8], toPath path: [UInt8]) throws(FileError) {
        let slash = path.lastIndex(of: UInt8(ascii: "/"))
        let dir: ArraySlice<UInt8> = slash.map { $0 == 0 ? path[...0] : path[..<$0] } ?? [UInt8(ascii: ".")][...]
        if !dir.elementsEqual(lastDir) {
            lastDir = Array(dir)
            // A folder this batch staged into before exists: rollup files alternate between a dozen
            // folders (window sizes, days), and a `stat` at every change showed in the daemon's profile.
            if !folders.contains(lastDir) {
                try DurableFile.makeDirectories(String(decoding: lastDir, as: UTF8.self))
                folders.append(lastDir)
            }
        }
        let name = slash.map { path[($0 + 1)...] } ?? path[...]
        var tmp: [UInt8] = []
        tmp.reserveCapacity(path.count + 6)
        if let slash { tmp += path[...slash] }
        tmp.append(UInt8(ascii: "."))
        tmp += name
        tmp += ".tmp".utf8
        tmp.append(0)
        let fd = tmp.withUnsafeBufferPointer { p in
            p.withMemoryRebound(to: CChar.self) { Glibc.open($0.baseAddress!, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644) }
        }
        guard fd >= 0 else { throw FileError(operation: "create", path: DurableBatch.string(tmp), errno: errno) }
        let e: Int32 = bytes.withUnsafeBytes { b in
            var off = 0
            while off < b.count {
                let n = Glibc.write(fd, b.baseAddress! + off, b.count - off)
                if n < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                off += n
            }
            return 0
        }
        if e != 0 {
            close(fd)
            DurableBatch.unlink(tmp)
            throw FileError(operation: "write", path: DurableBatch.string(tmp), errno: e)
        }
        var final = path
        final.append(0)
        staged.append((tmp, final))
        if bulk {
            close(fd)
        } else {
            open.append(fd)
            if open.count > DurableBatch.fsyncEachLimit {
                for f in open { close(f) }
                open.removeAll()
                bulk = true
            }
        }
    }

    /// Flushes, renames and (unless told otherwise) fsyncs the folders. On failure every temporary file
    /// is removed and nothing more is renamed; files already renamed hold complete content.
    public func commit(syncDirectories: Bool = true) throws(FileError) {
        defer { reset() }
        guard !staged.isEmpty else { return }
        if bulk {
            let fd = Glibc.open(String(decoding: folders[0], as: UTF8.self), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            guard fd >= 0 else { throw failed("open", DurableBatch.string(staged[0].tmp)) }
            let rc = tm_syncfs(fd)
            let e = errno
            close(fd)
            guard rc == 0 else { errno = e; throw failed("syncfs", DurableBatch.string(staged[0].tmp)) }
        } else {
            for (i, fd) in open.enumerated() where fsync(fd) != 0 { throw failed("write", DurableBatch.string(staged[i].tmp)) }
        }
        for (tmp, path) in staged {
            let rc = tmp.withUnsafeBufferPointer { t in
                path.withUnsafeBufferPointer { p in
                    t.withMemoryRebound(to: CChar.self) { t in
                        p.withMemoryRebound(to: CChar.self) { p in rename(t.baseAddress!, p.baseAddress!) }
                    }
                }
            }
            guard rc == 0 else { throw failed("rename", DurableBatch.string(path)) }
        }
        staged.removeAll()   // renamed: nothing left to clean up
        if syncDirectories { for f in folders { try DurableFile.syncDirectory(String(decoding: f, as: UTF8.self)) } }
    }

    /// A NUL-terminated path as a `String` (for errors).
    private static func string(_ path: [UInt8]) -> String {
        String(decoding: path.last == 0 ? path.dropLast() : path[...], as: UTF8.self)
    }

    private static func unlink(_ path: [UInt8]) {
        _ = path.withUnsafeBufferPointer { p in p.withMemoryRebound(to: CChar.self) { Glibc.unlink($0.baseAddress!) } }
    }

    /// The error for `operation` on `path` (errno as the failing call left it), after removing every
    /// temporary file still staged.
    private func failed(_ operation: String, _ path: String) -> FileError {
        let e = errno
        reset()
        return FileError(operation: operation, path: path, errno: e)
    }

    private func reset() {
        for fd in open { close(fd) }
        open.removeAll()
        for s in staged { DurableBatch.unlink(s.tmp) }
        staged.removeAll()
        bulk = false
        lastDir = []
        folders.removeAll()
    }
}
