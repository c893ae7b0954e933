/// The embedded protocol of classic consumer groups (protocol type "consumer"): what a member puts in
/// JoinGroup `protocols[].metadata` (its subscription) and what the leader puts in SyncGroup
/// `assignments[].assignment` (a member's partitions).
///
/// Both are an int16 version followed by the body of `ConsumerProtocolSubscription` /
/// `ConsumerProtocolAssignment` at that version, never flexible. As in the Java client, a version
/// above the newest we know is read as the newest (Kafka only appends fields to these schemas), and
/// bytes left after the fields we know are ignored.
///
/// Seen from real peers (Fixtures/*-group-join-sync): librdkafka 2.16 (kcat) sends subscription v3
/// with empty (not null) user data, no owned partitions, generation -1 and an empty rack id on its
/// first join, and writes assignments as v0; aiokafka 0.14 sends subscription v0 with empty user
/// data and writes assignments as v0. The Java client (3.x) sends and writes v3.
public enum ConsumerProtocol {
    /// The newest version of both schemas this client knows.
    public static let latestVersion: Int16 = 3

    /// Encodes a subscription. Topics are sorted and deduplicated, owned partitions sorted by topic
    /// then partition (topics with no partitions left out), so equal inputs give equal bytes.
    /// Fields the chosen version does not have are left out: owned partitions below v1, the
    /// generation below v2, the rack below v3. A version outside 0...3 is clamped into it.
    public static func encodeSubscription(
        topics: [String], ownedPartitions: [String: [Int32]], generation: Int32, userData: [UInt8]?,
        rackId: String?, version: Int16 = 3
    ) -> [UInt8] {
        let version = min(max(version, 0), latestVersion)
        var body = ConsumerProtocolSubscription()
        body.topics = Array(Set(topics)).sorted(by: AssignorSupport.javaLess)
        body.userData = userData
        body.ownedPartitions = sortedTopicPartitions(ownedPartitions).map {
            ConsumerProtocolSubscription.TopicPartition(topic: $0.topic, partitions: $0.partitions)
        }
        body.generationId = generation
        body.rackId = rackId
        var w = WireWriter()
        w.writeInt16(version)
        do {
            try body.encode(into: &w, version: version)
        } catch {
            // Only a string longer than 32767 UTF-8 bytes gets here (Kafka caps topic names at 249).
            preconditionFailure("consumer protocol subscription cannot be encoded: \(error)")
        }
        return w.bytes
    }

    /// Decodes a member's subscription (any version; above 3, the v3 prefix). For v0 and v1,
    /// `generation` is -1 (unknown). An empty rack id is read as none, as the Java client does.
    /// Owned partitions are merged per topic, sorted and deduplicated.
    public static func decodeSubscription(
        _ bytes: [UInt8], memberId: String, groupInstanceId: String?
    ) throws -> GroupMemberSubscription {
        var r = WireReader(bytes)
        let version = try readVersion(&r, "ConsumerProtocolSubscription")
        let body = try ConsumerProtocolSubscription(from: &r, version: min(version, latestVersion))
        var owned: [String: [Int32]] = [:]
        for tp in body.ownedPartitions { owned[tp.topic, default: []].append(contentsOf: tp.partitions) }
        return GroupMemberSubscription(
            memberId: memberId,
            groupInstanceId: groupInstanceId,
            topics: body.topics,
            ownedPartitions: owned.mapValues { Array(Set($0)).sorted() },
            generation: version >= 2 ? body.generationId : -1,
            userData: body.userData,
            rackId: body.rackId?.isEmpty == false ? body.rackId : nil)
    }

    /// Encodes a member's assignment, topics and partitions sorted (topics with no partitions left
    /// out). The body is the same in every version; a version outside 0...3 is clamped into it.
    public static func encodeAssignment(_ partitions: [String: [Int32]], userData: [UInt8]?, version: Int16 = 3) -> [UInt8] {
        let version = min(max(version, 0), latestVersion)
        var body = ConsumerProtocolAssignment()
        body.assignedPartitions = sortedTopicPartitions(partitions).map {
            ConsumerProtocolAssignment.TopicPartition(topic: $0.topic, partitions: $0.partitions)
        }
        body.userData = userData
        var w = WireWriter()
        w.writeInt16(version)
        do {
            try body.encode(into: &w, version: version)
        } catch {
            preconditionFailure("consumer protocol assignment cannot be encoded: \(error)")
        }
        return w.bytes
    }

    /// Decodes an assignment (any version; above 3, the v3 prefix). Empty bytes are an empty
    /// assignment: the coordinator sends that to a member the leader gave nothing, or when the
    /// leader sent no assignment for it. Partitions are merged per topic, sorted and deduplicated.
    public static func decodeAssignment(_ bytes: [UInt8]) throws -> (partitions: [String: [Int32]], userData: [UInt8]?) {
        if bytes.isEmpty { return ([:], nil) }
        var r = WireReader(bytes)
        let version = try readVersion(&r, "ConsumerProtocolAssignment")
        let body = try ConsumerProtocolAssignment(from: &r, version: min(version, latestVersion))
        var partitions: [String: [Int32]] = [:]
        for tp in body.assignedPartitions { partitions[tp.topic, default: []].append(contentsOf: tp.partitions) }
        return (partitions.mapValues { Array(Set($0)).sorted() }, body.userData)
    }

    private static func readVersion(_ r: inout WireReader, _ what: String) throws -> Int16 {
        let version = try r.readInt16("\(what).version")
        guard version >= 0 else { throw WireDecodingError.invalidValue("negative \(what) version \(version)") }
        return version
    }

    private static func sortedTopicPartitions(_ partitions: [String: [Int32]]) -> [(topic: String, partitions: [Int32])] {
        partitions
            .filter { !$0.value.isEmpty }
            .map { (topic: $0.key, partitions: Array(Set($0.value)).sorted()) }
            .sorted { AssignorSupport.javaLess($0.topic, $1.topic) }
    }
}
