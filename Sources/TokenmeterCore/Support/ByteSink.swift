/// Where the byte writers (JSON strings, integers, decimal amounts) put their output: a growable
/// `[UInt8]`, or a `ByteCursor` over memory sized beforehand. The writers are generic over it so that
/// one implementation serves both; within this module they are specialised, so a cursor's writes are
/// plain stores (no capacity check, uniqueness check or call per field as with an array).
public protocol ByteSink {
    mutating func put(_ byte: UInt8)
    mutating func put(_ bytes: UnsafeRawBufferPointer)
}

extension ByteSink {
    /// A literal's UTF-8 bytes.
    @inlinable public mutating func put(_ s: StaticString) {
        put(UnsafeRawBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
    }
}

extension Array: ByteSink where Element == UInt8 {
    @inlinable public mutating func put(_ byte: UInt8) { append(byte) }
    @inlinable public mutating func put(_ bytes: UnsafeRawBufferPointer) { append(contentsOf: bytes) }
}

/// Writes through a pointer into memory the caller sized for the most it will write (an upper bound
/// worked out from what is about to be written: each field at its longest). Every write is still checked
/// against the end, a compare per write: should a bound ever be wrong, the process stops on the check
/// instead of writing past the memory (and the bound tests fail first).
struct ByteCursor: ByteSink {
    private let end: UnsafeMutableRawPointer
    private(set) var at: UnsafeMutableRawPointer

    /// Over `memory`, or only its `count` bytes from `offset`: a cursor as long as the bound it was sized
    /// by catches a wrong bound on the write that passes it, wherever it lies in the memory.
    init(_ memory: UnsafeMutableRawBufferPointer, from offset: Int = 0, count: Int? = nil) {
        precondition(offset >= 0 && offset + (count ?? 0) <= memory.count)
        let start = memory.baseAddress! + offset
        at = start
        end = count.map { start + $0 } ?? memory.baseAddress! + memory.count
    }

    @inline(__always) mutating func put(_ byte: UInt8) {
        precondition(at < end, "ByteCursor: write past the bound")
        at.storeBytes(of: byte, as: UInt8.self)
        at += 1
    }

    @inline(__always) mutating func put(_ bytes: UnsafeRawBufferPointer) {
        guard let from = bytes.baseAddress, bytes.count > 0 else { return }
        precondition(end - at >= bytes.count, "ByteCursor: write past the bound")
        at.copyMemory(from: from, byteCount: bytes.count)
        at += bytes.count
    }
}

/// Many small records (rollup rows, checkpoint rows) written through a `ByteCursor` into a scratch block,
/// and appended to an array a block at a time. Appending each record to the array instead costs a copy
/// call, a capacity and a uniqueness check per record, and over the million rows of a large state that
/// was a visible share of encoding it.
struct BlockWriter: ~Copyable {
    private var scratch: UnsafeMutableRawBufferPointer
    private var used = 0

    init(blockBytes: Int = 65_536) {
        scratch = .allocate(byteCount: blockBytes, alignment: 16)
    }

    deinit { scratch.deallocate() }

    /// Writes one record of at most `bound` bytes; `out` receives the block first if it has no room left.
    @inline(__always)
    mutating func write(bound: Int, flushingInto out: inout [UInt8], _ body: (inout ByteCursor) -> Void) {
        if used + bound > scratch.count {
            flush(into: &out)
            if bound > scratch.count {
                scratch.deallocate()
                scratch = .allocate(byteCount: bound, alignment: 16)
            }
        }
        var c = ByteCursor(scratch, from: used, count: bound)
        body(&c)
        used = c.at - scratch.baseAddress!
    }

    /// Appends what the block holds to `out` (call before `out` is written otherwise, and at the end).
    mutating func flush(into out: inout [UInt8]) {
        guard used > 0 else { return }
        out.append(contentsOf: UnsafeRawBufferPointer(rebasing: scratch[..<used]))
        used = 0
    }
}
