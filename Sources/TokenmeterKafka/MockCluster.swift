import Crdkafka

/// librdkafka's in-process mock Kafka cluster: real Kafka protocol over loopback TCP, for development and tests.
///
/// `@unchecked Sendable`: every mock function posts an op to the cluster's own thread and waits for it,
/// so any thread may call them; the handles are immutable after init.
public final class MockCluster: @unchecked Sendable {
    /// What clients put in `bootstrap.servers`: the forwarder's address when a fixed port was asked for.
    public let bootstrapServers: String
    /// The brokers' own ephemeral addresses, as they advertise themselves in metadata.
    public let brokerAddresses: String
    public let brokerCount: Int

    private let handle: OpaquePointer
    private let cluster: OpaquePointer
    private let forwarder: LoopbackForwarder?

    /// Starts `brokers` brokers with ids 1...brokers.
    ///
    /// librdkafka 2.0.2 always binds mock brokers to ephemeral ports (there is no port setting), so a
    /// `port` other than 0 starts a loopback TCP forwarder on it that relays to broker 1. Only the
    /// bootstrap connection uses it: the brokers advertise their real ports in metadata and clients
    /// connect there directly afterwards.
    public init(brokers: Int = 1, port: UInt16 = 0, file: String = #fileID, line: Int = #line) throws {
        guard brokers >= 1 else {
            throw KafkaError(code: KafkaError.invalidArgument, reason: "a mock cluster needs at least one broker", file: file, line: line)
        }
        let conf = rd_kafka_conf_new()!
        // The cluster's host client never talks to anything; keep its logs out of the way.
        _ = try? KafkaProperties.set(conf, "log_level", "3", file: file, line: line)
        let rk = try KafkaClientFactory.make(.producer, conf: conf, what: "mock host client", file: file, line: line)
        guard let mc = rd_kafka_mock_cluster_new(rk, Int32(brokers)) else {
            rd_kafka_destroy(rk)
            throw KafkaError(code: KafkaError.invalidArgument, reason: "cannot create mock cluster (see librdkafka log)", file: file, line: line)
        }
        let addresses = String(cString: rd_kafka_mock_cluster_bootstraps(mc))
        var forwarder: LoopbackForwarder? = nil
        if port != 0 {
            let first = addresses.split(separator: ",").first.map(String.init) ?? addresses
            guard let colon = first.lastIndex(of: ":"), let target = UInt16(first[first.index(after: colon)...]) else {
                rd_kafka_mock_cluster_destroy(mc)
                rd_kafka_destroy(rk)
                throw KafkaError(code: KafkaError.invalidArgument, reason: "unexpected mock bootstrap '\(addresses)'", file: file, line: line)
            }
            do {
                forwarder = try LoopbackForwarder(listenPort: port, targetPort: target)
            } catch {
                rd_kafka_mock_cluster_destroy(mc)
                rd_kafka_destroy(rk)
                throw error
            }
        }
        self.handle = rk
        self.cluster = mc
        self.brokerAddresses = addresses
        self.brokerCount = brokers
        self.forwarder = forwarder
        self.bootstrapServers = forwarder.map { "127.0.0.1:\($0.port)" } ?? addresses
    }

    deinit {
        forwarder?.stop()
        // librdkafka asserts every mock cluster is destroyed before its host rd_kafka_t.
        rd_kafka_mock_cluster_destroy(cluster)
        rd_kafka_destroy(handle)
    }

    /// Creates a topic; without this the mock auto-creates topics on first use with 4 partitions.
    public func createTopic(_ name: String, partitions: Int32, replicationFactor: Int32 = 1,
                            file: String = #fileID, line: Int = #line) throws {
        try check(rd_kafka_mock_topic_create(cluster, name, partitions, replicationFactor), "create topic '\(name)'", file, line)
    }

    /// Closes the broker's connections and refuses new ones until `setBrokerUp`.
    public func setBrokerDown(_ id: Int32, file: String = #fileID, line: Int = #line) throws {
        try check(rd_kafka_mock_broker_set_down(cluster, id), "broker \(id) down", file, line)
    }

    public func setBrokerUp(_ id: Int32, file: String = #fileID, line: Int = #line) throws {
        try check(rd_kafka_mock_broker_set_up(cluster, id), "broker \(id) up", file, line)
    }

    /// Makes broker `id` the leader of a partition (tests: put one topic on a broker that can fail alone).
    public func setPartitionLeader(topic: String, partition: Int32, broker id: Int32,
                                   file: String = #fileID, line: Int = #line) throws {
        try check(rd_kafka_mock_partition_set_leader(cluster, topic, partition, id),
                  "leader of \(topic)[\(partition)] = broker \(id)", file, line)
    }

    /// Makes broker `id` the coordinator of `key` (`keyType` "group" or "transaction").
    public func setCoordinator(keyType: String, key: String, broker id: Int32,
                               file: String = #fileID, line: Int = #line) throws {
        try check(rd_kafka_mock_coordinator_set(cluster, keyType, key, id), "\(keyType) coordinator of \(key) = broker \(id)", file, line)
    }

    /// Adds `ms` of latency to every response from broker `id`.
    public func setRTT(_ id: Int32, ms: Int32, file: String = #fileID, line: Int = #line) throws {
        try check(rd_kafka_mock_broker_set_rtt(cluster, id, ms), "broker \(id) rtt", file, line)
    }

    /// Makes the next `errors.count` requests of Kafka API `apiKey` (e.g. 8 OffsetCommit, 12 Heartbeat)
    /// fail with these raw error codes, in order, on whichever broker receives them.
    public func pushRequestErrors(apiKey: Int16, errors: [Int32]) {
        let codes = errors.map { rd_kafka_resp_err_t(rawValue: $0) }
        codes.withUnsafeBufferPointer {
            rd_kafka_mock_push_request_errors_array(cluster, apiKey, $0.count, $0.baseAddress)
        }
    }

    public func clearRequestErrors(apiKey: Int16) {
        rd_kafka_mock_clear_request_errors(cluster, apiKey)
    }

    private func check(_ err: rd_kafka_resp_err_t, _ what: String, _ file: String, _ line: Int) throws {
        if err != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw KafkaError(err, "\(what): \(String(cString: rd_kafka_err2str(err)))", file: file, line: line)
        }
    }
}
