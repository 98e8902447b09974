import Foundation
import Testing

/// Expected outputs kept as files in `Tests/TokenmeterReportsTests/Golden/`, found through `#filePath` (not
/// SwiftPM resources) and compared byte for byte. To regenerate them after an intended change of a format:
///
///     TOKENMETER_UPDATE_GOLDEN=1 swift test --filter ReportGolden
///
/// then review the diff with `git diff Tests/TokenmeterReportsTests/Golden/` before committing. Off by default.
enum GoldenFile {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden")

    static var updating: Bool { ProcessInfo.processInfo.environment["TOKENMETER_UPDATE_GOLDEN"] == "1" }

    /// Compares `actual` with the golden file `name`, or rewrites the file when updating.
    static func check(_ actual: String, _ name: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let url = directory.appendingPathComponent(name)
        let data = Data(actual.utf8)
        if updating {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try data.write(to: url)
            print("golden: rewrote \(url.path)")
            return
        }
        guard let expected = FileManager.default.contents(atPath: url.path) else {
            Issue.record("missing golden file \(url.path); create it with TOKENMETER_UPDATE_GOLDEN=1", sourceLocation: sourceLocation)
            return
        }
        guard expected != data else { return }
        Issue.record("\(name) differs from the golden file: \(firstDifference(expected, data)); regenerate with TOKENMETER_UPDATE_GOLDEN=1 if intended",
                     sourceLocation: sourceLocation)
    }

    /// The first line that differs, with both versions (line endings shown).
    static func firstDifference(_ expected: Data, _ actual: Data) -> String {
        func lines(_ d: Data) -> [String] {
            String(decoding: d, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
                .map { $0.replacingOccurrences(of: "\r", with: "\\r") }
        }
        let e = lines(expected), a = lines(actual)
        for i in 0..<max(e.count, a.count) {
            let el = i < e.count ? e[i] : "<end of file>", al = i < a.count ? a[i] : "<end of file>"
            if el != al { return "line \(i + 1): expected \(el.debugDescription), got \(al.debugDescription)" }
        }
        return "\(expected.count) bytes expected, \(actual.count) bytes got"
    }
}
