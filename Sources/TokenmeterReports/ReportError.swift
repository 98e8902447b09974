import TokenmeterCore

/// A report that cannot be made: bad options, no files, an unreadable row. The message is for the user.
public struct ReportError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ message: String) { description = message }
}
