/// A model-name glob from a `[[price]]` entry (contract section 2).
///
/// Syntax: `*` matches any run of characters (including none), `?` matches exactly one character; every
/// other character is literal (no escapes, no character classes, no brace sets). Matching is
/// case-sensitive and works on UTF-8 bytes; "character" means one Unicode scalar, so `?` matches `é`
/// (two bytes) as one character, and `*` only ever stops at a scalar boundary.
///
/// Specificity ("a longer glob beats a shorter one"): a glob's length is its number of literal
/// characters (`literalCount`), e.g. `gpt-4o*` has 6 and beats `gpt-*` with 4. Wildcards do not count.
/// At equal literal count, the glob with fewer `*` is the more specific (`gpt-4o?` beats `gpt-4o*`).
/// A pattern with no wildcard (`isExact`) is an exact model name and beats every glob.
///
/// Matching allocates nothing: the pattern is kept as bytes and the subject is read in place.
public struct Glob: Sendable, Hashable, CustomStringConvertible {
    public let pattern: String
    /// The pattern's UTF-8 bytes.
    @usableFromInline let bytes: [UInt8]
    /// True when the pattern has no `*` and no `?`: it only matches itself.
    public let isExact: Bool
    /// Literal (non-wildcard) characters, counted as Unicode scalars.
    public let literalCount: Int
    /// Number of `*` in the pattern.
    public let starCount: Int

    @usableFromInline static let star = UInt8(ascii: "*")
    @usableFromInline static let question = UInt8(ascii: "?")

    public init(_ pattern: String) {
        self.pattern = pattern
        let b = Array(pattern.utf8)
        self.bytes = b
        var literals = 0, stars = 0, questions = 0
        for c in b {
            if c == Glob.star { stars += 1 } else if c == Glob.question { questions += 1 } else if !Glob.isContinuation(c) {
                literals += 1
            }
        }
        self.literalCount = literals
        self.starCount = stars
        self.isExact = stars == 0 && questions == 0
    }

    public var description: String { pattern }

    @inlinable static func isContinuation(_ c: UInt8) -> Bool { c & 0xC0 == 0x80 }

    /// Does `subject` match this glob?
    @inlinable public func matches(_ subject: String) -> Bool {
        if let r = subject.utf8.withContiguousStorageIfAvailable({ matches(utf8: UnsafeRawBufferPointer($0)) }) {
            return r
        }
        var copy = subject  // bridged or otherwise non-contiguous: make it native once
        copy.makeContiguousUTF8()
        return copy.utf8.withContiguousStorageIfAvailable { matches(utf8: UnsafeRawBufferPointer($0)) } ?? false
    }

    /// Does the UTF-8 text in `subject` match this glob? (For names that live in a decoder's buffer.)
    @inlinable public func matches(utf8 subject: UnsafeRawBufferPointer) -> Bool {
        bytes.withUnsafeBufferPointer { p in Glob.match(pattern: p, text: subject) }
    }

    /// Iterative matcher with single-star backtracking: O(pattern x text) worst case, no recursion, no
    /// allocation. On a mismatch it resumes after the most recent `*`, letting it absorb one more
    /// character; earlier stars never need revisiting.
    @usableFromInline static func match(pattern p: UnsafeBufferPointer<UInt8>, text t: UnsafeRawBufferPointer) -> Bool {
        let pn = p.count, tn = t.count
        var pi = 0, ti = 0
        var starP = -1, starT = 0
        @inline(__always) func nextScalar(_ i: Int) -> Int {
            var j = i + 1
            while j < tn && isContinuation(t[j]) { j += 1 }
            return j
        }
        while ti < tn {
            if pi < pn {
                let c = p[pi]
                if c == star {
                    starP = pi; starT = ti; pi += 1
                    continue
                }
                if c == question {
                    pi += 1; ti = nextScalar(ti)
                    continue
                }
                if c == t[ti] {
                    pi += 1; ti += 1
                    continue
                }
            }
            guard starP >= 0 else { return false }
            // Let the last star absorb one more character and retry the rest of the pattern.
            starT = nextScalar(starT)
            pi = starP + 1; ti = starT
        }
        while pi < pn && p[pi] == star { pi += 1 }
        return pi == pn
    }
}
