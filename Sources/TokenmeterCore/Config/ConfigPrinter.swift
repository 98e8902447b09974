import TokenmeterTOML

/// `check-config --print`: the effective configuration as TOML, every key of `ConfigKeys` with its value,
/// defaults filled in; an unset optional key is a comment that says what its absence means. Read back, the
/// text gives the same configuration, with two exceptions that keep secrets out of terminals and logs:
/// a `[kafka.properties]` value whose name says it is secret is shown as `<hidden>`, and where a
/// `[kafka.secret_files]` file is read from is a comment (its content is never shown). The provider
/// prefixes built into tokenmeter are comments too, after the file's own.
public enum ConfigPrinter {
    /// `header`: comment lines at the top (the file, the version). `credentialsDirectory`: systemd's
    /// `$CREDENTIALS_DIRECTORY`, against which relative secret-file paths are resolved.
    public static func text(_ config: TokenmeterConfig, header: [String] = [], credentialsDirectory: String? = nil) -> String {
        var out = header.map { "# " + TOMLText.comment($0) + "\n" }.joined()
        for section in ConfigKeys.sections {
            switch section.shape {
            case .table:
                out += "\n\(section.header)\n"
                for key in section.keys {
                    if let value = key.render(config, 0) {
                        out += "\(key.name) = \(value)\n"
                    } else {
                        out += "# \(key.name): not set (\(key.defaultNote ?? "none"))\n"
                    }
                }
            case .map:
                out += "\n\(section.header)\n"
                for line in section.lines(config, credentialsDirectory) { out += line + "\n" }
            case .arrayOfTables:
                for index in 0..<section.count(config) {
                    out += "\n\(section.header)" + (section.entryComment(config, index).map { "  # " + $0 } ?? "") + "\n"
                    for key in section.keys {
                        if let value = key.render(config, index) { out += "\(key.name) = \(value)\n" }
                    }
                }
            }
        }
        return out
    }
}
