import Foundation
import Testing
@testable import KafkaWire

// Partition assignors ("range", "roundrobin", "cooperative-sticky") and the consumer protocol's
// encoding: known cases translated from Kafka's RangeAssignorTest, RoundRobinAssignorTest and
// (Cooperative|Abstract)StickyAssignorTest, properties over seeded random groups, and the
// subscriptions and assignments real peers sent (Fixtures/*-group-join-sync).

typealias AssignorPlan = [String: [String: [Int32]]]

private func member(
    _ id: String, _ topics: [String], owned: [String: [Int32]] = [:], generation: Int32 = -1,
    instance: String? = nil, userData: [UInt8]? = nil
) -> GroupMemberSubscription {
    GroupMemberSubscription(
        memberId: id, groupInstanceId: instance, topics: topics, ownedPartitions: owned,
        generation: generation, userData: userData)
}

/// Runs rebalances the way members would: each applies its assignment (owns exactly what it got,
/// one generation later) and the group rebalances again. Returns the assignment of every round.
private func rebalanceRounds(
    _ assignor: any PartitionAssignor, _ members: [GroupMemberSubscription], _ counts: [String: Int], rounds: Int
) -> [AssignorPlan] {
    var members = members
    var plans: [AssignorPlan] = []
    for _ in 0..<rounds {
        let plan = assignor.assign(members: members, partitionCounts: counts)
        plans.append(plan)
        let generation = max(members.map(\.generation).max() ?? 0, 0) + 1
        for i in members.indices {
            members[i].ownedPartitions = plan[members[i].memberId] ?? [:]
            members[i].generation = generation
        }
    }
    return plans
}

@Suite struct AssignorTests {
    // MARK: Range (RangeAssignorTest)

    @Suite struct Range {
        let range = RangeAssignor()

        @Test func nameAndProtocol() {
            #expect(range.name == "range")
            #expect(range.rebalanceProtocol == .eager)
        }

        @Test func oneConsumerNoTopicOrNonexistentTopic() {
            #expect(range.assign(members: [member("c", [])], partitionCounts: ["t": 3]) == ["c": [:]])
            #expect(range.assign(members: [member("c", ["t"])], partitionCounts: [:]) == ["c": [:]])
            #expect(range.assign(members: [member("c", ["t"])], partitionCounts: ["t": 0]) == ["c": [:]])
            #expect(range.assign(members: [], partitionCounts: ["t": 3]) == [:])
        }

        @Test func oneConsumerOnlyItsTopics() {
            let plan = range.assign(members: [member("c", ["t1"])], partitionCounts: ["t1": 3, "t2": 3])
            #expect(plan == ["c": ["t1": [0, 1, 2]]])
        }

        @Test func twoConsumersOneTopic() {
            #expect(range.assign(members: [member("c1", ["t"]), member("c2", ["t"])], partitionCounts: ["t": 1])
                == ["c1": ["t": [0]], "c2": [:]])
            #expect(range.assign(members: [member("c1", ["t"]), member("c2", ["t"])], partitionCounts: ["t": 2])
                == ["c1": ["t": [0]], "c2": ["t": [1]]])
        }

        @Test func twoConsumersTwoTopicsSixPartitions() {
            let plan = range.assign(
                members: [member("C1", ["t1", "t2"]), member("C0", ["t1", "t2"])], partitionCounts: ["t1": 3, "t2": 3])
            #expect(plan == ["C0": ["t1": [0, 1], "t2": [0, 1]], "C1": ["t1": [2], "t2": [2]]])
        }

        @Test func multipleConsumersMixedTopics() {
            let plan = range.assign(
                members: [member("consumer1", ["t1"]), member("consumer2", ["t1", "t2"]), member("consumer3", ["t1"])],
                partitionCounts: ["t1": 3, "t2": 2])
            #expect(plan == [
                "consumer1": ["t1": [0]],
                "consumer2": ["t1": [1], "t2": [0, 1]],
                "consumer3": ["t1": [2]],
            ])
        }

        /// testStaticMemberRangeAssignmentPersistent: static members sort by instance id, before
        /// dynamic members, so their assignment survives a restart with a new member id.
        @Test func staticMembersSortByInstanceId() {
            let counts = ["t1": 5, "t2": 5]
            let before = range.assign(
                members: [
                    member("z-consumer", ["t1", "t2"], instance: "instance1"),
                    member("a-consumer", ["t1", "t2"], instance: "instance2"),
                    member("0-dynamic", ["t1", "t2"]),
                ], partitionCounts: counts)
            #expect(before == [
                "z-consumer": ["t1": [0, 1], "t2": [0, 1]],
                "a-consumer": ["t1": [2, 3], "t2": [2, 3]],
                "0-dynamic": ["t1": [4], "t2": [4]],
            ])
            let after = range.assign(
                members: [
                    member("new-id", ["t1", "t2"], instance: "instance1"),
                    member("a-consumer", ["t1", "t2"], instance: "instance2"),
                    member("0-dynamic", ["t1", "t2"]),
                ], partitionCounts: counts)
            #expect(after["new-id"] == before["z-consumer"])
        }

        @Test func javaStringOrderForMemberIds() {
            // U+1F600 sorts after U+FF5E by scalar value but before it in UTF-16 (Java's order: its
            // surrogate pair starts with 0xD83D).
            let plan = range.assign(members: [member("\u{FF5E}", ["t"]), member("\u{1F600}", ["t"])], partitionCounts: ["t": 2])
            #expect(plan == ["\u{1F600}": ["t": [0]], "\u{FF5E}": ["t": [1]]])
        }
    }

    // MARK: Round robin (RoundRobinAssignorTest)

    @Suite struct RoundRobin {
        let roundRobin = RoundRobinAssignor()

        @Test func nameAndProtocol() {
            #expect(roundRobin.name == "roundrobin")
            #expect(roundRobin.rebalanceProtocol == .eager)
        }

        @Test func twoConsumersTwoTopicsSixPartitions() {
            let plan = roundRobin.assign(
                members: [member("c2", ["t1", "t2"]), member("c1", ["t1", "t2"])], partitionCounts: ["t1": 3, "t2": 3])
            #expect(plan == ["c1": ["t1": [0, 2], "t2": [1]], "c2": ["t1": [1], "t2": [0, 2]]])
        }

        @Test func multipleConsumersMixedTopics() {
            let plan = roundRobin.assign(
                members: [member("consumer1", ["t1"]), member("consumer2", ["t1", "t2"]), member("consumer3", ["t1"])],
                partitionCounts: ["t1": 3, "t2": 2])
            #expect(plan == [
                "consumer1": ["t1": [0]],
                "consumer2": ["t1": [1], "t2": [0, 1]],
                "consumer3": ["t1": [2]],
            ])
        }

        @Test func twoConsumersOneTopicOnePartitionAndNoTopic() {
            #expect(roundRobin.assign(members: [member("c1", ["t"]), member("c2", ["t"])], partitionCounts: ["t": 1])
                == ["c1": ["t": [0]], "c2": [:]])
            #expect(roundRobin.assign(members: [member("c1", ["x"]), member("c2", [])], partitionCounts: ["t": 1])
                == ["c1": [:], "c2": [:]])
        }

        @Test func staticMembersSortByInstanceId() {
            let plan = roundRobin.assign(
                members: [
                    member("a", ["t"], instance: "i2"), member("b", ["t"], instance: "i1"), member("0", ["t"]),
                ], partitionCounts: ["t": 4])
            #expect(plan == ["b": ["t": [0, 3]], "a": ["t": [1]], "0": ["t": [2]]])
        }
    }

    // MARK: Cooperative sticky (AbstractStickyAssignorTest, CooperativeStickyAssignorTest)

    @Suite struct CooperativeSticky {
        let sticky = CooperativeStickyAssignor()

        @Test func nameProtocolAndLookup() {
            #expect(sticky.name == "cooperative-sticky")
            #expect(sticky.rebalanceProtocol == .cooperative)
            #expect(Assignors.named("range")?.name == "range")
            #expect(Assignors.named("roundrobin")?.name == "roundrobin")
            #expect(Assignors.named("cooperative-sticky")?.rebalanceProtocol == .cooperative)
            #expect(Assignors.named("sticky") == nil)
        }

        @Test func oneConsumer() {
            #expect(sticky.assign(members: [member("c", [])], partitionCounts: ["t": 3]) == ["c": [:]])
            #expect(sticky.assign(members: [member("c", ["t"])], partitionCounts: [:]) == ["c": [:]])
            #expect(sticky.assign(members: [member("c", ["t1"])], partitionCounts: ["t1": 3, "t2": 3]) == ["c": ["t1": [0, 1, 2]]])
            #expect(sticky.assign(members: [], partitionCounts: ["t": 3]) == [:])
        }

        @Test func twoConsumersTwoTopicsSixPartitions() {
            let plan = sticky.assign(
                members: [member("consumer1", ["t1", "t2"]), member("consumer2", ["t1", "t2"])],
                partitionCounts: ["t1": 3, "t2": 3])
            #expect(plan == ["consumer1": ["t1": [0, 2], "t2": [1]], "consumer2": ["t1": [1], "t2": [0, 2]]])
        }

        @Test func multipleConsumersMixedTopicSubscriptions() {
            let plan = sticky.assign(
                members: [member("consumer1", ["t1"]), member("consumer2", ["t1", "t2"]), member("consumer3", ["t1"])],
                partitionCounts: ["t1": 3, "t2": 2])
            #expect(plan == ["consumer1": ["t1": [0, 2]], "consumer2": ["t2": [0, 1]], "consumer3": ["t1": [1]]])
        }

        /// testAddRemoveConsumerOneTopic: a new member gets the moved partition one rebalance later.
        @Test func addRemoveConsumerOneTopic() {
            let first = sticky.assign(members: [member("c1", ["t"])], partitionCounts: ["t": 3])
            #expect(first == ["c1": ["t": [0, 1, 2]]])

            let members = [member("c1", ["t"], owned: ["t": [0, 1, 2]], generation: 1), member("c2", ["t"], generation: -1)]
            let rounds = rebalanceRounds(sticky, members, ["t": 3], rounds: 3)
            #expect(rounds[0] == ["c1": ["t": [0, 1]], "c2": [:]])  // t-2 is revoked first
            #expect(rounds[1] == ["c1": ["t": [0, 1]], "c2": ["t": [2]]])
            #expect(rounds[2] == rounds[1])

            // c1 leaves: c2 keeps its partition and gets the rest at once (nobody else claims them).
            let alone = sticky.assign(members: [member("c2", ["t"], owned: ["t": [2]], generation: 3)], partitionCounts: ["t": 3])
            #expect(alone == ["c2": ["t": [0, 1, 2]]])
        }

        /// testAllConsumersHaveOwnedPartitionInvalidatedWhenClaimedByMultipleConsumersInSameGenerationWithEqualPartitionsPerConsumer
        @Test func sameGenerationDoubleClaimIsInvalidated() {
            let plan = sticky.assign(
                members: [
                    member("c1", ["t"], owned: ["t": [0, 1]], generation: 1),
                    member("c2", ["t"], owned: ["t": [0, 2]], generation: 1),
                    member("c3", ["t"], generation: 1),
                ], partitionCounts: ["t": 3])
            // t-0 goes to c3, but only once c1 and c2 have given it up.
            #expect(plan == ["c1": ["t": [1]], "c2": ["t": [2]], "c3": [:]])
        }

        @Test func higherGenerationClaimWins() {
            let members = [
                member("c1", ["t"], owned: ["t": [0, 1]], generation: 2),
                member("c2", ["t"], owned: ["t": [0, 2]], generation: 1),
                member("c3", ["t"], generation: -1),
            ]
            let rounds = rebalanceRounds(sticky, members, ["t": 3], rounds: 3)
            // c1 keeps t-0 (its claim is newer), gives up t-1 (over quota) which c3 gets next round.
            #expect(rounds[0] == ["c1": ["t": [0]], "c2": ["t": [2]], "c3": [:]])
            #expect(rounds[1] == ["c1": ["t": [0]], "c2": ["t": [2]], "c3": ["t": [1]]])
            #expect(rounds[2] == rounds[1])
        }

        /// A subscription v0/v1 from a Java member carries its generation in the user data.
        @Test func generationFromJavaUserData() {
            #expect(CooperativeStickyAssignor.subscriptionUserData(generation: 7) == [0, 0, 0, 7])
            #expect(CooperativeStickyAssignor.subscriptionUserData(generation: -1) == [0xFF, 0xFF, 0xFF, 0xFF])
            #expect(CooperativeStickyAssignor.generation(of: member("m", [], userData: [0, 0, 1, 2])) == 258)
            #expect(CooperativeStickyAssignor.generation(of: member("m", [], userData: [0, 0, 1])) == -1)
            #expect(CooperativeStickyAssignor.generation(of: member("m", [], generation: 4, userData: [0, 0, 1, 2])) == 4)
            let plan = sticky.assign(
                members: [
                    member("c1", ["t"], owned: ["t": [0]], userData: CooperativeStickyAssignor.subscriptionUserData(generation: 5)),
                    member("c2", ["t"], owned: ["t": [0]], userData: CooperativeStickyAssignor.subscriptionUserData(generation: 4)),
                ], partitionCounts: ["t": 2])
            #expect(plan == ["c1": ["t": [0]], "c2": ["t": [1]]])
        }

        @Test func ownedPartitionsOfUnsubscribedDeletedOrShrunkTopicsAreDropped() {
            let members = [
                // c1 no longer reads t2 (but still claims t2-0); "gone" was deleted; t1-9 does not exist.
                member("c1", ["t1"], owned: ["t1": [0, 9], "t2": [0], "gone": [0]], generation: 3),
                member("c2", ["t1", "t2"], owned: ["t1": [1]], generation: 3),
            ]
            let rounds = rebalanceRounds(sticky, members, ["t1": 2, "t2": 2], rounds: 3)
            // c2 alone reads t2, so for balance t1-1 moves to c1; t2-0 waits one round for c1 to
            // revoke it, t1-1 for c2 to revoke it.
            #expect(rounds[0] == ["c1": ["t1": [0]], "c2": ["t2": [1]]])
            #expect(rounds[1] == ["c1": ["t1": [0, 1]], "c2": ["t2": [0, 1]]])
            #expect(rounds[2] == rounds[1])
        }

        /// Where Java's general algorithm stops (no single move helps), a chain of moves balances:
        /// A reads x, B reads x and y, C reads y; A holds 3, B 2, C 1.
        @Test func chainOfMovesBalancesPartialOverlap() {
            let members = [
                member("A", ["x"], owned: ["x": [0, 1, 2]], generation: 1),
                member("B", ["x", "y"], owned: ["y": [0, 1]], generation: 1),
                member("C", ["y"], owned: ["y": [2]], generation: 1),
            ]
            let rounds = rebalanceRounds(sticky, members, ["x": 3, "y": 3], rounds: 3)
            // Round 1: A gives one x partition to B and B one y partition to C, both held back.
            #expect(rounds[0].mapValues { $0.values.map(\.count).reduce(0, +) } == ["A": 2, "B": 1, "C": 1])
            #expect(rounds[1].mapValues { $0.values.map(\.count).reduce(0, +) } == ["A": 2, "B": 2, "C": 2])
            #expect(rounds[1]["A"]!["x"]!.allSatisfy { [0, 1, 2].contains($0) })
            #expect(rounds[1]["C"]!["y"]!.contains(2))
            #expect(rounds[2] == rounds[1])
        }

        @Test func newMemberJoinsBalancedGroup() {
            // 3 members with 4 partitions each of t (12), a fourth joins: each keeps 3.
            let members = [
                member("m1", ["t"], owned: ["t": [0, 1, 2, 3]], generation: 2),
                member("m2", ["t"], owned: ["t": [4, 5, 6, 7]], generation: 2),
                member("m3", ["t"], owned: ["t": [8, 9, 10, 11]], generation: 2),
                member("m4", ["t"]),
            ]
            let rounds = rebalanceRounds(sticky, members, ["t": 12], rounds: 2)
            #expect(rounds[0] == ["m1": ["t": [0, 1, 2]], "m2": ["t": [4, 5, 6]], "m3": ["t": [8, 9, 10]], "m4": [:]])
            #expect(rounds[1]["m4"] == ["t": [3, 7, 11]])
        }

        @Test func inputOrderDoesNotMatter() {
            var members = [
                member("b", ["t1", "t2"], owned: ["t1": [0, 1, 2]], generation: 1),
                member("a", ["t1"], owned: ["t2": [0]], generation: 1),
                member("c", ["t2"]),
                member("d", ["t1", "t2"], owned: ["t1": [1]], generation: 0),
            ]
            let counts = ["t1": 5, "t2": 4]
            let reference = sticky.assign(members: members, partitionCounts: counts)
            members.reverse()
            #expect(sticky.assign(members: members, partitionCounts: counts) == reference)
            members.swapAt(0, 2)
            #expect(sticky.assign(members: members, partitionCounts: counts) == reference)
        }
    }

    // MARK: Properties over random groups

    @Suite struct Properties {
        struct Case {
            var members: [GroupMemberSubscription]
            var counts: [String: Int]
            /// Topics subscribed by some member and existing.
            var live: [String: Int]
        }

        static func randomCase(_ rng: inout AssignorTestRNG, identical: Bool = false) -> Case {
            let topicNames = ["t0", "t1", "t2", "t3"].prefix(Int.random(in: 1...4, using: &rng))
            var counts: [String: Int] = [:]
            for t in topicNames where identical || Int.random(in: 0..<8, using: &rng) > 0 {
                counts[t] = Int.random(in: 1...12, using: &rng)
            }
            if Int.random(in: 0..<4, using: &rng) == 0 { counts["unsubscribed"] = 3 }
            let memberCount = Int.random(in: 1...8, using: &rng)
            let shared = Array(counts.keys.filter { $0 != "unsubscribed" }.sorted())
            var members: [GroupMemberSubscription] = []
            for i in 0..<memberCount {
                var topics = identical ? shared : topicNames.filter { _ in Bool.random(using: &rng) }
                if !identical, topics.isEmpty, Int.random(in: 0..<3, using: &rng) > 0 { topics = [topicNames.randomElement(using: &rng)!] }
                let id = "member-\(UInt16.random(in: 0...UInt16.max, using: &rng))-\(i)"
                let instance = Int.random(in: 0..<4, using: &rng) == 0 ? "instance-\(Int.random(in: 0..<100, using: &rng))-\(i)" : nil
                members.append(GroupMemberSubscription(
                    memberId: id, groupInstanceId: instance, topics: topics.shuffled(using: &rng),
                    generation: Int32.random(in: -1...3, using: &rng)))
            }
            // Prior ownership: each partition (also of unsubscribed and out-of-range ones) owned by
            // nobody, one member, or (rarely) two.
            for t in topicNames {
                for p in 0..<(counts[t] ?? 2) + 1 {
                    var owners = Int.random(in: 0..<10, using: &rng)
                    owners = owners < 4 ? 0 : owners < 9 ? 1 : 2
                    for _ in 0..<owners {
                        let m = Int.random(in: 0..<memberCount, using: &rng)
                        members[m].ownedPartitions[t, default: []].append(Int32(p))
                    }
                }
            }
            let subscribed = Set(members.flatMap(\.topics))
            return Case(members: members, counts: counts, live: counts.filter { subscribed.contains($0.key) })
        }

        /// Every member present, each partition at most once, only subscribed existing partitions,
        /// sorted lists, no empty topic lists. Returns the failure, if any.
        static func validity(_ plan: AssignorPlan, _ c: Case, complete: Bool) -> String? {
            guard Set(plan.keys) == Set(c.members.map(\.memberId)) else { return "members \(plan.keys.sorted())" }
            var seen = Set<String>()
            for m in c.members {
                for (topic, partitions) in plan[m.memberId]! {
                    guard m.topics.contains(topic) else { return "\(m.memberId) got \(topic), not subscribed" }
                    guard !partitions.isEmpty, partitions == partitions.sorted() else { return "\(topic): \(partitions)" }
                    for p in partitions {
                        guard p >= 0, Int(p) < c.counts[topic] ?? 0 else { return "\(topic)-\(p) does not exist" }
                        guard seen.insert("\(topic)-\(p)").inserted else { return "\(topic)-\(p) twice" }
                    }
                }
            }
            if complete {
                let total = c.live.values.reduce(0, +)
                guard seen.count == total else { return "\(seen.count) of \(total) partitions assigned" }
            }
            return nil
        }

        static func loads(_ plan: AssignorPlan) -> [String: Int] {
            plan.mapValues { $0.values.map(\.count).reduce(0, +) }
        }

        /// No member could pass a partition, directly or along a chain of members that read the
        /// topics involved, to a member with two fewer: the loads cannot be balanced better.
        static func optimallyBalanced(_ plan: AssignorPlan, _ c: Case) -> String? {
            let load = loads(plan)
            let readers: [String: [String]] = Dictionary(grouping: c.members.flatMap { m in m.topics.map { ($0, m.memberId) } }, by: \.0)
                .mapValues { $0.map(\.1) }
            for source in c.members.map(\.memberId) {
                var visited: Set<String> = [source]
                var expanded = Set<String>()
                var queue = [source]
                while let x = queue.popLast() {
                    if load[x]! <= load[source]! - 2 { return "\(source) (\(load[source]!)) could pass to \(x) (\(load[x]!))" }
                    for topic in plan[x]!.keys where expanded.insert(topic).inserted {
                        for y in readers[topic] ?? [] where visited.insert(y).inserted { queue.append(y) }
                    }
                }
            }
            return nil
        }

        /// The cooperative rule: a member gets a partition another member claims only if its own
        /// claim is the newest (a strictly higher generation than every other claim).
        static func cooperativeSafety(_ plan: AssignorPlan, _ members: [GroupMemberSubscription]) -> String? {
            for m in members {
                for (topic, partitions) in plan[m.memberId] ?? [:] {
                    for p in partitions {
                        let others = members.filter { $0.memberId != m.memberId && ($0.ownedPartitions[topic] ?? []).contains(p) }
                        guard !others.isEmpty else { continue }
                        let mine = (m.ownedPartitions[topic] ?? []).contains(p) ? CooperativeStickyAssignor.generation(of: m) : nil
                        guard let mine, others.allSatisfy({ CooperativeStickyAssignor.generation(of: $0) < mine }) else {
                            return "\(m.memberId) got \(topic)-\(p) still claimed by \(others.map(\.memberId))"
                        }
                    }
                }
            }
            return nil
        }

        static let caseCount = 500

        @Test func eagerAssignorsAreValidAndComplete() {
            var rng = AssignorTestRNG(seed: 0x5EED_0001)
            for i in 0..<Self.caseCount {
                let c = Self.randomCase(&rng)
                for assignor in [RangeAssignor(), RoundRobinAssignor()] as [any PartitionAssignor] {
                    let plan = assignor.assign(members: c.members, partitionCounts: c.counts)
                    if let failure = Self.validity(plan, c, complete: true) {
                        Issue.record("case \(i), \(assignor.name): \(failure)")
                        return
                    }
                    // Deterministic whatever the order of the members.
                    let again = assignor.assign(members: c.members.reversed(), partitionCounts: c.counts)
                    #expect(again == plan, "case \(i), \(assignor.name): depends on member order")
                }
                // Range: within each topic, the members reading it differ by at most one.
                let plan = RangeAssignor().assign(members: c.members, partitionCounts: c.counts)
                for topic in c.live.keys {
                    let sizes = c.members.filter { $0.topics.contains(topic) }.map { plan[$0.memberId]![topic]?.count ?? 0 }
                    #expect(sizes.max()! - sizes.min()! <= 1, "case \(i), range, \(topic): \(sizes)")
                }
            }
        }

        @Test func eagerAssignorsBalanceIdenticalSubscriptions() {
            var rng = AssignorTestRNG(seed: 0x5EED_0002)
            for i in 0..<Self.caseCount {
                let c = Self.randomCase(&rng, identical: true)
                let rr = Self.loads(RoundRobinAssignor().assign(members: c.members, partitionCounts: c.counts)).values
                #expect(rr.max()! - rr.min()! <= 1, "case \(i), roundrobin: \(rr)")
            }
        }

        @Test func cooperativeStickyIsValidSafeAndConvergesInTwoRounds() {
            var rng = AssignorTestRNG(seed: 0x5EED_0003)
            let sticky = CooperativeStickyAssignor()
            for i in 0..<Self.caseCount {
                let c = Self.randomCase(&rng, identical: i % 3 == 0)
                let rounds = rebalanceRounds(sticky, c.members, c.counts, rounds: 3)
                // Inputs of each round, to check the cooperative rule against.
                var inputs = [c.members]
                for plan in rounds.dropLast() {
                    let generation = max(inputs.last!.map(\.generation).max() ?? 0, 0) + 1
                    inputs.append(inputs.last!.map { m in
                        var m = m
                        m.ownedPartitions = plan[m.memberId]!
                        m.generation = generation
                        return m
                    })
                }
                for (r, plan) in rounds.enumerated() {
                    if let failure = Self.validity(plan, c, complete: r > 0) ?? Self.cooperativeSafety(plan, inputs[r]) {
                        Issue.record("case \(i), round \(r + 1): \(failure)")
                        return
                    }
                }
                if let failure = Self.optimallyBalanced(rounds[1], c) {
                    Issue.record("case \(i), round 2 not balanced: \(failure)")
                    return
                }
                if i % 3 == 0 {
                    let loads = Self.loads(rounds[1]).values
                    #expect(loads.max()! - loads.min()! <= 1, "case \(i): \(loads)")
                }
                #expect(rounds[2] == rounds[1], "case \(i): not stable after round 2")
                let shuffled = sticky.assign(members: c.members.shuffled(using: &rng), partitionCounts: c.counts)
                #expect(shuffled == rounds[0], "case \(i): depends on member order")
            }
        }

        /// A balanced group (identical subscriptions) gains or loses one member: every member keeps
        /// min(owned, quota) of its partitions, and only as many partitions move as balance needs.
        @Test func cooperativeStickyMovesOnlyWhatBalanceNeeds() {
            var rng = AssignorTestRNG(seed: 0x5EED_0004)
            let sticky = CooperativeStickyAssignor()
            for i in 0..<Self.caseCount {
                var c = Self.randomCase(&rng, identical: true)
                for j in c.members.indices { c.members[j].ownedPartitions = [:]; c.members[j].generation = -1 }
                let balanced = rebalanceRounds(sticky, c.members, c.counts, rounds: 1)[0]
                var members = c.members.map { m in
                    var m = m
                    m.ownedPartitions = balanced[m.memberId]!
                    m.generation = 4
                    return m
                }
                if members.count > 1, Bool.random(using: &rng) {
                    members.remove(at: Int.random(in: 0..<members.count, using: &rng))
                } else {
                    members.append(member("joiner-\(i)", members[0].topics))
                }
                let plan = sticky.assign(members: members, partitionCounts: c.counts)
                let total = c.live.values.reduce(0, +)
                let n = members.count
                let (minQuota, maxQuota, overMin) = (total / n, (total + n - 1) / n, total % n)
                var kept = 0
                var ownMax = 0
                var optimal = 0
                for m in members {
                    let owned = m.ownedPartitions.values.map(\.count).reduce(0, +)
                    let keeps = m.ownedPartitions.reduce(0) { sum, e in
                        sum + e.value.filter { (plan[m.memberId]![e.key] ?? []).contains($0) }.count
                    }
                    #expect(keeps >= min(owned, minQuota), "case \(i): \(m.memberId) kept \(keeps) of \(owned)")
                    kept += keeps
                    optimal += min(owned, minQuota)
                    if owned >= maxQuota && maxQuota > minQuota { ownMax += 1 }
                }
                optimal += min(ownMax, overMin)
                #expect(kept == optimal, "case \(i): kept \(kept), could keep \(optimal)")
                // And the follow-up round completes it, balanced, without taking anything away.
                let next = rebalanceRounds(sticky, members.map { m in
                    var m = m
                    m.ownedPartitions = plan[m.memberId]!
                    return m
                }, c.counts, rounds: 1)[0]
                let loads = Self.loads(next).values
                #expect(loads.max()! - loads.min()! <= 1 && loads.reduce(0, +) == total, "case \(i): \(Self.loads(next))")
                for m in members {
                    for (topic, ps) in plan[m.memberId]! {
                        #expect(Set(ps).isSubset(of: next[m.memberId]![topic] ?? []), "case \(i): \(m.memberId) lost \(topic)")
                    }
                }
            }
        }

        /// 300 members reading overlapping two thirds of 30 topics of 60 partitions (1800): from
        /// scratch, and when one member owned everything before the others joined.
        @Test(arguments: [false, true])
        func largeGroupIsFast(oneOwnedAll: Bool) {
            var members: [GroupMemberSubscription] = []
            var counts: [String: Int] = [:]
            for t in 0..<30 { counts["topic-\(t)"] = 60 }
            for m in 0..<300 {
                members.append(member("member-\(m)", (0..<30).filter { ($0 + m) % 3 != 0 || m == 0 }.map { "topic-\($0)" }))
            }
            if oneOwnedAll {
                members[0].ownedPartitions = counts.mapValues { (0..<Int32($0)).map { $0 } }
                members[0].generation = 1
            }
            let clock = ContinuousClock()
            var rounds: [AssignorPlan] = []
            let elapsed = clock.measure {
                rounds = rebalanceRounds(CooperativeStickyAssignor(), members, counts, rounds: 2)
            }
            let c = Case(members: members, counts: counts, live: counts)
            #expect(Self.validity(rounds[1], c, complete: true) == nil)
            #expect(Self.optimallyBalanced(rounds[1], c) == nil)
            if oneOwnedAll { #expect(Self.loads(rounds[0])["member-0"] == 6) }
            #expect(elapsed < .seconds(20))
        }
    }

    // MARK: Consumer protocol encoding

    @Suite struct Encoding {
        @Test func subscriptionV0KnownBytes() throws {
            let bytes: [UInt8] = [0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x61, 0xFF, 0xFF, 0xFF, 0xFF]
            #expect(ConsumerProtocol.encodeSubscription(
                topics: ["a"], ownedPartitions: ["a": [0]], generation: 3, userData: nil, rackId: "r", version: 0) == bytes)
            let s = try ConsumerProtocol.decodeSubscription(bytes, memberId: "m", groupInstanceId: "i")
            #expect(s == GroupMemberSubscription(memberId: "m", groupInstanceId: "i", topics: ["a"]))
        }

        @Test func subscriptionV3KnownBytes() throws {
            let bytes: [UInt8] = [
                0x00, 0x03,  // version
                0x00, 0x00, 0x00, 0x02, 0x00, 0x01, 0x61, 0x00, 0x01, 0x62,  // topics [a, b]
                0x00, 0x00, 0x00, 0x02, 0xAB, 0xCD,  // user data
                0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x62,  // owned: b
                0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x04,  // [1, 4]
                0x00, 0x00, 0x00, 0x07,  // generation 7
                0x00, 0x02, 0x72, 0x31,  // rack "r1"
            ]
            #expect(ConsumerProtocol.encodeSubscription(
                topics: ["b", "a", "b"], ownedPartitions: ["b": [4, 1, 4], "a": []], generation: 7, userData: [0xAB, 0xCD],
                rackId: "r1") == bytes)
            let s = try ConsumerProtocol.decodeSubscription(bytes, memberId: "m", groupInstanceId: nil)
            #expect(s == GroupMemberSubscription(
                memberId: "m", topics: ["a", "b"], ownedPartitions: ["b": [1, 4]], generation: 7, userData: [0xAB, 0xCD], rackId: "r1"))
        }

        @Test func assignmentKnownBytes() throws {
            let bytes: [UInt8] = [
                0x00, 0x03,
                0x00, 0x00, 0x00, 0x02,
                0x00, 0x01, 0x61, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02,  // a [2]
                0x00, 0x01, 0x62, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03,  // b [0, 3]
                0xFF, 0xFF, 0xFF, 0xFF,
            ]
            #expect(ConsumerProtocol.encodeAssignment(["b": [3, 0], "a": [2], "c": []], userData: nil) == bytes)
            let a = try ConsumerProtocol.decodeAssignment(bytes)
            #expect(a.partitions == ["a": [2], "b": [0, 3]])
            #expect(a.userData == nil)
            #expect(try ConsumerProtocol.decodeAssignment([]).partitions.isEmpty)
        }

        @Test(arguments: Int16(0)...3)
        func subscriptionRoundTrip(version: Int16) throws {
            let bytes = ConsumerProtocol.encodeSubscription(
                topics: ["t2", "t1"], ownedPartitions: ["t1": [2, 0], "t2": [5]], generation: 42, userData: [1, 2, 3],
                rackId: "rack-a", version: version)
            #expect(bytes.prefix(2) == [0, UInt8(version)])
            let s = try ConsumerProtocol.decodeSubscription(bytes, memberId: "m", groupInstanceId: "static")
            #expect(s.memberId == "m" && s.groupInstanceId == "static")
            #expect(s.topics == ["t1", "t2"])
            #expect(s.userData == [1, 2, 3])
            #expect(s.ownedPartitions == (version >= 1 ? ["t1": [0, 2], "t2": [5]] : [:]))
            #expect(s.generation == (version >= 2 ? 42 : -1))
            #expect(s.rackId == (version >= 3 ? "rack-a" : nil))
            // Null user data and rack survive too.
            let bare = try ConsumerProtocol.decodeSubscription(
                ConsumerProtocol.encodeSubscription(topics: [], ownedPartitions: [:], generation: -1, userData: nil, rackId: nil, version: version),
                memberId: "m", groupInstanceId: nil)
            #expect(bare == GroupMemberSubscription(memberId: "m", topics: []))
        }

        @Test(arguments: Int16(0)...3)
        func assignmentRoundTrip(version: Int16) throws {
            let plan: [String: [Int32]] = ["x": [3, 1, 2], "y": [0]]
            for userData: [UInt8]? in [nil, [], [9, 8]] {
                let bytes = ConsumerProtocol.encodeAssignment(plan, userData: userData, version: version)
                let decoded = try ConsumerProtocol.decodeAssignment(bytes)
                #expect(decoded.partitions == ["x": [1, 2, 3], "y": [0]])
                #expect(decoded.userData == userData)
            }
        }

        /// Newer versions only append fields: read the v3 prefix, ignore the rest.
        @Test func newerVersionsReadAsV3() throws {
            var sub = ConsumerProtocol.encodeSubscription(
                topics: ["t"], ownedPartitions: ["t": [1]], generation: 9, userData: nil, rackId: "r")
            sub[1] = 7
            sub += [0x00, 0x00, 0x00, 0x05, 0x12, 0x34]  // fields of v7 we do not know
            let s = try ConsumerProtocol.decodeSubscription(sub, memberId: "m", groupInstanceId: nil)
            #expect(s == GroupMemberSubscription(memberId: "m", topics: ["t"], ownedPartitions: ["t": [1]], generation: 9, rackId: "r"))

            var asg = ConsumerProtocol.encodeAssignment(["t": [1]], userData: [5])
            asg[1] = 4
            asg += [0x01, 0x02]
            #expect(try ConsumerProtocol.decodeAssignment(asg).partitions == ["t": [1]])
            // Out-of-range versions are clamped on encoding.
            #expect(ConsumerProtocol.encodeAssignment(["t": [1]], userData: nil, version: 9).prefix(2) == [0, 3])
        }

        @Test func emptyRackIsNone() throws {
            let bytes = ConsumerProtocol.encodeSubscription(topics: ["t"], ownedPartitions: [:], generation: -1, userData: [], rackId: "")
            #expect(try ConsumerProtocol.decodeSubscription(bytes, memberId: "m", groupInstanceId: nil).rackId == nil)
        }

        @Test func malformedInputThrows() {
            let good = ConsumerProtocol.encodeSubscription(topics: ["abc"], ownedPartitions: ["abc": [1]], generation: 1, userData: [1], rackId: "r")
            for cut in 0..<good.count {
                #expect(throws: (any Error).self) { try ConsumerProtocol.decodeSubscription(Array(good.prefix(cut)), memberId: "m", groupInstanceId: nil) }
            }
            #expect(throws: (any Error).self) { try ConsumerProtocol.decodeSubscription([0xFF, 0xFF, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF], memberId: "m", groupInstanceId: nil) }
            let asg = ConsumerProtocol.encodeAssignment(["abc": [1, 2]], userData: [3])
            for cut in 1..<asg.count {
                #expect(throws: (any Error).self) { try ConsumerProtocol.decodeAssignment(Array(asg.prefix(cut))) }
            }
            // A huge array count is refused before anything is allocated.
            #expect(throws: (any Error).self) { try ConsumerProtocol.decodeAssignment([0, 0, 0x7F, 0xFF, 0xFF, 0xFF]) }
        }
    }

    // MARK: Real peers (Fixtures/*-group-join-sync)

    @Suite struct Captures {
        struct Frame: Decodable {
            var file: String
            var direction: String
            var connection: Int
            var api_name: String
            var api_version: Int16
            var correlation_id: Int32
        }

        static let fixtures = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures")

        static func frames(_ folder: String) throws -> [Frame] {
            struct Index: Decodable { var frames: [Frame] }
            let data = try Data(contentsOf: fixtures.appendingPathComponent(folder).appendingPathComponent("index.json"))
            return try JSONDecoder().decode(Index.self, from: data).frames
        }

        static func bytes(_ folder: String, _ frame: Frame) throws -> [UInt8] {
            [UInt8](try Data(contentsOf: fixtures.appendingPathComponent(folder).appendingPathComponent(frame.file)))
        }

        /// A request body after its header (v1: key, version, correlation id, client id; v2 adds tagged fields).
        static func request<R: KafkaRequest>(_ type: R.Type, _ folder: String, _ frame: Frame) throws -> R {
            var r = WireReader(try bytes(folder, frame))
            #expect(try r.readInt16() == R.apiKey)
            #expect(try r.readInt16() == frame.api_version)
            #expect(try r.readInt32() == frame.correlation_id)
            _ = try r.readNullableString(compact: false)
            if R.requestHeaderVersion(frame.api_version) >= 2 { _ = try r.readTaggedFields() }
            let body = try R(from: &r, version: frame.api_version)
            #expect(r.isAtEnd)
            return body
        }

        /// A response body after its header (v0: correlation id; v1 adds tagged fields).
        static func response<R: KafkaResponse>(_ type: R.Type, _ folder: String, _ frame: Frame) throws -> R {
            var r = WireReader(try bytes(folder, frame))
            #expect(try r.readInt32() == frame.correlation_id)
            if R.responseHeaderVersion(frame.api_version) >= 1 { _ = try r.readTaggedFields() }
            let body = try R(from: &r, version: frame.api_version)
            #expect(r.isAtEnd)
            return body
        }

        /// kcat (librdkafka 2.16): subscription v3 for "range" and "roundrobin" with empty user data,
        /// no owned partitions, generation -1 and an empty rack; assignment v0 for kw-group [0, 1, 2, 3].
        @Test func kcat() throws {
            let folder = "kcat-group-join-sync"
            let frames = try Self.frames(folder)
            let joins = frames.filter { $0.api_name == "JoinGroup" && $0.direction == "c2s" }
            #expect(joins.count == 2)
            for frame in joins {
                let join = try Self.request(JoinGroupRequest.self, folder, frame)
                #expect(join.protocolType == "consumer")
                #expect(join.protocols.map(\.name) == ["range", "roundrobin"])
                for p in join.protocols {
                    #expect(p.metadata.prefix(2) == [0, 3])
                    let s = try ConsumerProtocol.decodeSubscription(p.metadata, memberId: join.memberId, groupInstanceId: join.groupInstanceId)
                    #expect(s == GroupMemberSubscription(memberId: join.memberId, topics: ["kw-group"], userData: []))
                    // Our encoding of the same subscription is byte for byte librdkafka's.
                    #expect(ConsumerProtocol.encodeSubscription(
                        topics: ["kw-group"], ownedPartitions: [:], generation: -1, userData: [], rackId: "") == p.metadata)
                }
            }
            // The JoinGroup response hands the leader (kcat, alone) its own subscription.
            let joined = try frames.filter { $0.api_name == "JoinGroup" && $0.direction == "s2c" }
                .map { try Self.response(JoinGroupResponse.self, folder, $0) }
                .first { $0.errorCode == 0 }!
            #expect(joined.protocolName == "range")
            let members = try joined.members.map {
                try ConsumerProtocol.decodeSubscription($0.metadata, memberId: $0.memberId, groupInstanceId: $0.groupInstanceId)
            }
            #expect(members.map(\.topics) == [["kw-group"]])
            let plan = RangeAssignor().assign(members: members, partitionCounts: ["kw-group": 4])

            let syncRequest = try Self.request(SyncGroupRequest.self, folder, frames.first { $0.api_name == "SyncGroup" && $0.direction == "c2s" }!)
            #expect(syncRequest.assignments.count == 1)
            for a in syncRequest.assignments {
                #expect(a.assignment.prefix(2) == [0, 0])
                #expect(try ConsumerProtocol.decodeAssignment(a.assignment).partitions == plan[a.memberId]!)
                #expect(ConsumerProtocol.encodeAssignment(plan[a.memberId]!, userData: [], version: 0) == a.assignment)
            }
            let synced = try Self.response(SyncGroupResponse.self, folder, frames.first { $0.api_name == "SyncGroup" && $0.direction == "s2c" }!)
            let assignment = try ConsumerProtocol.decodeAssignment(synced.assignment)
            #expect(assignment.partitions == ["kw-group": [0, 1, 2, 3]])
            #expect(assignment.userData == [])
        }

        /// aiokafka 0.14: subscription v0 ("roundrobin" only) with empty user data; assignment v0.
        /// The second generation has two members: our round robin gives what aiokafka's did.
        @Test func aiokafka() throws {
            let folder = "aiokafka-group-join-sync"
            let frames = try Self.frames(folder)
            let joins = try frames.filter { $0.api_name == "JoinGroup" && $0.direction == "c2s" }
                .map { try Self.request(JoinGroupRequest.self, folder, $0) }
            #expect(joins.count >= 3)
            for join in joins {
                #expect(join.protocols.map(\.name) == ["roundrobin"])
                let metadata = join.protocols[0].metadata
                #expect(metadata.prefix(2) == [0, 0])
                let s = try ConsumerProtocol.decodeSubscription(metadata, memberId: join.memberId, groupInstanceId: nil)
                #expect(s == GroupMemberSubscription(memberId: join.memberId, topics: ["kw-group"], userData: []))
                #expect(ConsumerProtocol.encodeSubscription(
                    topics: ["kw-group"], ownedPartitions: [:], generation: -1, userData: [], rackId: nil, version: 0) == metadata)
            }

            // Every leader's SyncGroup: recompute from the JoinGroup response it answers.
            let responses = try frames.filter { $0.api_name == "JoinGroup" && $0.direction == "s2c" }
                .map { (frame: $0, body: try Self.response(JoinGroupResponse.self, folder, $0)) }
                .filter { $0.body.errorCode == 0 && $0.body.leader == $0.body.memberId }
            #expect(responses.count == 2)
            var sawTwoMembers = false
            for leader in responses {
                let members = try leader.body.members.map {
                    try ConsumerProtocol.decodeSubscription($0.metadata, memberId: $0.memberId, groupInstanceId: $0.groupInstanceId)
                }
                let plan = RoundRobinAssignor().assign(members: members, partitionCounts: ["kw-group": 4])
                let syncFrame = frames.first {
                    $0.api_name == "SyncGroup" && $0.direction == "c2s" && $0.connection == leader.frame.connection
                        && $0.correlation_id > leader.frame.correlation_id
                }!
                let sync = try Self.request(SyncGroupRequest.self, folder, syncFrame)
                #expect(sync.generationId == leader.body.generationId)
                #expect(Set(sync.assignments.map(\.memberId)) == Set(members.map(\.memberId)))
                for a in sync.assignments {
                    #expect(try ConsumerProtocol.decodeAssignment(a.assignment).partitions == plan[a.memberId]!)
                    #expect(ConsumerProtocol.encodeAssignment(plan[a.memberId]!, userData: [], version: 0) == a.assignment)
                }
                if members.count == 2 {
                    sawTwoMembers = true
                    #expect(plan.values.map { $0["kw-group"]! }.sorted { $0[0] < $1[0] } == [[0, 2], [1, 3]])
                }
            }
            #expect(sawTwoMembers)

            // What the members got: all of kw-group first, then [0, 2] and [1, 3].
            let got = try frames.filter { $0.api_name == "SyncGroup" && $0.direction == "s2c" }
                .map { try ConsumerProtocol.decodeAssignment(Self.response(SyncGroupResponse.self, folder, $0).assignment).partitions }
            #expect(got.first == ["kw-group": [0, 1, 2, 3]])
            #expect(Set(got.dropFirst()) == [["kw-group": [0, 2]], ["kw-group": [1, 3]]])
        }
    }
}

/// A small seeded generator, so that the random cases are the same on every run.
struct AssignorTestRNG: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
