/// A member's subscription as the group leader sees it.
public struct GroupMemberSubscription: Sendable, Equatable {
    public var memberId: String
    public var groupInstanceId: String?
    public var topics: [String]
    /// topic -> partitions (cooperative protocols)
    public var ownedPartitions: [String: [Int32]]
    /// -1 if unknown (subscription v0/v1)
    public var generation: Int32
    public var userData: [UInt8]?
    public var rackId: String?

    public init(
        memberId: String, groupInstanceId: String? = nil, topics: [String],
        ownedPartitions: [String: [Int32]] = [:], generation: Int32 = -1, userData: [UInt8]? = nil,
        rackId: String? = nil
    ) {
        self.memberId = memberId
        self.groupInstanceId = groupInstanceId
        self.topics = topics
        self.ownedPartitions = ownedPartitions
        self.generation = generation
        self.userData = userData
        self.rackId = rackId
    }
}

/// How members hand over partitions during a rebalance.
public enum RebalanceProtocol: Sendable {
    /// Every member gives up all its partitions before rejoining.
    case eager
    /// Members keep their partitions through the rebalance and give up only those that move; a moved
    /// partition reaches its new owner in a follow-up rebalance.
    case cooperative
}

/// Computes the group's assignment on the leader, as the Java client's `ConsumerPartitionAssignor`.
public protocol PartitionAssignor: Sendable {
    /// The protocol name on the wire: "range", "roundrobin", "cooperative-sticky".
    var name: String { get }
    /// EAGER: members give up all partitions before rejoining; COOPERATIVE: only those that move.
    var rebalanceProtocol: RebalanceProtocol { get }
    /// memberId -> topic -> partitions. `partitionCounts`: topic -> number of partitions (topics missing from it are skipped).
    ///
    /// Every member of `members` is a key of the result (with an empty map if it gets nothing);
    /// partition lists are sorted and a topic appears only with at least one partition. A member id
    /// given twice counts once (its first subscription).
    func assign(members: [GroupMemberSubscription], partitionCounts: [String: Int]) -> [String: [String: [Int32]]]
}

/// The assignors this client has, by protocol name.
public enum Assignors {
    /// "range", "roundrobin", "cooperative-sticky"; nil for any other name.
    public static func named(_ name: String) -> (any PartitionAssignor)? {
        switch name {
        case "range": RangeAssignor()
        case "roundrobin": RoundRobinAssignor()
        case "cooperative-sticky": CooperativeStickyAssignor()
        default: nil
        }
    }
}

/// The Java client's `RangeAssignor` (without rack awareness): for each topic, the members
/// subscribed to it in order (static members first by `group.instance.id`, then the others by member
/// id) get consecutive ranges of partitions; the first `partitions % members` get one extra.
///
/// With 2 members and 2 topics of 3 partitions, C0 gets t1[0, 1] t2[0, 1] and C1 gets t1[2] t2[2].
public struct RangeAssignor: PartitionAssignor {
    public var name: String { "range" }
    public var rebalanceProtocol: RebalanceProtocol { .eager }
    public init() {}

    public func assign(members: [GroupMemberSubscription], partitionCounts: [String: Int]) -> [String: [String: [Int32]]] {
        let members = AssignorSupport.uniqueMembers(members)
        var result = AssignorSupport.emptyAssignment(members)
        var consumersPerTopic: [String: [GroupMemberSubscription]] = [:]
        for m in members {
            for topic in Set(m.topics) { consumersPerTopic[topic, default: []].append(m) }
        }
        for (topic, consumers) in consumersPerTopic {
            let count = AssignorSupport.partitionCount(partitionCounts, topic)
            guard count > 0 else { continue }
            let sorted = consumers.sorted(by: AssignorSupport.memberInfoLess)
            let perConsumer = count / sorted.count
            let withExtra = count % sorted.count
            for (i, consumer) in sorted.enumerated() {
                let start = perConsumer * i + min(i, withExtra)
                let length = perConsumer + (i < withExtra ? 1 : 0)
                guard length > 0 else { continue }
                result[consumer.memberId]![topic] = (start..<start + length).map { Int32($0) }
            }
        }
        return result
    }
}

/// The Java client's `RoundRobinAssignor`: all partitions of all subscribed topics, sorted by topic
/// then partition, dealt in turn to the members in order (static members first by
/// `group.instance.id`, then the others by member id), skipping members not subscribed to the topic.
public struct RoundRobinAssignor: PartitionAssignor {
    public var name: String { "roundrobin" }
    public var rebalanceProtocol: RebalanceProtocol { .eager }
    public init() {}

    public func assign(members: [GroupMemberSubscription], partitionCounts: [String: Int]) -> [String: [String: [Int32]]] {
        let members = AssignorSupport.uniqueMembers(members).sorted(by: AssignorSupport.memberInfoLess)
        var result = AssignorSupport.emptyAssignment(members)
        guard !members.isEmpty else { return result }
        let subscribed = members.map { Set($0.topics) }
        let topics = Set(members.flatMap(\.topics)).sorted(by: AssignorSupport.javaLess)
        var next = 0
        for topic in topics {
            let count = AssignorSupport.partitionCount(partitionCounts, topic)
            for partition in 0..<count {
                // Some member is subscribed to every topic here, so this ends within one turn.
                while !subscribed[next].contains(topic) { next = (next + 1) % members.count }
                result[members[next].memberId]![topic, default: []].append(Int32(partition))
                next = (next + 1) % members.count
            }
        }
        return result
    }
}

// MARK: - Shared helpers

/// Helpers of the assignors and the consumer protocol (a namespace, to keep the module's top level clean).
enum AssignorSupport {
    /// Java's `String.compareTo`: UTF-16 code units in order. Member ids and topics sort as in the Java
    /// client even outside ASCII (Swift's own `<` orders by Unicode scalars after normalization).
    static func javaCompare(_ a: String, _ b: String) -> Int {
        var i = a.utf16.makeIterator()
        var j = b.utf16.makeIterator()
        while true {
            switch (i.next(), j.next()) {
            case (nil, nil): return 0
            case (nil, _): return -1
            case (_, nil): return 1
            case let (x?, y?): if x != y { return x < y ? -1 : 1 }
            }
        }
    }

    static func javaLess(_ a: String, _ b: String) -> Bool { javaCompare(a, b) < 0 }

    /// The Java client's `MemberInfo` order: members with a `group.instance.id` first, by instance id;
    /// then the others by member id. (Equal instance ids, which the coordinator does not allow, fall
    /// back to the member id so that the order stays total.)
    static func memberInfoLess(_ a: GroupMemberSubscription, _ b: GroupMemberSubscription) -> Bool {
        switch (a.groupInstanceId, b.groupInstanceId) {
        case let (x?, y?):
            let c = javaCompare(x, y)
            return c != 0 ? c < 0 : javaLess(a.memberId, b.memberId)
        case (.some, nil): return true
        case (nil, .some): return false
        case (nil, nil): return javaLess(a.memberId, b.memberId)
        }
    }

    /// The members with each id once (the first subscription given for it).
    static func uniqueMembers(_ members: [GroupMemberSubscription]) -> [GroupMemberSubscription] {
        var seen = Set<String>()
        return members.filter { seen.insert($0.memberId).inserted }
    }

    static func emptyAssignment(_ members: [GroupMemberSubscription]) -> [String: [String: [Int32]]] {
        var result: [String: [String: [Int32]]] = [:]
        for m in members { result[m.memberId] = [:] }
        return result
    }

    /// The number of partitions to assign for `topic`: 0 if unknown (or nonsensical).
    static func partitionCount(_ counts: [String: Int], _ topic: String) -> Int {
        min(max(counts[topic] ?? 0, 0), Int(Int32.max))
    }
}
