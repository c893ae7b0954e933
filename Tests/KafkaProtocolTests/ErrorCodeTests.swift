import Testing
import KafkaProtocol

@Suite("Error codes")
struct ErrorCodeTests {
    @Test func notLeaderOrFollower() {
        let e = KafkaErrorCode.notLeaderOrFollower
        #expect(e.rawValue == 6)
        #expect(e.name == "NOT_LEADER_OR_FOLLOWER")
        #expect(e.isRetriable)
        #expect(e.isKnown && e.isError)
        #expect(!e.message.isEmpty)
        #expect(e.description == "NOT_LEADER_OR_FOLLOWER (6)")
    }

    @Test func unknownTopicOrPartition() {
        let e = KafkaErrorCode(rawValue: 3)
        #expect(e == .unknownTopicOrPartition)
        #expect(e.name == "UNKNOWN_TOPIC_OR_PARTITION")
        #expect(e.isRetriable)
    }

    @Test func unknownCodeIsRepresentable() {
        let e = KafkaErrorCode(rawValue: 32000)
        #expect(e.rawValue == 32000)
        #expect(e.name == "UNKNOWN_CODE_32000")
        #expect(!e.isRetriable)
        #expect(!e.isKnown)
        #expect(e.isError)
    }

    @Test func someOthers() {
        #expect(KafkaErrorCode.none.rawValue == 0 && !KafkaErrorCode.none.isError && KafkaErrorCode.none.name == "NONE")
        #expect(KafkaErrorCode.offsetOutOfRange.rawValue == 1 && !KafkaErrorCode.offsetOutOfRange.isRetriable)
        #expect(KafkaErrorCode.leaderNotAvailable.rawValue == 5 && KafkaErrorCode.leaderNotAvailable.isRetriable)
        #expect(KafkaErrorCode.rebalanceInProgress.rawValue == 27)
        #expect(KafkaErrorCode.memberIdRequired.rawValue == 79)
        #expect(KafkaErrorCode.unknownServerError.rawValue == -1)
        #expect(KafkaErrorCode.coordinatorLoadInProgress.isRetriable)
        #expect(!KafkaErrorCode.topicAuthorizationFailed.isRetriable)
    }

    @Test func tableIsConsistent() {
        let all = KafkaErrorCode.allKnown
        #expect(all.count >= 130)
        #expect(Set(all).count == all.count)
        #expect(Set(all.map(\.name)).count == all.count)
        #expect(all.allSatisfy { $0.isKnown && !$0.name.hasPrefix("UNKNOWN_CODE_") })
    }
}
