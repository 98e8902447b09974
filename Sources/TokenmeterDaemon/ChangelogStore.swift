import Logging
import TokenmeterCore
import TokenmeterKafka

/// The changelog topic: where every usage partition's state (and every alert shard's) is kept
/// in Kafka, so that whichever instance is given a partition continues it from there. Kafka Streams'
/// changelog: the newest record of a key is what counts, and compaction keeps only that.
///
/// Keys are `<group>/<topic>/<partition>` (a base: offsets, open windows, late buckets),
/// `<group>/<topic>/<partition>/rows/<n>` (a delta: what changed since the record before, see `ChangelogRecord`),
/// `<group>/<topic>/<partition>/ids/<n>` (de-duplication ids, each written once, see `DedupChunk`) and
/// `<group>/spend/<shard>`; a partition's keys always go to the same changelog partition (its partition
/// number modulo the changelog's partition count), so a restore reads one partition. Among a partition's
/// chains (a base and its deltas), the one whose last record has the highest source offset wins (ties: the
/// later base); a shard's record with the highest offset wins; an id chunk's or a delta's newest record
/// wins, an empty one (a tombstone) deletes it.
///
/// Its own idempotent producer (no gaps, no reordering, `message.timeout.ms=0`: a record is retried
/// through an outage, never dropped) also sends the spend deltas: "flushed" then means both are acked.
final class ChangelogStore {
    let topic: String
    let producer: any MessageProducer
    private let reader: any PartitionReader
    private let log: Logger
    private let clock: any DaemonClock
    private var partitionCount: Int?
    private var token: UInt64 = 0
    /// A record or delta the broker refused for good (a fatal idempotence error): the daemon cannot
    /// promise its order any more and must restart (it then resumes from what the changelog holds).
    private(set) var deliveryFailed: KafkaError?
    private(set) var recordsWritten: Int64 = 0
    private(set) var bytesWritten: Int64 = 0
    /// Bytes of the records scanned by restores (`newest`).
    private(set) var bytesRead: Int64 = 0

    /// `<group id>/`: keys of several groups sharing a changelog topic never meet.
    let keyPrefix: String

    init(topic: String, group: String, properties base: [(String, String)], clients: any KafkaClients,
         log: Logger, clock: any DaemonClock) throws {
        self.topic = topic
        self.keyPrefix = group + "/"
        self.log = log
        self.clock = clock
        // Records are whole partition states: allow large messages (the broker's topic needs
        // `max.message.bytes` to match; see docs/scale-out.md, Topics).
        producer = try clients.producer(properties: base + [("enable.idempotence", "true"), ("message.timeout.ms", "0"),
                                                         ("linger.ms", "5"), ("message.max.bytes", "67108864"),
                                                         ("compression.codec", "lz4")])
        reader = try clients.reader(properties: base + [("receive.message.max.bytes", "200000000")])
        producer.onDelivery = { [unowned self] _, error in
            if let error, self.deliveryFailed == nil {
                self.deliveryFailed = error
                self.log.critical("changelog or spend record not delivered", metadata: ["error": "\(error)"])
            }
        }
    }

    /// The changelog's partition count, read once from the broker.
    func partitions() throws -> Int {
        if let n = partitionCount { return n }
        let n = try reader.partitionCount(topic: topic, timeoutMs: 10_000)
        guard n > 0 else { throw DaemonError("changelog topic \(topic) has no partitions") }
        partitionCount = n
        return n
    }

    /// Another topic's partition count (the spend topic's, for the number of alert shards).
    func partitionCount(of topic: String) throws -> Int {
        let n = try reader.partitionCount(topic: topic, timeoutMs: 10_000)
        guard n > 0 else { throw DaemonError("topic \(topic) has no partitions") }
        return n
    }

    func partition(forNumber n: Int32) throws -> Int32 { Int32(Int(n) % (try partitions())) }

    /// Queues one record (not yet acknowledged: see `flush`).
    func produce(key: String, partitionNumber: Int32, record: ChangelogRecord) throws {
        try produce(key: key, partitionNumber: partitionNumber, value: record.encode())
    }

    /// Queues a record's bytes; an empty value is a tombstone (a null value: compaction deletes the key).
    func produce(key: String, partitionNumber: Int32, value: [UInt8]) throws {
        let partition = try partition(forNumber: partitionNumber)
        token &+= 1
        try Array((keyPrefix + key).utf8).withUnsafeBytes { k in
            if value.isEmpty {
                try producer.produce(topic: topic, key: k, value: UnsafeRawBufferPointer(start: nil, count: 0), partition: partition, token: token)
                return
            }
            try value.withUnsafeBytes { v in
                try producer.produce(topic: topic, key: k, value: v, partition: partition, token: token)
            }
        }
        recordsWritten += 1
        bytesWritten += Int64(value.count)
    }

    /// True once everything queued (records and deltas) is acknowledged.
    func flush(timeoutMs: Int32) -> Bool {
        producer.outstanding == 0 || producer.flush(timeoutMs: timeoutMs)
    }

    /// The partition key and number of a key `<partition key><infix><n>` (an id chunk's, a delta's), nil
    /// for other keys. Topic names hold no `/`, so a partition's own key never looks like one of these.
    static func owner(_ name: String, infix: String) -> (key: String, number: UInt64)? {
        guard let slash = name.lastIndex(of: "/"), name.index(after: slash) < name.endIndex,
              let n = UInt64(name[name.index(after: slash)...]) else { return nil }
        let head = name[..<slash]
        let tail = infix.dropLast()
        guard head.hasSuffix(tail) else { return nil }
        return (String(head.dropLast(tail.count)), n)
    }

    /// The partition key of an id chunk's key (`<key>/ids/<n>`), nil for other keys.
    static func idChunkOwner(_ name: String) -> String? { owner(name, infix: DedupChunk.keyInfix)?.key }

    /// Of a partition's bases (in the order read) and deltas (by sequence number), the chain to restore:
    /// the one whose last record has the highest source offset (ties: the later base), with its deltas in
    /// order (from the base's sequence on, each naming that base and chain, without a gap). Deltas of other
    /// chains are returned as stale.
    static func chain(bases: [ChangelogRecord], deltas: [UInt64: ChangelogRecord]) -> ChangelogRecord? {
        var best: ChangelogRecord?
        var bestOffset = Int64.min
        for b in bases {
            var chain = b
            // A shard's record or a version-1 base has no deltas.
            let baseSequence = b.chain == 0 ? 0 : Checkpoint.sequences(b.state)?.sequence ?? 0
            var next = baseSequence + 1
            while baseSequence > 0, let d = deltas[next], d.chain == b.chain,
                  let (sequence, base) = Checkpoint.sequences(d.state), sequence == next, base == baseSequence {
                chain.deltas.append(d)
                next += 1
            }
            if chain.head.nextOffset >= bestOffset {
                bestOffset = chain.head.nextOffset
                best = chain
            }
        }
        guard var best else { return nil }
        let used = Set(best.deltas.compactMap { Checkpoint.sequences($0.state)?.sequence })
        best.staleDeltas = deltas.keys.filter { !used.contains($0) }.sorted()
        return best
    }

    /// The newest state of each key (keys grouped by their changelog partition; each partition is read
    /// from its first offset to its end): the base of the chain chosen by `chain`, its deltas in `deltas`,
    /// and the key's live id chunks in `idChunks`, oldest first. Keys without a record are absent.
    func newest(_ keys: [(key: String, partitionNumber: Int32)], timeoutMs: Int32) throws -> [String: ChangelogRecord] {
        guard !keys.isEmpty else { return [:] }
        var wanted = Set<String>()
        var parts = Set<Int32>()
        for k in keys { wanted.insert(keyPrefix + k.key); parts.insert(try partition(forNumber: k.partitionNumber)) }
        /// Per partition key, its bases in the order read (an uncompacted topic holds several).
        var bases: [String: [[UInt8]]] = [:]
        /// Per partition key, per id chunk key, the chunk's newest bytes (empty: deleted); the same for deltas.
        var chunks: [String: [String: [UInt8]]] = [:]
        var deltaBytes: [String: [UInt64: [UInt8]]] = [:]
        let t0 = clock.monotonicMillis()
        var seen = 0
        try reader.readAll(parts.sorted().map { TopicPartition(topic: topic, partition: $0) }, timeoutMs: timeoutMs) { _, key, value, _ in
            seen += 1
            bytesRead += Int64(value.count + (key?.count ?? 0))
            guard let key, let name = String(validating: key.bindMemory(to: UInt8.self), as: UTF8.self) else { return }
            if let owner = Self.idChunkOwner(name), wanted.contains(owner) {
                chunks[owner, default: [:]][name] = Array(value)
                return
            }
            if let (owner, n) = Self.owner(name, infix: ChangelogRecord.deltaInfix), wanted.contains(owner) {
                deltaBytes[owner, default: [:]][n] = Array(value)
                return
            }
            guard wanted.contains(name), ChangelogRecord.nextOffset(value) != nil else { return }
            bases[name, default: []].append(Array(value))
        }
        var out: [String: ChangelogRecord] = [:]
        var idCount = 0, deltaCount = 0
        for (k, versions) in bases {
            var deltas: [UInt64: ChangelogRecord] = [:]
            for (n, value) in deltaBytes[k] ?? [:] where !value.isEmpty { deltas[n] = try ChangelogRecord.decode(value) }
            guard var record = Self.chain(bases: try versions.map { try ChangelogRecord.decode($0) }, deltas: deltas) else { continue }
            for value in (chunks[k] ?? [:]).values where !value.isEmpty {
                record.idChunks.append(try DedupChunk.decode(value))
            }
            record.idChunks.sort { $0.sequence < $1.sequence }
            idCount += record.idChunks.reduce(0) { $0 + $1.ids.count }
            deltaCount += record.deltas.count
            out[String(k.dropFirst(keyPrefix.count))] = record
        }
        log.info("changelog read", metadata: ["keys": "\(keys.count)", "found": "\(out.count)", "records_scanned": "\(seen)", "ids": "\(idCount)",
                                              "deltas": "\(deltaCount)", "partitions": "\(parts.count)", "ms": "\(clock.monotonicMillis() - t0)"])
        return out
    }
}
