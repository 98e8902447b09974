import TokenmeterTOML

/// Where the values that are checked after parsing were written: a property librdkafka refuses, a listen
/// host that does not resolve, a secret file that cannot be read or a folder that cannot be created is
/// then still reported at `FILE:LINE:COL`, like every problem the loader finds itself.
///
/// Names are the configuration's own: `kafka.brokers`, `http.listen`, `state.dir`, `rollups.dir`,
/// `kafka.properties.<property>`, `kafka.secret_files.<property>`, and the tables `[kafka]`,
/// `[kafka.properties]`, `[kafka.secret_files]`, `[state]`, `[rollups]`, `[http]`.
///
/// Not part of a configuration's identity: two configurations that differ only in where their lines are
/// compare equal (a reload that moves a line changes nothing).
public struct ConfigOrigins: Sendable, Equatable {
    /// The configuration file (empty for a configuration built in code).
    public var file: String = ""
    /// Where each key (or table header) was written.
    public var keys: [String: TOMLPosition] = [:]
    /// Where each value was written.
    public var values: [String: TOMLPosition] = [:]

    public init(file: String = "") { self.file = file }

    public static func == (_: ConfigOrigins, _: ConfigOrigins) -> Bool { true }

    /// The position of `name`'s value (or its key with `atKey`), else of its key, else of the table it
    /// belongs in (`[state]` for `state.dir`), else the top of the file: a default value has no line.
    public func position(of name: String, atKey: Bool = false) -> TOMLPosition {
        if !atKey, let p = values[name] { return p }
        if let p = keys[name] { return p }
        if let p = values[name] { return p }
        var table = name
        while let dot = table.lastIndex(of: ".") {
            table = String(table[..<dot])
            if let p = keys["[\(table)]"] { return p }
        }
        return TOMLPosition(line: 1, column: 1)
    }

    public func error(_ name: String, atKey: Bool = false, _ message: String) -> ConfigDiagnostic {
        let p = position(of: name, atKey: atKey)
        return ConfigDiagnostic(file: file, line: p.line, column: p.column, message: message)
    }

    public func warning(_ name: String, atKey: Bool = false, _ message: String) -> ConfigDiagnostic {
        let p = position(of: name, atKey: atKey)
        return ConfigDiagnostic(file: file, line: p.line, column: p.column, message: message, severity: .warning)
    }
}
