/// The whole event path minus Kafka: decode, normalise, dedup, price, aggregate into windows per
/// partition, and collect closed windows for the rollup writer. Fed by the Kafka consume loop (`run`) or a
/// file (`replay`), which is why both produce the same files for the same events.
///
/// Owned by one thread. Per event it allocates nothing once the tables have grown: names are interned
/// bytes, price lookups are cached per (model, provider), rows are found by integer keys.
///
/// The mutable state is `@exclusivity(unchecked)`: the pipeline is owned by one thread and never hands out
/// overlapping accesses, and the runtime check of every class-property access cost about 8% of the
/// per-event instructions (callgrind).
public final class Pipeline {
    /// The window and de-duplication settings it was built with: restart-only keys, so a reload never
    /// leaves them stale. What a reload changes arrives through `replacePrices` and `alerts.replaceRules`.
    let rollups: RollupSettings
    let dedupSettings: DedupSettings
    public let instance: String
    /// The first part of a partition's writer name. The instance, unless partition state lives in a
    /// changelog (`kafka.spend_topic`): then whichever instance holds a partition continues the one history recorded
    /// there, and names its files by the group, so that a window re-closed on another instance after a
    /// crash gets the same file name (and the same content) instead of a second file.
    public let writerPrefix: String
    /// Spend mode (`kafka.spend_topic`): counted events go to the partition's `SpendAccumulator`
    /// for the alert shards, not to the local `alerts` engine.
    public let spendMode: Bool
    @exclusivity(unchecked) public private(set) var dimensions: Dimensions
    @exclusivity(unchecked) public private(set) var metrics = PipelineMetrics()
    /// The live spend counters of /metrics by `metrics.dimensions` (counted events, since the start).
    @exclusivity(unchecked) public private(set) var spendSeries: SpendSeriesTable
    public let writer: RollupFileWriter
    /// Closed windows not yet on disk. Kept until `writePending` succeeds, and a checkpoint is only taken
    /// when this is empty: the checkpoint no longer holds these rows, so they must be in files first.
    @exclusivity(unchecked) public private(set) var pending: [(window: ClosedWindow, writer: String)] = []
    /// Rows held by `pending`: what says when closed windows are worth writing before the next checkpoint.
    @exclusivity(unchecked) public private(set) var pendingRows = 0
    /// Closed windows are written together, once per checkpoint (one durable batch: files staged, one
    /// flush to disk, renamed, each folder fsynced once), not after every poll batch: a file's fsync and
    /// its folder's cost more than writing it, and a checkpoint needs them on disk only before it is
    /// taken. Past this many rows they are written sooner, so that closed windows waiting for the
    /// checkpoint never hold much memory (about 4 MB at `bytesPerOpenRow`); a flush of that size is still
    /// one batch of a hundred minute files or more.
    public static let pendingRowsToWrite = 16_384
    /// Whether enough closed windows wait to be written before the next checkpoint.
    public var pendingDue: Bool { pendingRows >= Pipeline.pendingRowsToWrite }
    /// Reused by `writePending` for each file's bytes.
    @exclusivity(unchecked) private var encodeBuffer: [UInt8] = []

    /// Guardrails, fed every counted event as it is counted (not at window close).
    public let alerts: AlertEngine
    private let decoder: EventDecoder
    /// How each topic's messages are written (`kafka.input_formats`), by topic index.
    private let formats: [InputFormat]
    /// Reads the OTLP trace topics' messages; nil when every topic holds JSON events.
    private let traces: TraceDecoder?
    @exclusivity(unchecked) private var prices: PriceTable
    /// Price candidates per interned model id, for events that name no provider and for each provider
    /// (see `PriceCache`): the globs run once per (model, provider), never per event.
    @exclusivity(unchecked) private var priceCache = PriceCache()
    private let topics: [String]
    /// [topic index][partition] -> state.
    @exclusivity(unchecked) private var partitions: [[PartitionState?]]
    /// [topic index][partition] -> `writerName`, built once per partition rather than per closed window.
    @exclusivity(unchecked) private var writerNames: [[String?]]
    private let sizes: [Int64]
    private let maxFutureMillis: Int64
    private let tagNameBytes: [[UInt8]]
    /// One value id per configured tag, refilled per event (no array built per event). Memory of its own
    /// rather than an array: lending an array property to `internTags` retained and released it per event.
    private let tagScratch: UnsafeMutableBufferPointer<UInt32>
    /// Where rows go once a window holds `rollups.max_keys_per_window` keys: workflow, owner and model
    /// `__overflow__`, so the spend stays in the totals while memory stays bounded.
    private let overflowKey: SeriesKey

    public enum Result: Equatable, Sendable {
        case counted
        case late
        case duplicate
        case rejected(RejectReason)
    }

    public init(config: TokenmeterConfig, instance: String) {
        self.rollups = config.rollups
        self.dedupSettings = config.dedup
        self.instance = instance
        self.writerPrefix = config.kafka.changelogTopic != nil ? config.kafka.groupId : instance
        self.spendMode = config.kafka.spendTopic != nil
        self.topics = config.kafka.topics
        self.dimensions = Dimensions(tagNames: config.rollups.tags)
        self.spendSeries = SpendSeriesTable(config.metrics)
        self.writer = RollupFileWriter(dir: config.rollups.dir, windows: config.rollups.windows)
        let prefixes = ProviderPrefixes(extra: config.providerPrefixes)
        self.decoder = EventDecoder(providerPrefixes: prefixes)
        self.formats = config.kafka.topics.map { config.kafka.inputFormat(of: $0) }
        self.traces = formats.contains(where: \.isTraces) ? TraceDecoder(settings: config.otlp, providerPrefixes: prefixes) : nil
        self.metrics.readsTraces = traces != nil
        self.alerts = AlertEngine(budgets: config.budgets, spikes: config.spikes, outcomeLimits: config.outcomeLimits)
        self.prices = PriceTable(config.prices)
        self.partitions = Array(repeating: [], count: max(config.kafka.topics.count, 1))
        self.writerNames = Array(repeating: [], count: max(config.kafka.topics.count, 1))
        self.tagScratch = .allocate(capacity: config.rollups.tags.count)
        self.tagScratch.initialize(repeating: SeriesKey.none)
        self.sizes = config.rollups.windows.map(\.millis)
        self.maxFutureMillis = config.rollups.maxFuture.millis
        self.tagNameBytes = config.rollups.tags.map { Array($0.utf8) }
        let overflow = dimensions.names.intern("__overflow__")
        self.overflowKey = SeriesKey(workflow: overflow, owner: overflow, model: overflow, provider: SeriesKey.none, tags: Dimensions.noTags)
    }

    deinit { tagScratch.deallocate() }

    // MARK: Partitions

    /// The name a partition's files carry: `<instance>-p<N>`, with the topic when several are consumed.
    public func writerName(topicIndex: Int, partition: Int32) -> String {
        let p = Int(partition)
        if p >= 0, p < writerNames[topicIndex].count, let name = writerNames[topicIndex][p] { return name }
        let name = topics.count > 1 ? "\(writerPrefix)-\(topics[topicIndex])-p\(partition)" : "\(writerPrefix)-p\(partition)"
        if p >= 0 {
            while writerNames[topicIndex].count <= p { writerNames[topicIndex].append(nil) }
            writerNames[topicIndex][p] = name
        }
        return name
    }

    public func topicIndex(_ topic: String) -> Int? { topics.firstIndex(of: topic) }

    public func freshState(topicIndex: Int, partition: Int32, nextOffset: Int64, wallNow: EpochMillis) -> PartitionState {
        PartitionState(topic: topics[topicIndex], partition: partition, nextOffset: nextOffset, windows: emptyWindows(),
                       dedup: DedupSet(window: dedupSettings.window.millis), lastMessageWall: wallNow)
    }

    private func emptyWindows() -> PartitionWindows {
        PartitionWindows(sizes: sizes, grace: rollups.grace.millis, lateHorizon: rollups.lateHorizon.millis,
                         maxKeys: rollups.maxKeysPerWindow, overflowKey: overflowKey)
    }

    /// Takes ownership of a partition, with the state restored from a checkpoint or a fresh one.
    public func assign(_ state: PartitionState, topicIndex: Int) {
        let p = Int(state.partition)
        while partitions[topicIndex].count <= p { partitions[topicIndex].append(nil) }
        partitions[topicIndex][p] = state
    }

    /// Takes a partition's spend since the last call (spend mode), leaving an empty accumulator of the same
    /// capacity: the taken sums keep their buffers, the partition gets fresh ones of the same size (one
    /// allocation per checkpoint), so the next interval's events do not regrow the table.
    public func takeSpend(topicIndex: Int, partition: Int32) -> SpendAccumulator {
        let p = Int(partition)
        guard p < partitions[topicIndex].count, partitions[topicIndex][p] != nil else { return SpendAccumulator() }
        let taken = partitions[topicIndex][p]!.spend
        partitions[topicIndex][p]!.spend.removeAll()
        return taken
    }

    public func state(topicIndex: Int, partition: Int32) -> PartitionState? {
        let p = Int(partition)
        return p < partitions[topicIndex].count ? partitions[topicIndex][p] : nil
    }

    public var assigned: [(topicIndex: Int, state: PartitionState)] {
        partitions.enumerated().flatMap { t, list in list.compactMap { $0 }.map { (t, $0) } }
    }

    /// Sums `value` of every assigned partition's state, read in place. The counts the loop publishes
    /// several times a second go through here: `assigned` copies every state (a retain and a release of
    /// each of its tables), and `for case let s?` copies each one too.
    @inline(__always)
    private func sumAssigned(_ value: (borrowing PartitionState) -> Int) -> Int {
        var n = 0
        for t in partitions.indices {
            for p in partitions[t].indices where partitions[t][p] != nil { n += value(partitions[t][p]!) }
        }
        return n
    }

    public var assignedCount: Int { sumAssigned { _ in 1 } }

    /// Gives a partition up. With `handover`, its open windows and late buckets become additive partial
    /// rows (pending files) so that whoever consumes it next from the committed offset loses nothing;
    /// without it (shutdown, lost assignment), the state is just dropped here (the checkpoint holds it).
    @discardableResult
    public func release(topicIndex: Int, partition: Int32, handover: Bool) -> PartitionState? {
        guard var s = state(topicIndex: topicIndex, partition: partition) else { return nil }
        partitions[topicIndex][Int(partition)] = nil
        if handover {
            let name = writerName(topicIndex: topicIndex, partition: partition)
            for w in s.windows.takeAllPartial(offset: s.nextOffset) {
                pendingRows &+= w.rows.count
                pending.append((w, name))
            }
        }
        return s
    }

    // MARK: Events

    /// Processes one message. `messageTime` is the Kafka timestamp, used when the event has none.
    public func process(_ bytes: UnsafeRawBufferPointer, topicIndex: Int, partition: Int32, offset: Int64,
                        messageTime: EpochMillis?, wallNow: EpochMillis) -> Result {
        metrics.messages &+= 1
        let p = Int(partition)
        while partitions[topicIndex].count <= p { partitions[topicIndex].append(nil) }
        // One in-place access to the partition's state for the whole event: reading the optional element
        // (even to compare it with nil) would copy the state and retain and release each of its tables.
        let format = topicIndex < formats.count ? formats[topicIndex] : .json
        let (result, closed) = step(bytes, format: format, slot: &partitions[topicIndex][p], topicIndex: topicIndex,
                                    partition: partition, offset: offset, messageTime: messageTime, wallNow: wallNow)
        switch result {
        case .rejected(let r): metrics.rejected[r.code, default: 0] &+= 1
        case .duplicate: metrics.duplicates &+= 1
        case .late: metrics.lateEvents &+= 1
        case .counted: break
        }
        if !closed.isEmpty { enqueue(closed, topicIndex: topicIndex, partition: partition) }
        return result
    }

    @inline(__always)
    private func step(_ bytes: UnsafeRawBufferPointer, format: InputFormat, slot: inout PartitionState?, topicIndex: Int,
                      partition: Int32, offset: Int64, messageTime: EpochMillis?, wallNow: EpochMillis) -> (Result, [ClosedWindow]) {
        if case .none = slot {
            slot = freshState(topicIndex: topicIndex, partition: partition, nextOffset: offset, wallNow: wallNow)
        }
        return step(bytes, format: format, state: &slot!, offset: offset, messageTime: messageTime, wallNow: wallNow)
    }

    @inline(__always)
    private func step(_ bytes: UnsafeRawBufferPointer, format: InputFormat, state: inout PartitionState, offset: Int64,
                      messageTime: EpochMillis?, wallNow: EpochMillis) -> (Result, [ClosedWindow]) {
        state.nextOffset = offset &+ 1
        state.lastMessageWall = wallNow
        let overflowBefore = state.windows.overflowed
        let result = format.isTraces
            ? applyTraces(bytes, format: format, state: &state, messageTime: messageTime, wallNow: wallNow)
            : apply(bytes, state: &state, messageTime: messageTime, wallNow: wallNow)
        if state.windows.overflowed != overflowBefore { metrics.overflowEvents &+= 1 }
        return (result, state.windows.closeDue())
    }

    /// One trace message: unreadable, it is rejected whole (a dead letter, nothing of it counted); readable,
    /// each LLM span goes through `count` like a JSON event, and the message itself is `counted`. A span's
    /// own outcome (rejected, duplicate, late, or ignored for want of GenAI usage) is counted per span in
    /// `metrics`: the offset, the dead letter and the commit stay per message.
    private func applyTraces(_ bytes: UnsafeRawBufferPointer, format: InputFormat, state: inout PartitionState,
                             messageTime: EpochMillis?, wallNow: EpochMillis) -> Result {
        let traces = traces!
        if let reason = traces.check(bytes, format: format) { return .rejected(reason) }
        traces.forEachSpan(bytes, format: format) { span in
            switch span {
            case .ignored:
                metrics.spansIgnored &+= 1
            case .rejected(let reason):
                metrics.spansRejected[reason.code, default: 0] &+= 1
            case .event:
                metrics.llmSpans &+= 1
                let result = traces.events.withEvent { ev, scratch in
                    count(ev, scratch, state: &state, messageTime: messageTime, wallNow: wallNow)
                }
                switch result {
                case .rejected(let r): metrics.spansRejected[r.code, default: 0] &+= 1
                case .duplicate: metrics.duplicates &+= 1
                case .late: metrics.lateEvents &+= 1
                case .counted: break
                }
            }
        }
        return .counted
    }

    private func apply(_ bytes: UnsafeRawBufferPointer, state: inout PartitionState, messageTime: EpochMillis?,
                       wallNow: EpochMillis) -> Result {
        if let reason = decoder.decode(bytes) { return .rejected(reason) }
        // The event is read in place and its strings straight from the decoder's scratch bytes: copying
        // the event or taking the scratch array per string cost a retain and a release each time.
        return decoder.withEvent { ev, scratch in
            count(ev, scratch, state: &state, messageTime: messageTime, wallNow: wallNow)
        }
    }

    @inline(__always)
    private func count(_ ev: UnsafePointer<DecodedEvent>, _ scratch: UnsafeRawBufferPointer, state: inout PartitionState,
                       messageTime: EpochMillis?, wallNow: EpochMillis) -> Result {
        guard let time = ev.pointee.timestamp ?? messageTime else {
            return .rejected(RejectReason(.badTimestamp, "no timestamp in the event and none on the message"))
        }
        // An event time further ahead of the wall clock than `rollups.max_future` is bad input: one skewed
        // producer clock would otherwise push the partition's stream time ahead, close every window early and
        // make all later events late until the clock caught up. Replays (no wall clock) keep any time.
        if wallNow > 0 && time > wallNow &+ maxFutureMillis {
            return .rejected(RejectReason(.badTimestamp, "event time \(RFC3339.format(time, fraction: true)) is more than rollups.max_future (\(rollups.maxFuture.label)) ahead of the clock (\(RFC3339.format(wallNow)))"))
        }
        if state.windows.isTooLate(time) {
            return .rejected(RejectReason(.tooLate, "event time \(RFC3339.format(time, fraction: true)) is older than rollups.late_horizon (\(rollups.lateHorizon)) behind the partition's stream time \(RFC3339.format(state.windows.streamTime, fraction: true))"))
        }
        // The de-duplication set and the windows' tables of a busy partition are far larger than the
        // caches. Their loads start as soon as their keys are known and are used as late as the order of
        // the work allows: the id's slot loads while the names are looked up (names of a duplicate are
        // looked up too: they are its original's), the first row's index slots while the id is inserted,
        // the call priced and the alert rules run.
        let idHash = ev.pointee.id.isAbsent ? nil : Optional(StringTable.hash(ev.pointee.id.bytes(in: scratch)))
        if let idHash { state.dedup.prefetch(idHash) }
        let workflow = intern(ev.pointee.workflow, scratch)
        let owner = intern(ev.pointee.owner, scratch)
        let provider = ev.pointee.provider.isAbsent ? SeriesKey.none : intern(ev.pointee.provider, scratch)
        let tags = tagTuple(ev, scratch)
        let isError = ev.pointee.isError
        let isUsage = ev.pointee.kind != .outcome
        var firstModel = SeriesKey.none, firstHash: UInt64 = 0
        if isUsage && ev.pointee.contributions.count > 0 {
            let m = ev.pointee.contributions[0].model
            firstModel = m.isAbsent ? SeriesKey.none : intern(m, scratch)
            firstHash = SeriesKey(workflow: workflow, owner: owner, model: firstModel, provider: provider, tags: tags).rowHash
            state.windows.prefetch(hash: firstHash, time: time)
        }
        if let idHash, !state.dedup.insert(idHash, time: time, streamTime: state.windows.streamTime) { return .duplicate }
        // The name-table closures below capture the pipeline `unowned(unsafe)`: they run only inside these
        // calls, while the pipeline is busy in this one, and a strong capture cost a retain and a release of
        // it (atomic) at every rule the event reached.
        var late = false
        if !isUsage {
            metrics.outcomeEvents &+= 1
            let name = ev.pointee.outcome.isAbsent ? dimensions.names.intern("outcome") : intern(ev.pointee.outcome, scratch)
            let key = SeriesKey(workflow: workflow, owner: owner, model: SeriesKey.none, provider: SeriesKey.none, tags: tags)
            let count = ev.pointee.outcomeCount, value = ev.pointee.outcomeValue
            let r = state.windows.add(key: key, time: time) { $0.addOutcome(name: name, count: count, value: value) }
            spendSeries.addOutcome(key, count: count) { [unowned(unsafe) self] in self.dimensions }
            if spendMode {
                state.spend.addOutcome(workflow: workflow, owner: owner, outcome: name, count: count, time: time)
            } else {
                alerts.recordOutcome(workflow: workflow, owner: owner, outcome: name, count: count, time: time,
                                     names: { [unowned(unsafe) self] in self.dimensions.names })
            }
            return r == .late ? .late : .counted
        }
        metrics.usageEvents &+= 1
        let tier = ev.pointee.serviceTier.isAbsent ? prices.standardKey : prices.tierKey(utf8: ev.pointee.serviceTier.bytes(in: scratch))
        let costOverride = ev.pointee.costOverride
        // A usage block no row reads: its tokens are unknown, so is its cost (unless the producer gave it).
        let unrecognized = !ev.pointee.unrecognizedUsage.isAbsent
        for i in 0..<ev.pointee.contributions.count {
            let c = ev.pointee.contributions[i]
            let model = i == 0 ? firstModel : c.model.isAbsent ? SeriesKey.none : intern(c.model, scratch)
            let key = SeriesKey(workflow: workflow, owner: owner, model: model, provider: provider, tags: tags)
            // The windows look this key up after pricing and the rules: the first call's index slots are
            // already loading, the others' start now (see `PartitionWindows.prefetch`).
            let hash = i == 0 ? firstHash : key.rowHash
            if i > 0 { state.windows.prefetch(hash: hash, time: time) }
            var cost: Money?
            if let override = costOverride {
                // The producer's cost is the whole event's: it goes to the first billed call.
                cost = i == 0 ? override : .zero
            } else if unrecognized {
                cost = nil
            } else if model != SeriesKey.none {
                cost = price(c.tokens, model: model, provider: provider, at: time, tier: tier)
            }
            if cost == nil { metrics.unpricedRequests &+= 1 }
            let tokens = c.tokens
            // The windows, the spend series and the alert rules keep separate state, so the order among
            // them is free: the windows come last, their index slots having loaded meanwhile.
            spendSeries.addUsage(key, tokens, cost: cost, isError: isError) { [unowned(unsafe) self] in self.dimensions }
            if unrecognized {
                metrics.unrecognizedUsage &+= 1
                let keys = ev.pointee.unrecognizedUsage
                if spendMode {
                    let note = keys.count > 0 ? intern(keys, scratch) : SeriesKey.none
                    state.spend.addUnrecognized(workflow: workflow, owner: owner, model: model, keys: note, time: time)
                } else {
                    alerts.recordUnrecognized(workflow: workflow, owner: owner, model: model,
                                              keys: { String(decoding: keys.bytes(in: scratch), as: UTF8.self) },
                                              requests: 1, time: time, names: { [unowned(unsafe) self] in self.dimensions.names })
                }
            }
            // An unrecognized block's unknown cost is not an unpriced model: only a producer's own cost
            // reaches the rules.
            if !unrecognized || cost != nil {
                if spendMode {
                    state.spend.addUsage(workflow: workflow, owner: owner, model: model, cost: cost, requests: 1, time: time)
                } else {
                    alerts.recordUsage(workflow: workflow, owner: owner, model: model, cost: cost, requests: 1, time: time,
                                       names: { [unowned(unsafe) self] in self.dimensions.names })
                }
            }
            if state.windows.add(key: key, hash: hash, time: time, { $0.addUsage(tokens, cost: cost, isError: isError) }) == .late {
                late = true
            }
        }
        return late ? .late : .counted
    }

    @inline(__always)
    private func intern(_ s: ScratchString, _ scratch: UnsafeRawBufferPointer) -> UInt32 {
        dimensions.names.intern(s.bytes(in: scratch))
    }

    private func tagTuple(_ ev: UnsafePointer<DecodedEvent>, _ scratch: UnsafeRawBufferPointer) -> UInt32 {
        if tagNameBytes.isEmpty || ev.pointee.tags.isEmpty { return Dimensions.noTags }
        var found = false
        for i in tagScratch.indices { tagScratch[i] = SeriesKey.none }
        for k in 0..<ev.pointee.tags.count {
            let t = ev.pointee.tags[k]
            if let j = tagIndex(t.name.bytes(in: scratch)) { tagScratch[j] = intern(t.value, scratch); found = true }
        }
        if !found { return Dimensions.noTags }
        return dimensions.internTags(UnsafeBufferPointer(tagScratch))
    }

    @inline(__always)
    private func tagIndex(_ bytes: UnsafeRawBufferPointer) -> Int? {
        for j in 0..<tagNameBytes.count where tagNameBytes[j].count == bytes.count {
            if bytes.count == 0 || tagNameBytes[j].withUnsafeBytes({ memcmpBytes($0.baseAddress!, bytes.baseAddress!, bytes.count) }) {
                return j
            }
        }
        return nil
    }

    @inline(__always)
    private func price(_ tokens: TokenCounts, model: UInt32, provider: UInt32, at time: EpochMillis,
                       tier: ServiceTierKey) -> Money? {
        if let cached = priceCache.cost(model: model, provider: provider, of: tokens, at: time, tier: tier) { return cached }
        let c = prices.candidates(model: dimensions.names[model], provider: dimensions.name(provider))
        priceCache.set(c, model: model, provider: provider)
        return c.cost(of: tokens, at: time, tier: tier)
    }

    /// New prices (a reload) apply from the next event on; open rows keep what they were priced at.
    public func replacePrices(_ entries: [PriceEntry]) {
        prices = PriceTable(entries)
        priceCache = PriceCache()
    }

    // MARK: Closing and writing

    private func enqueue(_ closed: [ClosedWindow], topicIndex: Int, partition: Int32) {
        let name = writerName(topicIndex: topicIndex, partition: partition)
        for w in closed {
            if case .final = w.kind { metrics.windowsClosed &+= 1 }
            pendingRows &+= w.rows.count
            pending.append((w, name))
        }
    }

    /// Forgets closed windows not yet written for these writers (partitions whose assignment was lost).
    public func dropPending(writers: Set<String>) {
        pending.removeAll { writers.contains($0.writer) }
        pendingRows = pending.reduce(0) { $0 + $1.window.rows.count }
    }

    /// The wall-clock close of partitions that have been quiet for `rollups.idle_close`.
    ///
    /// `hasBacklog(topicIndex, partition, nextOffset)` tells a partition that is quiet from one that is
    /// only waiting its turn: after a restart or a pause, a partition's messages can sit behind other
    /// partitions' for longer than `idle_close`. Closing its windows by the wall clock then would be
    /// wrong twice over: its remaining events would all become late rows, and the files would depend on
    /// timing instead of on the input (a replay from a checkpoint must write the same files).
    /// The backlog is believed for `backlogPatience(idle)` past `idle_close` at most: offsets that never
    /// arrive as messages (transaction markers of a transactional producer) must not keep a partition's
    /// windows open for ever.
    public func closeIdle(wallNow: EpochMillis, hasBacklog: (Int, Int32, Int64) -> Bool = { _, _, _ in false }) {
        let idle = rollups.idleClose.millis
        let patience = Pipeline.backlogPatience(idle)
        for t in partitions.indices {
            for p in partitions[t].indices where partitions[t][p] != nil {
                let quiet = wallNow &- partitions[t][p]!.lastMessageWall
                guard quiet >= idle else { continue }
                if quiet < idle &+ patience && hasBacklog(t, Int32(p), partitions[t][p]!.nextOffset) { continue }
                let next = partitions[t][p]!.nextOffset
                // Late rows flushed now are named by the offset, not the wall-clock watermark (see `lateIdle`).
                let closed = partitions[t][p]!.windows.advanceIdle(wallNow: wallNow).map { w -> ClosedWindow in
                    guard case .late = w.kind else { return w }
                    var named = w
                    named.kind = .lateIdle(offset: next)
                    return named
                }
                if !closed.isEmpty { enqueue(closed, topicIndex: t, partition: Int32(p)) }
            }
        }
    }

    /// How long past `idle_close` a partition with a backlog waits for its messages before it is closed
    /// by the wall clock anyway: the longer of `idle_close` and a minute.
    public static func backlogPatience(_ idleMillis: Int64) -> Int64 { max(idleMillis, 60_000) }

    /// End of input (replay): closes everything.
    public func closeAll() {
        for t in partitions.indices {
            for p in partitions[t].indices where partitions[t][p] != nil {
                let closed = partitions[t][p]!.windows.closeAll()
                if !closed.isEmpty { enqueue(closed, topicIndex: t, partition: Int32(p)) }
            }
        }
    }

    /// Writes pending windows as one `DurableBatch` (temporary files, flushed, renamed, folders
    /// fsynced). Only after that are they taken off `pending`: on failure everything stays for the next
    /// try (rewriting a file that did land is harmless, it gets the same content).
    public func writePending() throws(FileError) {
        guard !pending.isEmpty else { return }
        // Names interned since the last batch take their place in the table's order once per batch, so
        // each file's rows sort by integer ranks (see `RollupEncoder.rowOrder`).
        dimensions.names.updateOrder()
        let batch = DurableBatch()
        for p in pending {
            try writer.stage(p.window, writer: p.writer, dimensions: dimensions, in: batch, buffer: &encodeBuffer)
        }
        try batch.commit()
        metrics.filesWritten &+= Int64(pending.count)
        pending.removeAll(keepingCapacity: true)
        pendingRows = 0
    }

    // MARK: Checkpoint

    /// The checkpoint of every assigned partition, plus `unassigned` states this process still holds
    /// (restored at start, not yet handed out by Kafka): dropping those would lose their open windows.
    /// `includeAssigned: false` (changelog mode, where the changelog holds them) leaves the assigned ones out.
    /// `includeDedup: false` leaves de-duplication ids out (the daemon saves each once, elsewhere).
    public func checkpointBytes(unassigned: [PartitionState] = [], includeAssigned: Bool = true,
                                sequence: UInt64 = 0, includeDedup: Bool = true) -> [UInt8] {
        record(((includeAssigned ? assigned.map(\.state) : []) + unassigned).map { ($0, .whole) },
               sequence: sequence, base: 0, includeDedup: includeDedup)
    }

    /// A checkpoint record (see `Checkpoint`) of the assigned partitions (unless `includeAssigned` is false)
    /// and `unassigned`, each written as `entry` says; `base` 0 makes it a base (every entry must be `.whole`).
    public func checkpointRecord(unassigned: [PartitionState], includeAssigned: Bool, sequence: UInt64, base: UInt64,
                                 entry: (PartitionState) -> Checkpoint.Entry) -> [UInt8] {
        let states = (includeAssigned ? assigned.map(\.state) : []) + unassigned
        return record(states.map { ($0, entry($0)) }, sequence: sequence, base: base, includeDedup: false)
    }

    /// A checkpoint record of `parts` with the alert engine's state, encoded in the kept buffers.
    private func record(_ parts: [(state: PartitionState, entry: Checkpoint.Entry)], sequence: UInt64, base: UInt64,
                        includeDedup: Bool) -> [UInt8] {
        var alertState = BinaryWriter()
        alerts.encodeState(into: &alertState, names: dimensions.names)
        return Checkpoint.encode(parts, dimensions: dimensions, alertState: alertState.bytes, sequence: sequence,
                                 base: base, includeDedup: includeDedup, buffers: &checkpointBuffers)
    }

    /// Reads one checkpoint record as stored, its names interned (see `Checkpoint.Chain` for putting a base
    /// and its deltas together, and `restoreCheckpoint` for the result).
    public func parseCheckpoint(_ bytes: [UInt8]) throws -> Checkpoint.Parsed {
        try Checkpoint.parse(bytes, dimensions: &dimensions)
    }

    /// A base with its deltas applied, fitted to the configuration (see `decodeCheckpoint`).
    public func restoreCheckpoint(_ chain: Checkpoint.Chain, restoreAlerts: Bool) throws -> Checkpoint.Restored {
        let r = Checkpoint.fit(chain, dimensions: &dimensions, makeWindows: emptyWindows, dedupWindow: dedupSettings.window.millis)
        if restoreAlerts && !r.alertState.isEmpty {
            var reader = BinaryReader(r.alertState)
            try alerts.decodeState(from: &reader, names: &dimensions.names)
        }
        return r
    }

    /// Every assigned partition's de-duplication ids and open rows are saved now (see `DedupSet.unsaved`,
    /// `RowTable.unsavedRows`): later checkpoints write what comes after.
    public func markSaved() {
        for t in partitions.indices {
            for p in partitions[t].indices where partitions[t][p] != nil { partitions[t][p]!.markSaved() }
        }
    }

    /// One assigned partition's ids and rows are saved now.
    public func markSaved(topicIndex: Int, partition: Int32) {
        let p = Int(partition)
        if p < partitions[topicIndex].count, partitions[topicIndex][p] != nil { partitions[topicIndex][p]!.markSaved() }
    }

    /// Decodes a checkpoint into partition states (not yet assigned: the caller assigns them as Kafka
    /// hands the partitions over).
    /// With `restoreAlerts`, the alert engine's totals and published crossings come back too (at start;
    /// not when only partitions are re-read after a lost assignment).
    public func decodeCheckpoint(_ bytes: [UInt8], restoreAlerts: Bool) throws -> Checkpoint.Restored {
        try restoreCheckpoint(try Checkpoint.Chain(base: try parseCheckpoint(bytes)), restoreAlerts: restoreAlerts)
    }

    public var openRowCount: Int { sumAssigned { $0.windows.openRowCount } }

    /// Open windows of the assigned partitions.
    public var openWindowCount: Int { sumAssigned { s in s.windows.open.reduce(0) { $0 + $1.count } } }

    /// De-duplication ids held by the assigned partitions.
    public var dedupIdCount: Int { sumAssigned { $0.dedup.count } }

    // MARK: Memory

    /// About what one open row (a key in an open window or late bucket) costs in memory, measured with
    /// `tokenmeter bench --cardinality`, and one de-duplication id (a 64-bit hash, its event time and the
    /// table's slack).
    public static let bytesPerOpenRow = 215
    public static let bytesPerDedupId = 50

    /// The memory model of the state: open rows, dedup ids and interned names of the assigned partitions,
    /// plus those of `held` states (restored, not yet assigned). What `state.max_memory` is compared with.
    public func estimatedStateBytes(held: [PartitionState] = []) -> Int {
        var rows = openRowCount, ids = dedupIdCount
        for s in held { rows += s.windows.openRowCount; ids += s.dedup.count }
        return rows * Pipeline.bytesPerOpenRow + ids * Pipeline.bytesPerDedupId + internedBytes
            + checkpointBuffers.retainedBytes
    }

    /// The memory checkpoint records are encoded in, kept from one to the next (see `Checkpoint.Buffers`);
    /// counted in `estimatedStateBytes`.
    @exclusivity(unchecked) private var checkpointBuffers = Checkpoint.Buffers()

    /// Lets go of the kept checkpoint memory (the next checkpoint allocates afresh): for a daemon paused
    /// over `state.max_memory`, where memory counts more than the next checkpoint's speed.
    public func releaseCheckpointMemory() {
        checkpointBuffers = Checkpoint.Buffers()
    }

    // MARK: Names

    /// Names are interned once and looked up by id on the hot path; ids live in open rows, late buckets,
    /// alert state and caches, so a name cannot be dropped the moment its last row is written. Instead the
    /// table is rebuilt now and then from what is still in use (`compactNames`): a stream of new workflow
    /// or tag values, each seen once, costs memory until the next compaction, not for the daemon's life.
    public var internedNames: Int { dimensions.names.count }
    public var internedBytes: Int { dimensions.names.approximateBytes }

    /// Whether the table has grown enough since the last compaction to be worth rebuilding: twice the names
    /// it kept then, and at least `minimumToCompact`.
    public var namesDueForCompaction: Bool {
        internedNames >= max(2 * namesAfterCompaction, Pipeline.minimumToCompact)
    }

    public static let minimumToCompact = 50_000
    @exclusivity(unchecked) private var namesAfterCompaction = 0

    /// Rebuilds the name table with only the names that the partitions' open rows and late buckets (the
    /// assigned ones and `held`, states this process keeps for partitions not assigned yet) and the alert
    /// engine still use, by the same encoding the checkpoint uses: every name goes out as text and comes
    /// back under a new id, so no holder can keep a stale id. Dedup memory (hashes, not names) is moved
    /// aside and back, not copied. Spike keys idle for many windows and unpriced-model days older than the
    /// alert ring are dropped on the way, as a restart from a checkpoint would.
    ///
    /// Only between checkpoints' steps: closed windows must be written (`pending` empty) and spend-mode
    /// sums taken; otherwise nothing happens and nil is returned. Returns the name counts before and after.
    public func compactNames(held: inout [PartitionState]) -> (before: Int, after: Int)? {
        guard pending.isEmpty else { return nil }
        var live = assigned
        guard live.allSatisfy({ $0.state.spend.isEmpty }), held.allSatisfy({ $0.spend.isEmpty }) else { return nil }
        let before = internedNames
        // Dedup sets and wall-clock marks are not names: keep them out of the round trip.
        var dedups: [DedupSet] = []
        var walls: [EpochMillis] = []
        func strip(_ s: inout PartitionState) {
            dedups.append(s.dedup)
            walls.append(s.lastMessageWall)
            s.dedup = DedupSet(window: dedupSettings.window.millis)
        }
        for i in live.indices { strip(&live[i].state) }
        for i in held.indices { strip(&held[i]) }
        alerts.forgetIdleState()
        let bytes = record((live.map(\.state) + held).map { ($0, .whole) }, sequence: 0, base: 0, includeDedup: true)

        var fresh = Dimensions(tagNames: rollups.tags)
        // The overflow row's key was interned first at start; it keeps its id.
        let overflow = fresh.names.intern("__overflow__")
        precondition(overflow == overflowKey.workflow, "the overflow name must keep its id")
        let restored: Checkpoint.Restored
        do {
            restored = try Checkpoint.decode(bytes, dimensions: &fresh, makeWindows: emptyWindows,
                                             dedupWindow: dedupSettings.window.millis)
            var reader = BinaryReader(restored.alertState)
            try alerts.decodeState(from: &reader, names: &fresh.names)
        } catch {
            // Our own encoding read back at once: failing here is a bug, not an input problem.
            preconditionFailure("name compaction could not read its own encoding: \(error)")
        }
        var states = restored.partitions
        for i in states.indices {
            states[i].dedup = dedups[i]
            states[i].lastMessageWall = walls[i]
        }
        dimensions = fresh
        spendSeries.forgetKeys()
        priceCache = PriceCache()
        for (i, entry) in live.enumerated() { assign(states[i], topicIndex: entry.topicIndex) }
        held = Array(states[live.count...])
        namesAfterCompaction = internedNames
        metrics.nameCompactions &+= 1
        return (before, internedNames)
    }
}
