// kwire topics list | create | delete
import ArgumentParser
import KafkaWire

struct TopicsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "topics",
        abstract: "List, create and delete topics.",
        subcommands: [List.self, Create.self, Delete.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every topic with its partition count and replication factor.")

        @OptionGroup var global: GlobalOptions

        func run() async throws {
            global.setUp()
            let meta = try await withAdmin(try global.clientConfig()) { try await $0.metadata() }
            let topics = meta.topics.values.sorted { $0.name < $1.name }
            emitListing(
                json: global.json,
                .array(topics.map { t in
                    .object([("name", .string(t.name)), ("partitions", .int(t.partitions.count)),
                             ("replication", .int(t.partitions.first?.replicas.count ?? 0)), ("internal", .bool(t.isInternal))])
                }),
                table: renderTable(
                    ["TOPIC", "PARTITIONS", "REPLICATION"],
                    topics.map { [$0.name, String($0.partitions.count), String($0.partitions.first?.replicas.count ?? 0)] }))
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create topics.")

        @OptionGroup var global: GlobalOptions

        @Argument(help: "Names of the topics to create.")
        var names: [String]

        @Option(name: .customShort("P"), help: "Partitions per topic.")
        var partitions: Int32 = 1

        @Option(name: .customShort("R"), help: "Replication factor.")
        var replication: Int16 = 1

        @Option(name: .customLong("config"), help: ArgumentHelp("Topic config, e.g. --config retention.ms=3600000 (repeatable).", valueName: "key=value"))
        var configs: [String] = []

        @Flag(name: .customLong("if-not-exists"), help: "Succeed when a topic already exists.")
        var ifNotExists = false

        func validate() throws {
            guard !names.isEmpty else { throw ValidationError("give the name of at least one topic") }
            guard partitions >= 1 else { throw ValidationError("-P must be at least 1") }
            guard replication >= 1 else { throw ValidationError("-R must be at least 1") }
        }

        func run() async throws {
            global.setUp()
            var topicConfigs: [String: String] = [:]
            for c in configs {
                guard let (k, v) = KafkaSettings.parseAssignment(c) else { throw CLIError.usage("--config expects key=value, got \"\(c)\"") }
                topicConfigs[k] = v
            }
            let topics = names.map { KafkaAdmin.NewTopic(name: $0, partitions: partitions, replicationFactor: replication, configs: topicConfigs) }
            let ignore = ifNotExists
            try await withAdmin(try global.clientConfig()) { try await $0.createTopics(topics, ignoreExisting: ignore) }
            emitListing(
                json: global.json,
                .array(names.map {
                    .object([("name", .string($0)), ("partitions", .int(partitions)), ("replication", .int(replication))])
                }),
                table: names.map { "created topic \($0) (\(partitions) partitions, replication \(replication))\n" }.joined())
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete topics.")

        @OptionGroup var global: GlobalOptions

        @Argument(help: "Names of the topics to delete.")
        var names: [String]

        func validate() throws {
            guard !names.isEmpty else { throw ValidationError("give the name of at least one topic") }
        }

        func run() async throws {
            global.setUp()
            let names = self.names
            try await withAdmin(try global.clientConfig()) { admin in
                // An unknown name is reported as such, before anything is deleted.
                let meta = try await admin.metadata()
                for n in names where meta.topics[n] == nil { throw KafkaError.unknownTopicOrPartition(topic: n, partition: nil) }
                try await admin.deleteTopics(names)
            }
            emitListing(
                json: global.json,
                .array(names.map { .object([("name", .string($0)), ("deleted", .bool(true))]) }),
                table: names.map { "deleted topic \($0)\n" }.joined())
        }
    }
}
