// kwire groups list | describe GROUP | reset GROUP -t TOPIC --to earliest|latest|OFFSET
import ArgumentParser
import KafkaWire

struct GroupsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "groups",
        abstract: "List and describe consumer groups, reset their offsets.",
        subcommands: [List.self, Describe.self, Reset.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every group with its state and protocol type.")

        @OptionGroup var global: GlobalOptions

        func run() async throws {
            global.setUp()
            let groups = try await withAdmin(try global.clientConfig()) { try await $0.listGroups() }
            emitListing(
                json: global.json,
                .array(groups.map {
                    .object([("group", .string($0.groupId)), ("state", .string($0.state)), ("protocol_type", .string($0.protocolType))])
                }),
                table: renderTable(
                    ["GROUP", "STATE", "PROTOCOL_TYPE"],
                    groups.map { [$0.groupId, $0.state.isEmpty ? "-" : $0.state, $0.protocolType.isEmpty ? "-" : $0.protocolType] }))
        }
    }

    struct Describe: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "State, protocol, members and their partitions; committed offset, high watermark and lag per partition.")

        @OptionGroup var global: GlobalOptions

        @Argument(help: "The group.")
        var group: String

        func run() async throws {
            global.setUp()
            let group = self.group
            let d = try await withAdmin(try global.clientConfig()) { admin in
                try await describeExisting(admin, group)
            }
            emitListing(json: global.json, Self.json(d), table: Self.table(d))
        }

        static func json(_ d: KafkaAdmin.GroupDescription) -> JSON {
            .object([
                ("group", .string(d.groupId)),
                ("state", .string(d.state)),
                ("protocol_type", .string(d.protocolType)),
                ("protocol", .string(d.assignor)),
                ("members", .array(d.members.map { m in
                    .object([
                        ("member_id", .string(m.memberId)), ("group_instance_id", .optionalString(m.groupInstanceId)),
                        ("client_id", .string(m.clientId)), ("client_host", .string(m.clientHost)),
                        ("partitions", .array(m.assignment.map { .object([("topic", .string($0.topic)), ("partition", .int($0.partition))]) })),
                    ])
                })),
                ("partitions", .array(d.partitions.map { p in
                    .object([
                        ("topic", .string(p.partition.topic)), ("partition", .int(p.partition.partition)),
                        ("committed_offset", p.committedOffset >= 0 ? .int(p.committedOffset) : .null),
                        ("high_watermark", .int(p.highWatermark)), ("lag", .int(p.lag)),
                        ("member_id", .optionalString(p.memberId)),
                    ])
                })),
                ("total_lag", .int(d.totalLag)),
            ])
        }

        static func table(_ d: KafkaAdmin.GroupDescription) -> String {
            var out = "group \(d.groupId): state \(d.state.isEmpty ? "-" : d.state), protocol \(d.protocolType.isEmpty ? "-" : d.protocolType)"
            out += d.assignor.isEmpty ? "" : "/\(d.assignor)"
            out += ", \(d.members.count) member\(d.members.count == 1 ? "" : "s"), total lag \(d.totalLag)\n\n"
            if !d.members.isEmpty {
                out += renderTable(
                    ["MEMBER", "CLIENT_ID", "HOST", "PARTITIONS"],
                    d.members.map { m in
                        [m.memberId, m.clientId, m.clientHost,
                         m.assignment.isEmpty ? "-" : m.assignment.map(\.description).joined(separator: ",")]
                    })
                out += "\n"
            }
            out += renderTable(
                ["TOPIC", "PARTITION", "COMMITTED", "HIGH_WATERMARK", "LAG", "MEMBER"],
                d.partitions.map { p in
                    [p.partition.topic, String(p.partition.partition), p.committedOffset >= 0 ? String(p.committedOffset) : "-",
                     String(p.highWatermark), String(p.lag), p.memberId ?? "-"]
                })
            return out
        }
    }

    struct Reset: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Move a group's committed offsets for every partition of a topic (only while the group has no members).")

        @OptionGroup var global: GlobalOptions

        @Argument(help: "The group.")
        var group: String

        @Option(name: .customShort("t"), help: "The topic whose offsets move.")
        var topic: String

        @Option(name: .customLong("to"), help: ArgumentHelp("earliest, latest or an offset.", valueName: "earliest|latest|offset"))
        var target: String

        func validate() throws {
            _ = try parsedTarget()
        }

        func parsedTarget() throws(ValidationError) -> KafkaAdmin.OffsetResetTarget {
            switch target {
            case "earliest", "beginning": return .earliest
            case "latest", "end": return .latest
            default:
                guard let o = Int64(target), o >= 0 else { throw ValidationError("--to expects earliest, latest or an offset, got \"\(target)\"") }
                return .offset(o)
            }
        }

        func run() async throws {
            global.setUp()
            let (group, topic, target) = (self.group, self.topic, try parsedTarget())
            let offsets = try await withAdmin(try global.clientConfig()) { admin in
                _ = try await admin.cluster.topic(topic)
                return try await admin.resetGroupOffsets(group, topic: topic, to: target)
            }
            let rows = offsets.sorted { $0.key < $1.key }
            emitListing(
                json: global.json,
                .array(rows.map {
                    .object([("group", .string(group)), ("topic", .string($0.key.topic)), ("partition", .int($0.key.partition)), ("offset", .int($0.value))])
                }),
                table: renderTable(["GROUP", "TOPIC", "PARTITION", "OFFSET"], rows.map { [group, $0.key.topic, String($0.key.partition), String($0.value)] }))
        }
    }
}

/// Describes a group, failing with "unknown group" for one the cluster does not have: Kafka answers
/// such a DescribeGroups with state Dead (the library throws GROUP_ID_NOT_FOUND); other brokers
/// answer an empty group with no members and no offsets, which is then checked against ListGroups.
func describeExisting(_ admin: KafkaAdmin, _ group: String) async throws -> KafkaAdmin.GroupDescription {
    let d: KafkaAdmin.GroupDescription
    do {
        d = try await admin.describeGroup(group)
    } catch {
        if case let .broker(code, _) = error, code == .groupIdNotFound { throw CLIError.failure("unknown group \(group)") }
        throw error
    }
    if d.members.isEmpty && d.partitions.isEmpty {
        let listed = try await admin.listGroups()
        if !listed.contains(where: { $0.groupId == group }) { throw CLIError.failure("unknown group \(group)") }
    }
    return d
}
