/// Reject reasons and their details (contract 1e): field problems are recorded while the walk goes on,
/// without allocating (`Pending`: a code, where, a static problem text and the value's first bytes in
/// `errBuf`); a later valid value of the same key drops them; the first one left becomes the reject's
/// message only when the message is rejected (`materialize`).
extension EventDecoder {
    static func syntaxReject(_ e: JSONError, _ prefix: String) -> RejectReason {
        RejectReason(e.kind == .invalidUTF8 ? .invalidUTF8 : .invalidJSON, prefix + e.description)
    }

    // MARK: - Repeated keys

    /// A key's identity for `Pending.slot`: the level (1 event, 2 usage block, 3 a detail object inside
    /// it, 4 a tag), where it was read, and the key.
    @inline(__always)
    static func slotID(_ level: UInt64, _ ctx: Ctx, _ a: UInt64, _ b: UInt64 = 0) -> UInt64 {
        level << 56 | UInt64(ctx.code) << 52 | a << 24 | b
    }

    func tagSlot(_ s: borrowing JSONScanner, _ name: JSONSpan, _ ctx: Ctx) -> UInt64 {
        Self.slotID(4, ctx, withUnescaped(s, name) { Self.nameHash($0) } & 0x0FFF_FFFF)
    }

    /// FNV-1a of a tag name (only to tell repeated tag names apart while a message has problems).
    static func nameHash(_ p: UnsafeRawBufferPointer) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in p { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return h
    }

    /// After a key's value was read: when it added no problem (valid or null), it replaces what an earlier
    /// value of the same key left. (Written without `&&`: its autoclosures allocated in a debug build.)
    func dropIfRepeated(_ mark: Int, _ slot: UInt64) {
        if pendingCount != mark { return }
        if slot == 0 { return }
        dropRepeated(slot)
    }

    /// A later valid (or null) value of a repeated key replaces the earlier one: its problems go.
    func dropRepeated(_ slot: UInt64) {
        // A CloudEvent's own `type` is a problem of the envelope walk that stays pending while the other
        // keys are read, so this runs for most keys of such a message: a plain loop, no closure.
        var i = 0
        while i < pendings.count {
            if pendings[i].slot == slot { pendings.remove(at: i) } else { i += 1 }
        }
        if pendings.isEmpty && errBuf.count > 0 { errBuf.removeAll(keepingCapacity: true) }
    }

    func dropPendings(_ which: (Pending) -> Bool) {
        pendings.removeAll(where: which)
        if pendings.isEmpty && errBuf.count > 0 { errBuf.removeAll(keepingCapacity: true) }
    }

    /// Records the first field-level problem; the value text (truncated) goes to `errBuf`.
    func fail(_ code: RejectReason.Code, _ at: Where, _ problem: StaticString,
              _ s: borrowing JSONScanner, from start: Int, prefix: JSONSpan? = nil) {
        guard pendings.count < Self.maxPendings else { morePendings = true; return }
        if pendings.isEmpty && !errBuf.isEmpty { errBuf.removeAll(keepingCapacity: true) }
        let textStart = errBuf.count
        if let prefix {
            let before = errBuf.count
            s.appendUnescaped(prefix, to: &errBuf)
            if errBuf.count - before > 64 {
                errBuf.removeSubrange((before + 64)...)
                errBuf.append(contentsOf: "...".utf8)
            }
            errBuf.append(contentsOf: ": ".utf8)
        }
        var a = start
        while a < s.position, a < s.buffer.count {
            let c = s.buffer[a]
            if c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 { a += 1 } else { break }
        }
        let n = min(s.position - a, 64)
        if n > 0 { errBuf.append(contentsOf: UnsafeRawBufferPointer(rebasing: s.buffer[a..<(a + n)])) }
        if s.position - a > 64 { errBuf.append(contentsOf: "...".utf8) }
        pendings.append(Pending(code: code, at: at, problem: problem, hasValue: n > 0, textStart: textStart,
                                textCount: errBuf.count - textStart, slot: currentSlot))
    }

    func modelSuffix(_ m: ScratchString) -> String {
        guard let s = string(m) else { return "" }
        return " for model \(s)"
    }

    /// An optional name that reaches rollups, metrics or alerts: at most `maxNameBytes` bytes.
    /// (The text is built only for a reject: the checks run on every event.)
    @inline(__always)
    func checkBound(_ v: ScratchString, _ name: StaticString, _ ctxName: StaticString) -> RejectReason? {
        guard Int(v.count) > Self.maxNameBytes else { return nil }
        return RejectReason(.badField, "\(name) is \(v.count) bytes, over the \(Self.maxNameBytes)-byte limit\(ctxName)")
    }

    @inline(__always)
    func checkName(_ v: Ranked<ScratchString>, _ name: StaticString, _ ctxName: StaticString) -> RejectReason? {
        if v.isSet && v.value.count > 0 && Int(v.value.count) <= Self.maxNameBytes { return nil }
        return nameReject(v, name, ctxName)
    }

    func nameReject(_ v: Ranked<ScratchString>, _ name: StaticString, _ ctxName: StaticString) -> RejectReason {
        if !v.isSet || v.value.count <= 0 {
            return RejectReason(.missingField, v.isSet ? "\(name) is empty\(ctxName)" : "\(name) is missing\(ctxName)")
        }
        return RejectReason(.badField, "\(name) is \(v.value.count) bytes, over the \(Self.maxNameBytes)-byte limit\(ctxName)")
    }

    func materialize(_ p: Pending) -> RejectReason {
        var d = ""
        d += p.at.ctx.prefix.description
        d += p.at.block.prefix.description
        d += p.at.field.description
        d += " "
        d += p.problem.description
        if p.hasValue {
            // One line: whitespace inside a quoted object/array value becomes spaces.
            var text = Array(errBuf[p.textStart..<(p.textStart + p.textCount)])
            for i in text.indices where text[i] < 0x20 { text[i] = 0x20 }
            d += ", got " + String(decoding: text, as: UTF8.self)
        }
        return RejectReason(p.code, d)
    }

    /// The reject for a contribution with a part larger than its whole.
    func partExceedsWholeReject(_ part: UsageAccounting.PartExceedingWhole, _ c: Contribution) -> RejectReason {
        let t = c.tokens
        switch part {
        case .cacheOverInput:
            return RejectReason(.partExceedsWhole, "cache_read_tokens (\(t.cacheRead)) + cache_write_tokens (\(t.cacheWrite)) exceed input_tokens (\(t.input))\(modelSuffix(c.model))")
        case .reasoningOverOutput:
            return RejectReason(.partExceedsWhole, "reasoning_tokens (\(t.reasoning)) exceed output_tokens (\(t.output))\(modelSuffix(c.model))")
        case .cacheWrite1hOverCacheWrite:
            return RejectReason(.partExceedsWhole, "cache_write_1h tokens (\(t.cacheWrite1h)) exceed cache_write_tokens (\(t.cacheWrite))\(modelSuffix(c.model))")
        }
    }
}

/// Where a field was read, for reject details: `<ctx><block><parent><field>`.
enum Ctx: Equatable {
    case top, attributes, data, dataAttributes
    var code: UInt8 {
        switch self {
        case .top: 0
        case .attributes: 1
        case .data: 2
        case .dataAttributes: 3
        }
    }
    var prefix: StaticString {
        switch self {
        case .top: ""
        case .attributes: "attributes."
        case .data: "data."
        case .dataAttributes: "data.attributes."
        }
    }
}

struct Where {
    var ctx: Ctx
    var block: Block
    var field: StaticString
    @inline(__always) init(_ ctx: Ctx, _ field: StaticString) {
        self.ctx = ctx; block = .none; self.field = field
    }
    @inline(__always) init(_ ctx: Ctx, _ block: Block, _ field: StaticString) {
        self.ctx = ctx; self.block = block; self.field = field
    }
}

enum Block: UInt8 {
    case none, usage, iteration
    var prefix: StaticString {
        switch self {
        case .none: ""
        case .usage: "usage."
        case .iteration: "usage.iterations[]."
        }
    }
}

/// The first field-level problem of a message, kept without allocating until the message is rejected.
struct Pending {
    var code: RejectReason.Code
    var at: Where
    var problem: StaticString
    var hasValue: Bool
    /// The value's text in the decoder's `errBuf`.
    var textStart: Int
    var textCount: Int
    /// The key the value belongs to (see `EventDecoder.currentSlot`).
    var slot: UInt64
}
