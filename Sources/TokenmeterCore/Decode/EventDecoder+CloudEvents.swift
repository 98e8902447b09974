/// CloudEvents (contract 1c): a message with `specversion` and `data` is an envelope. Its own `id`,
/// `time` and `subject` are kept while the top level is walked; `data` (an object, or a string holding
/// one) is then walked as the event, and the envelope's `id` and `time` win over the data's, its `subject`
/// stands in for a missing owner.
extension EventDecoder {
    func decodeCloudEventData(_ bytes: UnsafeRawBufferPointer) -> RejectReason? {
        let envID = slots.id
        resetFields()
        if !event.tags.isEmpty { event.tags.removeAll(keepingCapacity: true) }
        switch env.dataKind {
        case .object:
            var inner = JSONScanner(UnsafeRawBufferPointer(rebasing: bytes[env.dataSpan.start..<env.dataSpan.end]),
                                    maxDepth: Self.maxNestingDepth)
            do throws(JSONError) {
                try walkEvent(&inner, base: Self.topRank, ctx: .data)
                try inner.finish()
            } catch {
                return Self.syntaxReject(error, "data: ")
            }
        case .string:
            if !dataBuf.isEmpty { dataBuf.removeAll(keepingCapacity: true) }
            JSONScanner.appendUnescaped(bytes, env.dataSpan, to: &dataBuf)
            let buf = dataBuf
            let r: RejectReason? = buf.withUnsafeBytes { p in
                var inner = JSONScanner(p, maxDepth: Self.maxNestingDepth)
                do throws(JSONError) {
                    let k = try inner.peekKind()
                    guard k == .object else {
                        try inner.skipValue()
                        try inner.finish()
                        return RejectReason(.badField, "data is a string holding \(k.name), not a JSON object")
                    }
                    try self.walkEvent(&inner, base: Self.topRank, ctx: .data)
                    try inner.finish()
                } catch {
                    return Self.syntaxReject(error, "data (a string holding JSON): ")
                }
                return nil
            }
            if let r { return r }
        case let k?:
            return RejectReason(.badField, "data must be an object or a string holding a JSON object, got \(k.name)")
        case nil:
            break
        }
        if envID.isSet { slots.id = envID }
        if let r = env.timeReject, pendings.isEmpty, !morePendings { return r }
        if let t = env.time { slots.timestamp.put(t, 255) }
        if !slots.owner.isSet && !env.subject.isAbsent { slots.owner.put(env.subject, 1) }
        return nil
    }

    /// A CloudEvents envelope attribute at the top level (`specversion`, `data`, `subject`); elsewhere (in
    /// `data`, in `attributes`) these names mean nothing and are skipped. `data` is only located here
    /// (its kind and span): it is walked once the whole envelope has been read.
    func readEnvelopeField(_ key: EventKey, _ s: inout JSONScanner, _ ctx: Ctx) throws(JSONError) {
        guard ctx == .top else { return try s.skipValue() }
        switch key {
        case .specversion:
            env.specversion = true
            envDirty = true
            try s.skipValue()
        case .data:
            let kind = try s.peekKind()
            let start = s.position
            if kind == .string {
                env.dataSpan = try s.readStringAtQuote()
            } else {
                try s.skipValue()
                env.dataSpan = JSONSpan(start: start, end: s.position, escaped: false)
            }
            env.dataKind = kind
            envDirty = true
        case .subject:
            if try s.peekKind() == .string {
                let sp = try s.readStringAtQuote()
                env.subject = copy(s, sp)
                envDirty = true
            } else {
                try s.skipValue()
            }
        default:
            try s.skipValue()
        }
    }
}

struct Envelope {
    var specversion = false
    var dataKind: JSONValueKind? = nil
    var dataSpan = JSONSpan(start: 0, end: 0, escaped: false)
    var subject = ScratchString.absent
    var time: EpochMillis? = nil
    var timeReject: RejectReason? = nil
}
