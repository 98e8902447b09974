#if canImport(Glibc)
import Glibc
#endif
import TokenmeterCore

/// Reads rollup files back: every `.jsonl` file under a directory (optionally one window size), any mix
/// of final, late and partial files from any number of writers. Rows are additive: readers sum them.
public enum RollupReader {
    public struct ReadError: Error, CustomStringConvertible, Sendable {
        public var path: String
        public var line: Int
        public var reason: String
        public var description: String { "\(path):\(line): \(reason)" }
    }

    /// The rollup files under `dir` (for one window label when given), sorted by path.
    public static func files(in dir: String, window: String? = nil) -> [String] {
        var out: [String] = []
        walk(window.map { dir + "/" + $0 } ?? dir, into: &out)
        return out.sorted()
    }

    private static func walk(_ dir: String, into out: inout [String]) {
        guard let d = opendir(dir) else { return }
        defer { closedir(d) }
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name.hasPrefix(".") { continue }   // ".", "..", and temporary files being written
            let path = dir + "/" + name
            var st = stat()
            guard stat(path, &st) == 0 else { continue }
            if (st.st_mode & S_IFMT) == S_IFDIR { walk(path, into: &out) } else if name.hasSuffix(".jsonl") { out.append(path) }
        }
    }

    /// Reads every row of the files under `dir`.
    public static func read(dir: String, window: String? = nil) throws -> [RollupRow] {
        var rows: [RollupRow] = []
        var reader = RollupRecordReader()
        for f in files(in: dir, window: window) { try reader.read(file: f) { rows.append($0.row($1)) } }
        return rows
    }

    public static func read(file: String, _ body: (RollupRow) -> Void) throws {
        var reader = RollupRecordReader()
        try reader.read(file: file) { body($0.row($1)) }
    }
}
