import KafkaProtocol

/// The client side of a KIP-227 fetch session with one broker.
///
/// The first request of a session is full (epoch 0, every partition). When the broker answers with
/// a session id, later requests are incremental: they list only partitions whose fetch data changed
/// since the last request (a partition's offset moves whenever records were delivered), name removed
/// partitions in `forgottenTopicsData`, and carry the next epoch. The broker still answers for every
/// partition in the session that has data, and leaves out partitions with nothing new: their state
/// on our side simply stays as it was.
///
/// A broker that answers a full request with session id 0 keeps no session (Tansu does this); then
/// every request stays full, as without sessions. Session errors start a new session; a request
/// whose outcome is unknown (timeout, lost connection) makes the next one full too, since the broker
/// may or may not have advanced the epoch.
struct FetchSession: Sendable {
    /// What the broker holds for one partition of the session: what was last sent for it.
    struct PartitionData: Sendable, Equatable {
        var fetchOffset: Int64
        var maxBytes: Int32
    }

    /// One request's session fields and partitions.
    struct Plan: Sendable {
        var sessionId: Int32
        var sessionEpoch: Int32
        var isFull: Bool
        /// The partitions to list in the request, sorted by topic then partition.
        var send: [(TopicPartition, PartitionData)]
        /// Partitions to drop from the session, by topic (sorted).
        var forget: [(topic: String, partitions: [Int32])]
        /// The session's partitions once the broker has taken this request.
        var partitions: [TopicPartition: PartitionData]
    }

    static let initialEpoch: Int32 = 0
    static let finalEpoch: Int32 = -1

    let enabled: Bool
    /// The broker's id for the session, 0 while there is none.
    private(set) var id: Int32 = 0
    private(set) var epoch: Int32 = initialEpoch
    /// The partitions the broker holds for the session, as last sent.
    private(set) var partitions: [TopicPartition: PartitionData] = [:]

    init(enabled: Bool) { self.enabled = enabled }

    /// The next request for these partitions.
    func plan(_ wanted: [TopicPartition: PartitionData]) -> Plan {
        let ordered = wanted.sorted { ($0.key.topic, $0.key.partition) < ($1.key.topic, $1.key.partition) }
        guard enabled else {
            // Sessionless: id 0 with the final epoch asks for a plain full fetch.
            return Plan(sessionId: 0, sessionEpoch: Self.finalEpoch, isFull: true, send: ordered, forget: [], partitions: wanted)
        }
        guard id != 0, epoch != Self.initialEpoch else {
            // Epoch 0 opens a session (and closes the one with this id, if any).
            return Plan(sessionId: id, sessionEpoch: Self.initialEpoch, isFull: true, send: ordered, forget: [], partitions: wanted)
        }
        let changed = ordered.filter { partitions[$0.0] != $0.1 }
        var forget: [String: [Int32]] = [:]
        for tp in partitions.keys where wanted[tp] == nil { forget[tp.topic, default: []].append(tp.partition) }
        return Plan(
            sessionId: id, sessionEpoch: epoch, isFull: false, send: changed,
            forget: forget.keys.sorted().map { ($0, forget[$0]!.sorted()) }, partitions: wanted)
    }

    /// The broker took `plan` and answered with `sessionId` (top-level error none).
    mutating func accepted(_ plan: Plan, sessionId: Int32) {
        guard enabled else { return }
        if plan.isFull {
            id = sessionId
            epoch = sessionId == 0 ? Self.initialEpoch : 1
            partitions = sessionId == 0 ? [:] : plan.partitions
        } else if sessionId != id {
            // An incremental answer for another session: trust nothing, start over.
            restart()
        } else {
            partitions = plan.partitions
            epoch = epoch == Int32.max ? 1 : epoch + 1
        }
    }

    /// The broker rejected the session (FETCH_SESSION_ID_NOT_FOUND, INVALID_FETCH_SESSION_EPOCH):
    /// the next request opens a new one. An unknown id is not sent again.
    mutating func rejected(_ code: KafkaErrorCode) {
        if code == .fetchSessionIdNotFound { id = 0 }
        restart()
    }

    /// The request's outcome is unknown: the next one is full, closing this session if the broker
    /// still has it.
    mutating func restart() {
        epoch = Self.initialEpoch
        partitions = [:]
    }

    /// A request that closes the session (nil if there is none): no partitions, final epoch.
    func closeRequest() -> Plan? {
        guard enabled, id != 0 else { return nil }
        return Plan(sessionId: id, sessionEpoch: Self.finalEpoch, isFull: true, send: [], forget: [], partitions: [:])
    }
}
