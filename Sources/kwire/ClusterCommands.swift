// kwire metadata, kwire offsets, kwire api-versions: what the cluster looks like.
import ArgumentParser
import KafkaWire

/// Runs `body` with an admin client and closes it afterwards, whatever happened.
func withAdmin<T>(_ config: ClientConfig, _ body: (KafkaAdmin) async throws -> T) async throws -> T {
    let admin = KafkaAdmin(config: config)
    do {
        let result = try await body(admin)
        await admin.close()
        return result
    } catch {
        await admin.close()
        throw error
    }
}

func list(_ ids: [Int32]) -> String { ids.isEmpty ? "-" : ids.map(String.init).joined(separator: ",") }

struct MetadataCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "metadata",
        abstract: "Brokers, controller, topics and partitions with leader, replicas and ISR (kcat -L).")

    @OptionGroup var global: GlobalOptions

    @Option(name: .customShort("t"), help: "Only this topic.")
    var topic: String?

    func run() async throws {
        global.setUp()
        let meta = try await withAdmin(try global.clientConfig()) { admin in
            if let topic {
                try await admin.cluster.refreshMetadata(topics: [topic])
                _ = try await admin.cluster.topic(topic)
                var m = await admin.cluster.metadata
                m.topics = m.topics.filter { $0.key == topic }
                return m
            }
            return try await admin.metadata()
        }
        let brokers = meta.brokers.values.sorted { $0.nodeId < $1.nodeId }
        let topics = meta.topics.values.sorted { $0.name < $1.name }
        emitListing(json: global.json, Self.json(meta, brokers, topics), table: Self.table(meta, brokers, topics))
    }

    static func json(_ meta: ClusterMetadata, _ brokers: [BrokerMetadata], _ topics: [TopicMetadata]) -> JSON {
        .object([
            ("cluster_id", .optionalString(meta.clusterId)),
            ("controller_id", .int(meta.controllerId)),
            ("brokers", .array(brokers.map { b in
                .object([("id", .int(b.nodeId)), ("host", .string(b.address.host)), ("port", .int(b.address.port)),
                         ("rack", .optionalString(b.rack))])
            })),
            ("topics", .array(topics.map { t in
                .object([
                    ("name", .string(t.name)),
                    ("topic_id", .string(t.topicId.description)),
                    ("internal", .bool(t.isInternal)),
                    ("error", t.error == .none ? .null : .string(t.error.name)),
                    ("partitions", .array(t.partitions.map { p in
                        .object([
                            ("partition", .int(p.partition)), ("leader", .int(p.leader)),
                            ("replicas", .array(p.replicas.map { .int($0) })), ("isr", .array(p.isr.map { .int($0) })),
                            ("offline_replicas", .array(p.offlineReplicas.map { .int($0) })),
                            ("error", p.error == .none ? .null : .string(p.error.name)),
                        ])
                    })),
                ])
            })),
        ])
    }

    static func table(_ meta: ClusterMetadata, _ brokers: [BrokerMetadata], _ topics: [TopicMetadata]) -> String {
        var out = "cluster \(meta.clusterId ?? "-"), controller \(meta.controllerId)\n\n"
        out += renderTable(
            ["BROKER", "ADDRESS", "RACK", "CONTROLLER"],
            brokers.map { [String($0.nodeId), $0.address.description, $0.rack ?? "-", $0.nodeId == meta.controllerId ? "yes" : ""] })
        out += "\n"
        let anyError = topics.contains { $0.error != .none || $0.partitions.contains { $0.error != .none } }
        var rows: [[String]] = []
        for t in topics {
            if t.partitions.isEmpty {
                rows.append([t.name, "-", "-", "-", "-"] + (anyError ? [t.error == .none ? "" : t.error.name] : []))
            }
            for p in t.partitions {
                let error = p.error != .none ? p.error.name : (t.error != .none ? t.error.name : "")
                rows.append([t.name, String(p.partition), String(p.leader), list(p.replicas), list(p.isr)] + (anyError ? [error] : []))
            }
        }
        out += renderTable(["TOPIC", "PARTITION", "LEADER", "REPLICAS", "ISR"] + (anyError ? ["ERROR"] : []), rows)
        return out
    }
}

struct OffsetsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "offsets",
        abstract: "Earliest and latest offset per partition, or the offset for a time.")

    @OptionGroup var global: GlobalOptions

    @Option(name: .customShort("t"), help: "The topic.")
    var topic: String

    @Option(name: .customShort("p"), help: "Only this partition.")
    var partition: Int32?

    @Option(name: .long, help: ArgumentHelp(
        "The first offset whose timestamp is at or after this time (ms since the epoch); -1 where there is none.",
        valueName: "timestamp-ms"))
    var time: Int64?

    func run() async throws {
        global.setUp()
        let topic = self.topic, partition = self.partition, time = self.time
        if let time {
            let found = try await withAdmin(try global.clientConfig()) { admin in
                try await checkPartition(admin, topic, partition)
                return try await admin.offsets(topic: topic, at: time)
            }
            let rows = found.keys.sorted().filter { partition == nil || $0 == partition }.map { ($0, found[$0] ?? -1) }
            emitListing(
                json: global.json,
                .array(rows.map { .object([("topic", .string(topic)), ("partition", .int($0.0)), ("timestamp", .int(time)), ("offset", .int($0.1))]) }),
                table: renderTable(["TOPIC", "PARTITION", "TIMESTAMP", "OFFSET"], rows.map { [topic, String($0.0), String(time), String($0.1)] }))
            return
        }
        let found = try await withAdmin(try global.clientConfig()) { admin in
            try await checkPartition(admin, topic, partition)
            return try await admin.offsets(topic: topic)
        }
        let rows = found.filter { partition == nil || $0.partition == partition }.sorted { $0.partition < $1.partition }
        emitListing(
            json: global.json,
            .array(rows.map {
                .object([("topic", .string(topic)), ("partition", .int($0.partition)), ("earliest", .int($0.earliest)), ("latest", .int($0.latest))])
            }),
            table: renderTable(["TOPIC", "PARTITION", "EARLIEST", "LATEST"], rows.map { [topic, String($0.partition), String($0.earliest), String($0.latest)] }))
    }
}

/// Fails with "unknown topic" / "unknown partition" before anything else is asked.
func checkPartition(_ admin: KafkaAdmin, _ topic: String, _ partition: Int32?) async throws {
    let t = try await admin.cluster.topic(topic)
    if let partition, !t.partitions.contains(where: { $0.partition == partition }) {
        throw KafkaError.unknownTopicOrPartition(topic: topic, partition: partition)
    }
}

struct ApiVersionsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "api-versions",
        abstract: "The API versions the broker supports, next to the ones KafkaWire can speak and uses.")

    @OptionGroup var global: GlobalOptions

    /// The APIs the library sends.
    static let used: Set<ApiKey> = [
        .produce, .fetch, .listOffsets, .metadata, .offsetCommit, .offsetFetch, .findCoordinator, .joinGroup,
        .heartbeat, .leaveGroup, .syncGroup, .describeGroups, .listGroups, .apiVersions, .createTopics,
        .deleteTopics, .describeConfigs,
    ]

    struct Row {
        var key: Int16
        var name: String
        var broker: ClosedRange<Int16>?
        var client: ClosedRange<Int16>?
        var uses: Int16?
    }

    func run() async throws {
        global.setUp()
        let (address, table) = try await withAdmin(try global.clientConfig()) { admin in
            let c = try await admin.cluster.anyConnection()
            return (c.address, c.versions)
        }
        var keys = Set(table.broker.keys)
        for k in Self.used { keys.insert(k.rawValue) }
        let rows: [Row] = keys.sorted().map { key in
            let api = ApiKey(rawValue: key)
            var client: ClosedRange<Int16>?
            var uses: Int16?
            if let api, Self.used.contains(api), let type = api.requestType {
                client = Self.clientRange(type)
                // ApiVersions itself is asked at v3 (then lower for an old broker), never higher.
                uses = api == .apiVersions ? table.broker[key].map { min($0.upperBound, 3) } : Self.negotiated(type, table)
            }
            return Row(key: key, name: ApiKey.name(for: key), broker: table.broker[key], client: client, uses: uses)
        }
        func range(_ r: ClosedRange<Int16>?) -> String { r.map { "\($0.lowerBound)-\($0.upperBound)" } ?? "-" }
        func rangeJSON(_ r: ClosedRange<Int16>?) -> JSON {
            r.map { .object([("min", .int($0.lowerBound)), ("max", .int($0.upperBound))]) } ?? .null
        }
        emitListing(
            json: global.json,
            .object([
                ("broker", .string(address.description)),
                ("apis", .array(rows.map { r in
                    .object([("key", .int(r.key)), ("name", .string(r.name)), ("broker", rangeJSON(r.broker)),
                             ("kafkawire", rangeJSON(r.client)), ("uses", r.uses.map { .int($0) } ?? .null)])
                })),
            ]),
            table: "broker \(address)\n\n" + renderTable(
                ["KEY", "API", "BROKER", "KAFKAWIRE", "USES"],
                rows.map { [String($0.key), $0.name, range($0.broker), range($0.client), $0.uses.map { "v\($0)" } ?? "-"] }))
    }

    static func clientRange<R: KafkaRequest>(_ type: R.Type) -> ClosedRange<Int16> {
        ApiVersionTable.clientRange(type)
    }

    static func negotiated<R: KafkaRequest>(_ type: R.Type, _ table: ApiVersionTable) -> Int16? {
        try? table.version(for: type)
    }
}
