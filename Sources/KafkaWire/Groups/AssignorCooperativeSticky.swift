/// The Java client's `CooperativeStickyAssignor` (`AbstractStickyAssignor` without rack awareness,
/// then the cooperative adjustment), under the same protocol name, so that it can lead or follow a
/// group of Java, librdkafka or other clients using "cooperative-sticky".
///
/// 1. Owned partitions are read from each subscription. A partition claimed by several members
///    stays with the claim of the highest generation (subscription v2+ carries it; for v0/v1, the
///    generation the Java assignor keeps in its user data, see `subscriptionUserData`); claims tied
///    at the highest generation are all dropped. Claims on topics nobody subscribes to any more, that
///    no longer exist, or beyond the topic's partition count are dropped too.
/// 2. If every member subscribes to the same topics (among those that exist), the Java client's
///    constrained algorithm: each member keeps up to its quota of its owned partitions (minQuota =
///    floor(P/N), maxQuota = ceil(P/N), with exactly P mod N members at maxQuota), then the rest go
///    round robin to the members under quota, sorted by member id. Result: max - min <= 1, each
///    member keeps at least min(owned, minQuota), and up to P mod N members that owned maxQuota or
///    more keep maxQuota: no partition moves that balance does not require.
/// 3. Otherwise (different subscriptions) the general algorithm: every member keeps its owned
///    partitions of topics it still subscribes to; each unassigned partition (topics with fewer
///    eligible members first, then by name and partition) goes to the eligible member with the
///    fewest partitions, ties by member id; then partitions move towards balance, first only those
///    nobody owned, then any, along chains of members (see `balance`).
/// 4. Cooperative adjustment: a partition the new assignment gives to member X while another member
///    Y claims it in its subscription is taken out of X's assignment this round; Y gives it up when
///    it sees its own assignment without it and rejoins, and the follow-up rebalance gives it to X.
///
/// Differences from the Java client (none changes the protocol between members):
/// - Java visits members in hash-map order where the order matters (which members keep maxQuota
///   when several could); here they are visited by member id, so the result is deterministic.
/// - Java decides "all subscriptions equal" on the raw topic lists (and a member with an empty list
///   followed by others makes Java believe they are all equal); here only topics that exist count.
/// - With three or more claims on one partition Java's outcome depends on the order it reads them
///   (and can leave two owners); here the claims are compared as a whole (highest generation wins,
///   a tie at the top drops them all).
/// - Java's general algorithm balances by moving one partition at a time to a member with at least
///   two fewer, which can stop short of the best balance when subscriptions overlap partially
///   (A holds 3 of topics only A and B read, B holds 2 of topics B and C read, C holds 1: no single
///   move helps, moving one A->B and one B->C does). Here such chains are searched too, so the
///   result is at least as balanced as Java's: no chain of moves can make the loads more even.
/// - Java's general algorithm also prefers giving a partition back to its owner of an older
///   generation; here only the current (resolved) owners count for stickiness.
public struct CooperativeStickyAssignor: PartitionAssignor {
    public var name: String { "cooperative-sticky" }
    public var rebalanceProtocol: RebalanceProtocol { .cooperative }
    public init() {}

    /// The user data the Java client's `CooperativeStickyAssignor` puts in its subscriptions: the
    /// member's generation as a big-endian int32 (-1 before its first assignment). Subscriptions v2+
    /// carry the generation in a field of their own, but a leader that reads only the v1 prefix (a
    /// Java client before subscription v2, KIP-792) finds it here, and the Java assignor reads it
    /// whenever the field says -1: members should send it with cooperative-sticky.
    public static func subscriptionUserData(generation: Int32) -> [UInt8] {
        let g = UInt32(bitPattern: generation)
        return [UInt8(truncatingIfNeeded: g >> 24), UInt8(truncatingIfNeeded: g >> 16),
                UInt8(truncatingIfNeeded: g >> 8), UInt8(truncatingIfNeeded: g)]
    }

    /// The generation the Java assignor reads from a subscription: the v2+ field when set (>= 0),
    /// else the int32 at the start of the user data, else -1.
    static func generation(of m: GroupMemberSubscription) -> Int32 {
        if m.generation >= 0 { return m.generation }
        guard let d = m.userData, d.count >= 4 else { return -1 }
        return Int32(bitPattern: UInt32(d[0]) << 24 | UInt32(d[1]) << 16 | UInt32(d[2]) << 8 | UInt32(d[3]))
    }

    public func assign(members: [GroupMemberSubscription], partitionCounts: [String: Int]) -> [String: [String: [Int32]]] {
        var builder = StickyAssignmentBuilder(members: members, partitionCounts: partitionCounts)
        return builder.build()
    }
}

/// The state of one cooperative-sticky assignment. Members are numbered in member id order and
/// topics in name order (Java's), so that every tie is broken the way the Java client breaks it
/// where it is deterministic.
struct StickyAssignmentBuilder {
    struct Part: Hashable, Comparable {
        var topic: Int
        var partition: Int32
        static func < (a: Part, b: Part) -> Bool { (a.topic, a.partition) < (b.topic, b.partition) }
    }

    let members: [GroupMemberSubscription]
    let topics: [String]
    let counts: [Int]
    /// Per member: the topics it subscribes to (that exist).
    let subscribed: [Set<Int>]
    /// Per topic: the members subscribed to it, in member order.
    let consumersOf: [[Int]]
    /// Per member: its owned partitions after resolving conflicting claims, sorted.
    var owned: [[Part]] = []
    var ownedSet: [Set<Part>] = []
    /// Per partition: every member that claims it in its subscription (whatever its generation).
    var claimers: [Part: [Int]] = [:]

    /// Per member: the partitions it gets.
    var assignment: [[Part]] = []

    init(members input: [GroupMemberSubscription], partitionCounts: [String: Int]) {
        members = AssignorSupport.uniqueMembers(input).sorted { AssignorSupport.javaLess($0.memberId, $1.memberId) }
        // Topics to assign: subscribed by some member and with at least one partition.
        topics = Set(members.flatMap(\.topics))
            .filter { AssignorSupport.partitionCount(partitionCounts, $0) > 0 }
            .sorted(by: AssignorSupport.javaLess)
        counts = topics.map { AssignorSupport.partitionCount(partitionCounts, $0) }
        var index: [String: Int] = [:]
        for (i, t) in topics.enumerated() { index[t] = i }
        subscribed = members.map { Set($0.topics.compactMap { index[$0] }) }
        var consumers = [[Int]](repeating: [], count: topics.count)
        for (m, topicSet) in subscribed.enumerated() {
            for t in topicSet { consumers[t].append(m) }
        }
        consumersOf = consumers
        resolveOwnership(index)
    }

    /// Fills `owned` and `claimers`: a claim counts if its partition exists and its topic is one to
    /// assign; of several claims on one partition, the one of the highest generation wins, and if
    /// several share the highest generation, none does.
    private mutating func resolveOwnership(_ index: [String: Int]) {
        var best: [Part: (generation: Int32, members: [Int])] = [:]
        for (m, member) in members.enumerated() {
            let generation = CooperativeStickyAssignor.generation(of: member)
            for (topic, partitions) in member.ownedPartitions {
                guard let t = index[topic] else { continue }
                for p in Set(partitions) where p >= 0 && Int(p) < counts[t] {
                    let part = Part(topic: t, partition: p)
                    claimers[part, default: []].append(m)
                    if let b = best[part] {
                        if generation > b.generation {
                            best[part] = (generation, [m])
                        } else if generation == b.generation {
                            best[part]!.members.append(m)
                        }
                    } else {
                        best[part] = (generation, [m])
                    }
                }
            }
        }
        owned = Array(repeating: [], count: members.count)
        for (part, b) in best where b.members.count == 1 { owned[b.members[0]].append(part) }
        for m in owned.indices { owned[m].sort() }
        ownedSet = owned.map(Set.init)
    }

    mutating func build() -> [String: [String: [Int32]]] {
        guard !members.isEmpty else { return [:] }
        if subscribed.allSatisfy({ $0 == subscribed[0] }) {
            constrainedAssign()
        } else {
            generalAssign()
        }
        adjustForCooperation()
        var result: [String: [String: [Int32]]] = [:]
        for (m, member) in members.enumerated() {
            var byTopic: [String: [Int32]] = [:]
            for part in assignment[m] { byTopic[topics[part.topic], default: []].append(part.partition) }
            result[member.memberId] = byTopic.mapValues { $0.sorted() }
        }
        return result
    }

    /// Every partition to assign, sorted by topic then partition.
    private var allPartitions: [Part] {
        topics.indices.flatMap { t in (0..<counts[t]).map { Part(topic: t, partition: Int32($0)) } }
    }

    // MARK: All subscriptions equal (Java's ConstrainedAssignmentBuilder)

    private mutating func constrainedAssign() {
        let n = members.count
        let total = counts.reduce(0, +)
        let minQuota = total / n
        let maxQuota = (total + n - 1) / n
        let expectedOverMin = total % n
        var currentOverMin = 0
        assignment = Array(repeating: [], count: n)
        var assigned = Set<Part>()
        // Members that still need partitions to reach minQuota, and members at minQuota that may
        // still take one more (while fewer than `expectedOverMin` members are above minQuota).
        var underMin: [Int] = []
        var exactlyMin: [Int] = []

        // 1. Keep owned partitions, up to the quota.
        for m in 0..<n {
            let mine = owned[m]
            if mine.count < minQuota {
                assignment[m] = mine
                underMin.append(m)
            } else if mine.count >= maxQuota && currentOverMin < expectedOverMin {
                currentOverMin += 1
                if currentOverMin == expectedOverMin { exactlyMin.removeAll() }
                assignment[m] = Array(mine.prefix(maxQuota))
            } else {
                assignment[m] = Array(mine.prefix(minQuota))
                if currentOverMin < expectedOverMin { exactlyMin.append(m) }
            }
            assigned.formUnion(assignment[m])
        }

        // 2. The rest round robin: first to the members under minQuota, then one each to members at
        //    minQuota until enough are at maxQuota.
        var cursor = 0
        for part in allPartitions where !assigned.contains(part) {
            let consumer: Int
            var fromUnderMin = false
            if cursor < underMin.count {
                consumer = underMin[cursor]
                cursor += 1
                fromUnderMin = true
            } else if !underMin.isEmpty {
                cursor = 0
                consumer = underMin[0]
                cursor = 1
                fromUnderMin = true
            } else if !exactlyMin.isEmpty {
                consumer = exactlyMin.removeFirst()
            } else {
                // Unreachable when the quotas add up (Java throws here); stay total anyway.
                consumer = (0..<n).min { (assignment[$0].count, $0) < (assignment[$1].count, $1) }!
            }
            assignment[consumer].append(part)
            let count = assignment[consumer].count
            if count == minQuota && fromUnderMin {
                cursor -= 1
                underMin.remove(at: cursor)
                exactlyMin.append(consumer)
            } else if count == maxQuota {
                currentOverMin += 1
            }
        }
    }

    // MARK: Different subscriptions (general case)

    /// Per member, topic -> partitions held, during the general assignment.
    private var held: [[Int: Set<Int32>]] = []
    /// Per member, topic -> how many of the partitions it holds it did not own (free to move).
    private var unowned: [[Int: Int]] = []
    private var load: [Int] = []

    private mutating func generalAssign() {
        let n = members.count
        held = Array(repeating: [:], count: n)
        unowned = Array(repeating: [:], count: n)
        load = Array(repeating: 0, count: n)
        var taken = Set<Part>()
        // Owned partitions of topics the member still subscribes to stay where they are.
        for m in 0..<n {
            for part in owned[m] where subscribed[m].contains(part.topic) {
                take(part, m)
                taken.insert(part)
            }
        }
        // The others, topics with the fewest eligible members first (Java's TopicComparator), each
        // to the eligible member with the fewest partitions, ties by member id.
        let topicOrder = topics.indices.sorted { (consumersOf[$0].count, $0) < (consumersOf[$1].count, $1) }
        for t in topicOrder {
            for p in 0..<counts[t] {
                let part = Part(topic: t, partition: Int32(p))
                guard !taken.contains(part) else { continue }
                var best = consumersOf[t][0]
                for m in consumersOf[t] where load[m] < load[best] { best = m }
                take(part, best)
            }
        }
        // Balance: first by moving only partitions their holder did not own (no revocation),
        // then by moving any.
        balance(movableOnly: true)
        balance(movableOnly: false)

        assignment = held.map { byTopic in
            byTopic.flatMap { t, ps in ps.map { Part(topic: t, partition: $0) } }.sorted()
        }
    }

    private mutating func take(_ part: Part, _ m: Int) {
        held[m][part.topic, default: []].insert(part.partition)
        if !ownedSet[m].contains(part) { unowned[m][part.topic, default: 0] += 1 }
        load[m] += 1
    }

    private mutating func give(_ part: Part, from m: Int) {
        held[m][part.topic]!.remove(part.partition)
        if held[m][part.topic]!.isEmpty { held[m][part.topic] = nil }
        if !ownedSet[m].contains(part) { unowned[m][part.topic]! -= 1 }
        load[m] -= 1
    }

    /// Whether `m` holds a partition of topic `t` that it may give away in this phase.
    private func canGive(_ m: Int, _ t: Int, movableOnly: Bool) -> Bool {
        movableOnly ? unowned[m][t, default: 0] > 0 : held[m][t] != nil
    }

    /// Moves partitions along chains of members until no chain helps: a chain X0 -> X1 -> ... -> Xk
    /// where each Xi holds a partition of a topic Xi+1 subscribes to, and X0 holds at least two
    /// more than Xk. Moving one partition along each link lowers X0 by one and raises Xk by one,
    /// others unchanged; each such move lowers the sum of squared loads, so this ends, and when no
    /// chain exists, the loads are as balanced as the subscriptions allow (no member could give to
    /// one with two fewer, even indirectly). Shortest chains first, so few partitions move.
    private mutating func balance(movableOnly: Bool) {
        let n = members.count
        while true {
            // Most loaded first, then member order.
            let order = (0..<n).sorted { load[$0] != load[$1] ? load[$0] > load[$1] : $0 < $1 }
            let minLoad = load.min()!
            var done = [Bool](repeating: false, count: n)
            var moved = false
            for source in order where !done[source] {
                if load[source] < minLoad + 2 { break }
                if let chain = findChain(from: source, movableOnly: movableOnly, done: &done) {
                    apply(chain, movableOnly: movableOnly)
                    moved = true
                    break
                }
            }
            if !moved { return }
        }
    }

    /// Breadth-first search from `source` for the least loaded member it can pass a partition to
    /// (then the shortest chain). Returns the links (from, to, topic), or nil if no member
    /// reachable has two partitions fewer; then no member reached can start a useful chain either
    /// (what they reach, `source` reaches), so they are marked done for this sweep.
    private func findChain(from source: Int, movableOnly: Bool, done: inout [Bool]) -> [(from: Int, to: Int, topic: Int)]? {
        var parent = [(from: Int, topic: Int)](repeating: (-1, -1), count: members.count)
        var visited = [Bool](repeating: false, count: members.count)
        // A topic passed on once reaches all its readers: no need to pass it on again.
        var topicExpanded = [Bool](repeating: false, count: topics.count)
        var queue = [source]
        visited[source] = true
        var head = 0
        var target: Int?
        while head < queue.count {
            let x = queue[head]
            head += 1
            if x != source, load[x] <= load[source] - 2, target.map({ load[x] < load[$0] }) ?? true {
                target = x
            }
            for t in held[x].keys.sorted() where !topicExpanded[t] && canGive(x, t, movableOnly: movableOnly) {
                topicExpanded[t] = true
                for y in consumersOf[t] where !visited[y] {
                    visited[y] = true
                    parent[y] = (x, t)
                    queue.append(y)
                }
            }
        }
        guard let target else {
            for m in queue { done[m] = true }
            return nil
        }
        var links: [(from: Int, to: Int, topic: Int)] = []
        var at = target
        while at != source {
            let p = parent[at]
            links.append((p.from, at, p.topic))
            at = p.from
        }
        return links.reversed()
    }

    /// Moves partitions along the chain: as many at once as every link can give, up to half the
    /// difference between its ends (so the end stays at most as loaded as the start).
    private mutating func apply(_ links: [(from: Int, to: Int, topic: Int)], movableOnly: Bool) {
        let difference = load[links[0].from] - load[links[links.count - 1].to]
        let available = links.map { movableOnly ? unowned[$0.from][$0.topic, default: 0] : held[$0.from][$0.topic]?.count ?? 0 }
        let count = max(1, min(difference / 2, available.min()!))
        for link in links {
            for _ in 0..<count { moveOne(link, movableOnly: movableOnly) }
        }
    }

    private mutating func moveOne(_ link: (from: Int, to: Int, topic: Int), movableOnly: Bool) {
        // Prefer giving a partition back to the member that owns it, then one the giver did not
        // own (in the first phase, only those), then the lowest.
        var best: (rank: (Int, Int, Int32), part: Part)?
        for p in held[link.from][link.topic]! {
            let part = Part(topic: link.topic, partition: p)
            let giverOwns = ownedSet[link.from].contains(part)
            if movableOnly && giverOwns { continue }
            let rank = (ownedSet[link.to].contains(part) ? 0 : 1, giverOwns ? 1 : 0, p)
            if best.map({ rank < $0.rank }) ?? true { best = (rank, part) }
        }
        let part = best!.part
        give(part, from: link.from)
        take(part, link.to)
    }

    // MARK: Cooperative adjustment

    /// Takes out of each member's assignment the partitions another member still claims: that
    /// member must revoke them first, and the follow-up rebalance assigns them.
    private mutating func adjustForCooperation() {
        for m in assignment.indices {
            assignment[m].removeAll { part in
                !ownedSet[m].contains(part) && (claimers[part] ?? []).contains { $0 != m }
            }
        }
    }
}
