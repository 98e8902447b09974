/// TOML text out: strings, keys and comments written so that `TOMLParser` reads them back as the same
/// value. The one place that escapes TOML, for every writer of configuration text.
public enum TOMLText {
    /// A basic string (`"..."`). Escaped: `"` and `\`, and every control character, which TOML does not
    /// allow raw in a basic string: `\b \t \n \f \r` by name, the others (and DEL) as `\u00XX`.
    public static func string(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\u{08}": out += "\\b"
            case "\t": out += "\\t"
            case "\n": out += "\\n"
            case "\u{0C}": out += "\\f"
            case "\r": out += "\\r"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    let hex = String(scalar.value, radix: 16, uppercase: true)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    /// An array of basic strings on one line: `["a", "b"]`.
    public static func strings(_ list: [String]) -> String {
        "[" + list.map(string).joined(separator: ", ") + "]"
    }

    /// Text safe on a `#` comment line: a control character (a line end would end the comment) is shown
    /// as its escape, as in a string.
    public static func comment(_ s: String) -> String {
        guard s.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else { return s }
        return String(string(s).dropFirst().dropLast())
    }
}
