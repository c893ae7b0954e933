import KafkaProtocol
import Testing

// The consumer protocol inside the classic group APIs: JoinGroup carries each member's
// subscription (ConsumerProtocolSubscription) as opaque protocol metadata, SyncGroup the leader's
// assignments (ConsumerProtocolAssignment). Both are a version (int16) followed by the struct at
// that version.

/// The topic the group fixtures consume (capture_fixtures.py: kcat_group, aiokafka_group), and its
/// partitions (Tansu auto-created it with 4 when kcat produced to partition 0).
let groupTopic = "kw-group"
let groupPartitions: [Int32] = [0, 1, 2, 3]

let groupFrames: [Frame] = Fixtures.frames.filter {
    $0.folder.hasSuffix("-group-join-sync") && [ApiKey.joinGroup.rawValue, ApiKey.syncGroup.rawValue].contains($0.entry.apiKey)
}

/// Decodes `bytes` as a version-prefixed consumer protocol struct, requires every byte to be used,
/// and re-encodes it to the same bytes.
func decodeVersioned<M: KafkaMessage>(_ bytes: [UInt8], as _: M.Type, _ what: String) throws -> (version: Int16, value: M) {
    var r = WireReader(bytes)
    let version = try r.readInt16("\(M.self) version")
    try #require(M.validVersions.contains(version), "\(what): \(M.self) version \(version) is not generated (\(M.validVersions))")
    let value = try M.decode(Array(bytes[2...]), version: version)
    var w = WireWriter()
    w.writeInt16(version)
    try value.encode(into: &w, version: version)
    expectSame(w.bytes, bytes, "\(what): \(M.self) v\(version) re-encoding")
    return (version, value)
}

@Suite("Consumer group protocol")
struct GroupProtocolTests {
    @Test("JoinGroup subscriptions and SyncGroup assignments decode with the generated types", arguments: groupFrames)
    func groupFrame(_ frame: Frame) throws {
        switch (ApiKey(rawValue: frame.entry.apiKey), frame.entry.isRequest) {
        case (.joinGroup, true):
            let join = try body(of: frame, request: JoinGroupRequest.self)
            #expect(join.protocolType == "consumer")
            #expect(!join.protocols.isEmpty)
            for p in join.protocols {
                let (_, sub) = try decodeVersioned(p.metadata, as: ConsumerProtocolSubscription.self, "\(frame) protocol \(p.name)")
                #expect(sub.topics == [groupTopic], "\(frame) protocol \(p.name)")
                for owned in sub.ownedPartitions { #expect(owned.topic == groupTopic) }
            }
        case (.joinGroup, false):
            let join = try body(of: frame, responseTo: JoinGroupRequest.self)
            if join.errorCode == 0 {
                // ProtocolType is in versions 7+ only.
                #expect(join.protocolType == (frame.entry.apiVersion >= 7 ? "consumer" : nil))
                #expect(join.protocolName?.isEmpty == false)
            }
            // Only the leader gets the members' subscriptions.
            for m in join.members {
                let (_, sub) = try decodeVersioned(m.metadata, as: ConsumerProtocolSubscription.self, "\(frame) member \(m.memberId)")
                #expect(sub.topics == [groupTopic])
            }
        case (.syncGroup, true):
            let sync = try body(of: frame, request: SyncGroupRequest.self)
            // The leader assigns each partition of the topic to exactly one member.
            var assigned: [Int32] = []
            for a in sync.assignments {
                let (_, assignment) = try decodeVersioned(a.assignment, as: ConsumerProtocolAssignment.self, "\(frame) member \(a.memberId)")
                for tp in assignment.assignedPartitions {
                    #expect(tp.topic == groupTopic)
                    assigned += tp.partitions
                }
            }
            if !sync.assignments.isEmpty { #expect(assigned.sorted() == groupPartitions, "\(frame)") }
        case (.syncGroup, false):
            let sync = try body(of: frame, responseTo: SyncGroupRequest.self)
            guard sync.errorCode == 0, !sync.assignment.isEmpty else { return }
            let (_, assignment) = try decodeVersioned(sync.assignment, as: ConsumerProtocolAssignment.self, "\(frame)")
            #expect(!assignment.assignedPartitions.isEmpty)
            for tp in assignment.assignedPartitions {
                #expect(tp.topic == groupTopic)
                #expect(!tp.partitions.isEmpty && tp.partitions.allSatisfy(groupPartitions.contains), "\(tp.partitions)")
            }
        default:
            Issue.record("unexpected frame \(frame)")
        }
    }

    /// Each group capture has what the test above needs to mean something: subscriptions in
    /// JoinGroup requests, the leader's view of them, and a member that was given partition 0 (the one
    /// holding the records).
    @Test("Every group capture holds subscriptions and a non-empty assignment", arguments: ["kcat-group-join-sync", "aiokafka-group-join-sync"])
    func groupCaptureComplete(_ folder: String) throws {
        let frames = groupFrames.filter { $0.folder == folder }
        var subscriptions = 0, leaderViews = 0, assignedZero = 0
        for f in frames {
            switch (ApiKey(rawValue: f.entry.apiKey), f.entry.isRequest) {
            case (.joinGroup, true): subscriptions += try body(of: f, request: JoinGroupRequest.self).protocols.count
            case (.joinGroup, false): leaderViews += try body(of: f, responseTo: JoinGroupRequest.self).members.count
            case (.syncGroup, false):
                let sync = try body(of: f, responseTo: SyncGroupRequest.self)
                guard sync.errorCode == 0, !sync.assignment.isEmpty else { continue }
                let a = try decodeVersioned(sync.assignment, as: ConsumerProtocolAssignment.self, "\(f)").value
                if a.assignedPartitions.contains(where: { $0.topic == groupTopic && $0.partitions.contains(0) }) { assignedZero += 1 }
            default: continue
            }
        }
        #expect(subscriptions > 0 && leaderViews > 0 && assignedZero > 0, "\(folder): \(subscriptions) subscriptions, \(leaderViews) member entries, \(assignedZero) assignments of partition 0")
    }
}
