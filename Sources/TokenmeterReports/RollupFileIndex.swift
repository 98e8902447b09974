#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import TokenmeterCore

/// The rollup files under a folder, by window size and day, as laid out by contract section 3:
/// `<window>/<YYYY-MM-DD>/<window start>-<writer>.jsonl`. Day folders are listed only when a span needs
/// them, and a file's window start is read from its name, so a report over one week of a year of hourly
/// files opens one week of files. Files elsewhere (not under a window folder, or with names that do not
/// start with a window start) are still read, and their rows filtered by content.
public struct RollupFileIndex {
    public struct File: Sendable {
        public var path: String
        /// The window start from the file name; nil when the name does not carry one.
        public var start: EpochMillis?
    }

    public final class Window {
        public let label: String
        public let millis: Int64
        let path: String
        /// Day folders: midnight UTC and name; sorted.
        var days: [(day: EpochMillis, name: String)] = []
        /// Files directly in the window folder or in folders that are not days (read whenever the window is).
        var loose: [File] = []
        private var listed: [Int: [File]] = [:]

        init(label: String, millis: Int64, path: String) { self.label = label; self.millis = millis; self.path = path }

        /// Files of day folder `i`, sorted by name.
        func files(day i: Int) -> [File] {
            if let f = listed[i] { return f }
            var out: [File] = []
            RollupFileIndex.list(path + "/" + days[i].name) { name, isDir, full in
                if isDir { RollupFileIndex.walk(full) { out.append(File(path: $0, start: nil)) } }
                else if name.hasSuffix(".jsonl") { out.append(File(path: full, start: RollupFileIndex.compactStart(name))) }
            }
            out.sort { $0.path < $1.path }
            listed[i] = out
            return out
        }

        /// Files whose window may lie in [lo, hi): day folders outside are skipped unopened, files by name.
        public func files(from lo: EpochMillis?, to hi: EpochMillis?) -> [File] {
            var out = loose
            for i in days.indices {
                let d = days[i].day
                if let lo, d + ReportDimension.dayMillis <= lo { continue }   // every start in it is before lo
                if let hi, d + millis > hi { continue }                       // every window in it ends after hi
                for f in files(day: i) {
                    if let s = f.start {
                        if let lo, s < lo { continue }
                        if let hi, s + millis > hi { continue }
                    }
                    out.append(f)
                }
            }
            return out
        }

        /// Earliest start and latest end of the windows in [lo, hi) that have a file, judged by names (files
        /// without a start in their name do not count). Lists at most the day folders at both ends.
        public func extent(from lo: EpochMillis?, to hi: EpochMillis?) -> (start: EpochMillis, end: EpochMillis)? {
            func fits(_ s: EpochMillis) -> Bool { (lo.map { s >= $0 } ?? true) && (hi.map { s + millis <= $0 } ?? true) }
            var first: EpochMillis?
            for i in days.indices {
                if let lo, days[i].day + ReportDimension.dayMillis <= lo { continue }
                if let s = files(day: i).compactMap(\.start).filter(fits).min() { first = s; break }
            }
            guard let first else { return nil }
            for i in days.indices.reversed() {
                if let hi, days[i].day + millis > hi { continue }
                if let s = files(day: i).compactMap(\.start).filter(fits).max() { return (first, s + millis) }
            }
            return nil
        }
    }

    /// Window folders, smallest size first.
    public var windows: [Window] = []
    /// `.jsonl` files not under a window folder.
    public var unplaced: [String] = []

    public init(dir: String) throws(ReportError) {
        var st = stat()
        guard stat(dir, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else {
            throw ReportError("\(dir) is not a folder of rollup files")
        }
        var ws: [Window] = []
        var loose: [String] = []
        RollupFileIndex.list(dir) { name, isDir, full in
            if isDir, let spec = DurationSpec.parse(name), spec.millis > 0 {
                let w = Window(label: name, millis: spec.millis, path: full)
                RollupFileIndex.list(full) { sub, subDir, subFull in
                    if subDir, let day = RFC3339.parse(sub, allowDateOnly: true), sub.utf8.count == 10 {
                        w.days.append((day, sub))
                    } else if subDir {
                        RollupFileIndex.walk(subFull) { w.loose.append(File(path: $0, start: nil)) }
                    } else if sub.hasSuffix(".jsonl") {
                        w.loose.append(File(path: subFull, start: RollupFileIndex.compactStart(sub)))
                    }
                }
                w.days.sort { $0.day < $1.day }
                ws.append(w)
            } else if isDir {
                RollupFileIndex.walk(full) { loose.append($0) }
            } else if name.hasSuffix(".jsonl") {
                loose.append(full)
            }
        }
        windows = ws.sorted { $0.millis != $1.millis ? $0.millis < $1.millis : $0.label < $1.label }
        unplaced = loose.sorted()
    }

    public func window(_ label: String) -> Window? { windows.first { $0.label == label } }

    /// `20261129T100000Z...` -> its time.
    static func compactStart(_ name: String) -> EpochMillis? {
        let b = Array(name.utf8.prefix(16))
        guard b.count == 16, b[8] == UInt8(ascii: "T"), b[15] == UInt8(ascii: "Z") else { return nil }
        var text: [UInt8] = []
        text += b[0..<4]; text.append(UInt8(ascii: "-")); text += b[4..<6]; text.append(UInt8(ascii: "-")); text += b[6..<8]
        text.append(UInt8(ascii: "T")); text += b[9..<11]; text.append(UInt8(ascii: ":")); text += b[11..<13]
        text.append(UInt8(ascii: ":")); text += b[13..<15]; text.append(UInt8(ascii: "Z"))
        return text.withUnsafeBytes { RFC3339.parse($0) }
    }

    /// Calls `body(name, isDirectory, path)` for each entry of `dir` except dot files (temporary files).
    static func list(_ dir: String, _ body: (String, Bool, String) -> Void) {
        guard let d = opendir(dir) else { return }
        defer { closedir(d) }
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name.hasPrefix(".") { continue }
            let path = dir + "/" + name
            var isDir = e.pointee.d_type == UInt8(DT_DIR)
            if e.pointee.d_type == UInt8(DT_UNKNOWN) || e.pointee.d_type == UInt8(DT_LNK) {
                var st = stat()
                isDir = stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
            }
            body(name, isDir, path)
        }
    }

    /// Every `.jsonl` under `dir`, recursively.
    static func walk(_ dir: String, _ body: (String) -> Void) {
        list(dir) { name, isDir, path in
            if isDir { walk(path, body) } else if name.hasSuffix(".jsonl") { body(path) }
        }
    }
}
