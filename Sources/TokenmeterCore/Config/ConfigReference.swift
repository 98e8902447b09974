import TokenmeterTOML

/// docs/configuration-reference.md, generated from `ConfigKeys` (`tokenmeter check-config --reference`):
/// a test checks that the file in the repository is this text, so the reference cannot drift from the
/// keys the loader accepts, their defaults and what a reload does with them.
public enum ConfigReference {
    public static func markdown() -> String {
        var out = """
            # Configuration reference

            <!-- Generated from the key table (Sources/TokenmeterCore/Config/ConfigKeys.swift) by
                 `tokenmeter check-config --reference > docs/configuration-reference.md`; a test checks that this
                 file is its output. Change the table, then regenerate. -->

            Every key of the configuration file, its default, what a reload does with it and what is checked. The file
            is TOML, by default `/etc/tokenmeter/tokenmeter.toml` (`--config FILE` to choose another).
            [config/tokenmeter.toml](../config/tokenmeter.toml) is a commented example of every setting;
            [config/demo.toml](../config/demo.toml) is what `tokenmeter demo` runs with;
            [config/prices.toml](../config/prices.toml) holds list prices. `tokenmeter check-config --config FILE`
            checks a file and what `run` needs from this machine without starting anything (`--file-only`: the file
            alone; `--print` shows the effective configuration, every key, secrets hidden);
            [configuration.md](configuration.md) lists those checks.

            ## How the file is read

            - Every problem in the file is reported at once, each as `FILE:LINE:COL: error: MESSAGE` at the key or
              value at fault, in file order; `check-config` and `run` exit 78 on any. A TOML syntax error stops the
              reading and is the only message.
            - Unknown keys and tables are errors, never ignored, with a "did you mean" for a near miss and, for a
              key written above every table header, the table it belongs in.
            - An omitted key takes its default. An empty string is an error (omit the key for the default).
            - **Durations** are strings: whole numbers with a unit, `ms`, `s`, `m`, `h`, `d` (24 h) or `w` (7 d),
              combinable: `"500ms"`, `"30s"`, `"1h30m"`. A bare number is an error (it has no unit).
            - **Money and prices** are read from the number's text, exactly: `0.1` is exactly 0.1, never a binary
              float. Prices may have at most 9 decimals (nano-dollars per 1M tokens); more is an error, not a
              rounding.
            - The file must be valid UTF-8 and at most 16 MiB.
            - **On reload** (`SIGHUP`, `systemctl reload tokenmeter`, [running.md](running.md#reload)): a key marked
              *at once* is applied by the reload; a key marked *restart* keeps its running value, and the reload
              logs a `restart needed` warning that names it; *not read by run* is for other commands.

            ## `include`

            A top-level key: `include = ["prices.toml"]`, files of `[[price]]` entries read after the config's own,
            paths relative to the config's folder; no other settings in them, no nesting
            ([prices.md](prices.md#including-a-price-list-include)). Not a setting itself: `check-config --print`
            shows the entries it brought in as `[[price]]` entries, each with its file and line.

            """
        for section in ConfigKeys.sections {
            out += "\n## `\(section.header)`\n\n"
            if !section.doc.isEmpty { out += section.doc + "\n\n" }
            switch section.shape {
            case .table:
                out += "| key | type | default | on reload | meaning and checks |\n|---|---|---|---|---|\n"
                let defaults = TokenmeterConfig()
                for key in section.keys {
                    let value = key.render(defaults, 0)
                    var dflt = value.map { "`\($0)`" } ?? key.defaultNote ?? "none"
                    if value != nil, let note = key.defaultNote { dflt += " (\(note))" }
                    out += "| `\(key.name)` | \(typeCell(key)) | \(cell(dflt)) | \(key.reload.rawValue) | \(cell(key.doc)) |\n"
                }
            case .map:
                out += "Example: " + section.example.map { "`\($0)`" }.joined(separator: ", ") + ". On reload: "
                    + "\(section.reload.rawValue).\n"
            case .arrayOfTables:
                out += "On reload: \(section.reload.rawValue) (the whole list).\n\n"
                out += "| key | type | required, or the default | meaning and checks |\n|---|---|---|---|\n"
                for key in section.keys {
                    let dflt = key.required ? "required" : key.defaultNote ?? "none"
                    out += "| `\(key.name)` | \(typeCell(key)) | \(cell(dflt)) | \(cell(key.doc)) |\n"
                }
            }
        }
        return out
    }

    static func typeCell(_ key: ConfigKey) -> String {
        cell("\(key.type.rawValue), such as `\(key.example)`")
    }

    /// Text safe in a Markdown table cell.
    static func cell(_ s: String) -> String { s.split(separator: "|", omittingEmptySubsequences: false).joined(separator: "\\|") }
}
