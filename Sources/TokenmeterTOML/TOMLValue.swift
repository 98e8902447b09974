/// A place in a TOML document: 1-based line and 1-based column.
///
/// Columns count Unicode scalars (code points) from the start of the line, so a key after `"é" = 1` is at the
/// column a user sees in an editor for everything but wide characters; a tab counts as one column. For the
/// ASCII text that configuration files almost always are, this equals the byte column.
public struct TOMLPosition: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var line: Int
    public var column: Int

    public init(line: Int, column: Int) { self.line = line; self.column = column }

    public static func < (a: TOMLPosition, b: TOMLPosition) -> Bool {
        a.line != b.line ? a.line < b.line : a.column < b.column
    }

    public var description: String { "\(line):\(column)" }
}

/// A syntax or structure error (duplicate key, redefined table): parsing stops at the first one.
public struct TOMLError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public var position: TOMLPosition

    public init(_ message: String, at position: TOMLPosition) { self.message = message; self.position = position }

    public var description: String { "\(position.line):\(position.column): \(message)" }
}

/// One TOML value with where it was written and, for scalars, its exact source text.
public struct TOMLValue: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case string(String)
        case integer(Int64)
        /// The Double is for convenience only; exact consumers (prices, money) read `text`.
        case float(Double)
        case boolean(Bool)
        /// `1979-05-27T07:32:00Z`, `1979-05-27 07:32:00.5-07:00`: the text as written.
        case offsetDateTime(String)
        /// `1979-05-27T07:32:00`
        case localDateTime(String)
        /// `1979-05-27`
        case localDate(String)
        /// `07:32:00`
        case localTime(String)
        case array([TOMLValue])
        case table(TOMLTable)
    }

    public var kind: Kind
    /// Where the value starts: its first character (the opening quote of a string, `[` of an array, `{` of
    /// an inline table, `[` of the `[header]` or `[[header]]` that defined a table).
    public var position: TOMLPosition
    /// The exact source text of a scalar (`2.50`, `1_000`, `0x1F`, `"a\tb"` with its quotes, `true`,
    /// `2024-10-01`). Empty for arrays and tables.
    public var text: String
    /// True for an array built by `[[name]]` headers (an "array of tables"), false for `[...]` arrays.
    public var isArrayOfTables: Bool
    /// True for a table written inline (`{ ... }`).
    public var isInlineTable: Bool

    public init(kind: Kind, position: TOMLPosition, text: String = "", isArrayOfTables: Bool = false,
                isInlineTable: Bool = false) {
        self.kind = kind; self.position = position; self.text = text
        self.isArrayOfTables = isArrayOfTables; self.isInlineTable = isInlineTable
    }

    public var string: String? { if case .string(let s) = kind { return s }; return nil }
    public var integer: Int64? { if case .integer(let v) = kind { return v }; return nil }
    public var bool: Bool? { if case .boolean(let v) = kind { return v }; return nil }
    public var array: [TOMLValue]? { if case .array(let v) = kind { return v }; return nil }
    public var table: TOMLTable? { if case .table(let v) = kind { return v }; return nil }
    public var isNumber: Bool {
        switch kind { case .integer, .float: return true; default: return false }
    }

    /// `a string`, `an integer`, ... for messages.
    public var typeDescription: String {
        switch kind {
        case .string: return "a string"
        case .integer: return "an integer"
        case .float: return "a float"
        case .boolean: return "a boolean"
        case .offsetDateTime: return "a date-time"
        case .localDateTime: return "a local date-time"
        case .localDate: return "a date"
        case .localTime: return "a time"
        case .array: return isArrayOfTables ? "an array of tables" : "an array"
        case .table: return "a table"
        }
    }
}

/// A TOML table: its entries in file order, with the position of every key.
public struct TOMLTable: Sendable, Equatable {
    public struct Entry: Sendable, Equatable {
        public var key: String
        /// Where the key was first written (in a `key = value` line, a dotted key, or a table header).
        public var keyPosition: TOMLPosition
        public var value: TOMLValue

        public init(key: String, keyPosition: TOMLPosition, value: TOMLValue) {
            self.key = key; self.keyPosition = keyPosition; self.value = value
        }
    }

    public private(set) var entries: [Entry] = []
    private var index: [String: Int] = [:]
    /// Where the table was defined (`[` of its header, `{` of an inline table, its first dotted key; 1:1 for
    /// the document's root).
    public var position: TOMLPosition

    public init(position: TOMLPosition = TOMLPosition(line: 1, column: 1)) { self.position = position }

    /// Appends an entry; a key already present is replaced in place.
    public mutating func set(_ key: String, keyPosition: TOMLPosition, value: TOMLValue) {
        let e = Entry(key: key, keyPosition: keyPosition, value: value)
        if let i = index[key] { entries[i] = e } else { index[key] = entries.count; entries.append(e) }
    }

    public subscript(key: String) -> TOMLValue? {
        guard let i = index[key] else { return nil }
        return entries[i].value
    }

    public func entry(_ key: String) -> Entry? {
        guard let i = index[key] else { return nil }
        return entries[i]
    }

    public var keys: [String] { entries.map(\.key) }
    public var count: Int { entries.count }
    public var isEmpty: Bool { entries.isEmpty }

    public static func == (a: TOMLTable, b: TOMLTable) -> Bool {
        a.position == b.position && a.entries == b.entries
    }
}
