import Foundation
import Testing
@testable import TokenmeterCore
import TokenmeterTOML

private func scratch() -> String {
    var template = Array("/tmp/tokenmeter-secret-XXXXXX".utf8CString)
    return String(cString: template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }!)
}

private func write(_ bytes: [UInt8], _ path: String, mode: mode_t) throws {
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    #expect(chmod(path, mode) == 0)
}

/// Secret files: read once, bounded, checked; never echoed.
@Suite("Secret files and folders")
struct SecretFileTests {
    @Test func valueIsTheFileWithoutItsLineEnd() throws {
        let dir = scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write(Array("s3cret-value\r\n".utf8), dir + "/pw", mode: 0o600)
        let c = try SecretFile.read(dir + "/pw").get()
        #expect(c.value == "s3cret-value")
        #expect(c.warning == nil)
    }

    @Test func devZeroFailsAtTheLimitWithoutReadingOn() throws {
        let clock = ContinuousClock()
        let start = clock.now
        let result = SecretFile.read("/dev/zero")
        #expect(clock.now - start < .seconds(1))
        guard case .failure(let problem) = result else { Issue.record("/dev/zero was accepted"); return }
        #expect(problem.message == "/dev/zero holds more than 64 KiB: a secret file holds one value; is the path right?")
    }

    @Test func aFileOverTheLimitIsRefusedByItsSize() throws {
        let dir = scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write([UInt8](repeating: 0x61, count: SecretFile.maxBytes + 1), dir + "/big", mode: 0o600)
        try write([UInt8](repeating: 0x61, count: SecretFile.maxBytes), dir + "/exact", mode: 0o600)
        guard case .failure(let p) = SecretFile.read(dir + "/big") else { Issue.record("over the limit accepted"); return }
        #expect(p.message.contains("larger than 64 KiB (65537 bytes)"))
        #expect(try SecretFile.read(dir + "/exact").get().value.utf8.count == SecretFile.maxBytes)
    }

    @Test func badContentIsNamedNeverShown() throws {
        let dir = scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let cases: [(String, [UInt8], String)] = [
            ("empty", Array("\n".utf8), "is empty"),
            ("nul", Array("abc-Pq8w".utf8) + [0] + Array("tail-Pq8w".utf8), "contains a NUL byte"),
            ("latin1", Array("abc-Pq8w".utf8) + [0xE9], "is not UTF-8 text"),
        ]
        for (name, bytes, reason) in cases {
            try write(bytes, dir + "/" + name, mode: 0o600)
            guard case .failure(let p) = SecretFile.read(dir + "/" + name) else { Issue.record("\(name) accepted"); continue }
            #expect(p.message == "\(dir)/\(name) \(reason)")
            #expect(!p.message.contains("Pq8w"))
        }
        guard case .failure(let folder) = SecretFile.read(dir) else { Issue.record("a folder was accepted"); return }
        #expect(folder.message == "\(dir) is a folder, not a file")
        guard case .failure(let missing) = SecretFile.read(dir + "/none") else { Issue.record("a missing file was accepted"); return }
        #expect(missing.message == "cannot open \(dir)/none: No such file or directory")
    }

    @Test func aFileOthersMayReadIsAWarning() throws {
        let dir = scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for (mode, who) in [(mode_t(0o640), "its group"), (0o604, "every user"), (0o644, "its group and every user")] {
            try write(Array("pw".utf8), dir + "/pw", mode: mode)
            let c = try SecretFile.read(dir + "/pw").get()
            #expect(c.value == "pw")
            #expect(c.warning?.hasPrefix("\(dir)/pw may be read by \(who) (mode 0\(String(mode, radix: 8)))") == true)
        }
        try write(Array("pw".utf8), dir + "/pw", mode: 0o400)
        #expect(try SecretFile.read(dir + "/pw").get().warning == nil)
    }

    @Test func foldersThatCannotExistAreFound() throws {
        let dir = scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write(Array("x".utf8), dir + "/file", mode: 0o600)
        #expect(FolderCheck.check(dir) == .ok)
        #expect(FolderCheck.check(dir + "/new/deeper") == .ok)
        #expect(FolderCheck.check(dir + "/file") == .impossible("\(dir)/file exists and is not a folder"))
        #expect(FolderCheck.check(dir + "/file/state") == .impossible("a part of \(dir)/file/state is a file, not a folder"))
        #expect(FolderCheck.check(dir + "/file/a/b") == .impossible("a part of \(dir)/file/a/b is a file, not a folder"))
        // A relative path that does not exist yet is created in the working directory (the README's
        // quick start writes `dir = "rollups"`).
        let relative = "tm-folder-check-\(UInt32.random(in: 0...UInt32.max))"
        #expect(FolderCheck.check(relative) == .ok)
        #expect(FolderCheck.check(relative + "/state") == .ok)
    }

    /// The loader keeps where each value checked at start was written.
    @Test func originsPointAtTheValues() throws {
        let text = """
            [kafka]
            brokers = "b:9092"
            [kafka.properties]
            "socket.timeout.ms" = "100"
            sasl.mechanism = "PLAIN"
            [kafka.secret_files]
            "sasl.password" = "/run/pw"
            [http]
            listen = "localhost:1"
            """
        let c = try ConfigLoader.parse(text: text, file: "t.toml").get()
        let o = c.origins
        #expect(o.file == "t.toml")
        #expect(o.position(of: "kafka.brokers") == TOMLPosition(line: 2, column: 11))
        #expect(o.position(of: "kafka.properties.socket.timeout.ms", atKey: true) == TOMLPosition(line: 4, column: 1))
        #expect(o.position(of: "kafka.properties.socket.timeout.ms") == TOMLPosition(line: 4, column: 23))
        #expect(o.position(of: "kafka.properties.sasl.mechanism") == TOMLPosition(line: 5, column: 18))
        #expect(o.position(of: "kafka.secret_files.sasl.password") == TOMLPosition(line: 7, column: 19))
        #expect(o.position(of: "http.listen") == TOMLPosition(line: 9, column: 10))
        // A default has no line of its own: its table's header, else the top of the file.
        #expect(o.position(of: "state.dir") == TOMLPosition(line: 1, column: 1))
        #expect(o.position(of: "kafka.properties.nope") == TOMLPosition(line: 3, column: 8))
        // Positions are not part of the configuration's identity.
        let moved = try ConfigLoader.parse(text: "\n\n" + text, file: "u.toml").get()
        #expect(moved == c)
    }

    /// An unquoted secret is a syntax error; the message says where and what kind of token, never the token.
    @Test func anUnquotedSecretIsNotEchoed() {
        let text = "[kafka.properties]\n\"sasl.password\" = Xk9-hunter2-Qz\n"
        guard case .failure(let e) = ConfigLoader.parse(text: text, file: "t.toml") else { Issue.record("accepted"); return }
        #expect(e.description == "t.toml:2:19: error: invalid value: an unquoted word of 14 characters (strings must be quoted, such as \"text\")")
        #expect(!e.description.contains("hunter2"))
    }
}
