/// Every failure KafkaWire reports. Each case says whether retrying can help.
public enum KafkaError: Error, Sendable, CustomStringConvertible {
    /// Connecting, sending or receiving failed.
    case network(NetworkError)
    /// The broker's answer could not be decoded.
    case malformedResponse(BrokerAddress, apiKey: Int16, String)
    /// The broker answered with an error code.
    case broker(KafkaErrorCode, context: String)
    /// Neither side supports a version of the API both can use.
    case unsupportedVersion(apiKey: Int16, broker: ClosedRange<Int16>?, client: ClosedRange<Int16>)
    /// A topic or partition that the cluster does not have.
    case unknownTopicOrPartition(topic: String, partition: Int32?)
    /// A partition with no leader right now.
    case leaderNotAvailable(topic: String, partition: Int32)
    /// Waiting for something took longer than its deadline.
    case timedOut(String)
    /// A setting or argument that cannot work.
    case invalidConfiguration(String)
    /// Fetched records that do not decode (bad CRC, bad compression...): the consumer stops at
    /// `offset` rather than skip data silently.
    case corruptRecords(topic: String, partition: Int32, offset: Int64, RecordDecodingError)
    /// A batch could not be encoded (too large, compression failed).
    case recordEncoding(RecordEncodingError)
    /// The client (producer, consumer...) was closed.
    case closed

    public var description: String {
        switch self {
        case let .network(e): e.description
        case let .malformedResponse(a, key, why):
            "malformed \(ApiKey(rawValue: key)?.name ?? "api \(key)") response from \(a): \(why)"
        case let .broker(code, context): "\(context): \(code.name) (\(code.rawValue))"
        case let .unsupportedVersion(key, broker, client):
            "\(ApiKey(rawValue: key)?.name ?? "api \(key)"): broker supports \(broker.map { "v\($0.lowerBound)-v\($0.upperBound)" } ?? "nothing"), client needs v\(client.lowerBound)-v\(client.upperBound)"
        case let .unknownTopicOrPartition(topic, partition):
            partition.map { "unknown partition \(topic)/\($0)" } ?? "unknown topic \(topic)"
        case let .leaderNotAvailable(topic, partition): "no leader for \(topic)/\(partition)"
        case let .timedOut(what): "timed out: \(what)"
        case let .invalidConfiguration(why): "invalid configuration: \(why)"
        case let .corruptRecords(topic, partition, offset, e): "corrupt records in \(topic)/\(partition) at offset \(offset): \(e)"
        case let .recordEncoding(e): "cannot encode record batch: \(e)"
        case .closed: "client is closed"
        }
    }

    public var isRetriable: Bool {
        switch self {
        case let .network(e): e.isRetriable
        case let .broker(code, _): code.isRetriable
        case .unknownTopicOrPartition, .leaderNotAvailable, .timedOut: true
        case .malformedResponse: true  // the connection is replaced; a fresh one may do better
        case .unsupportedVersion, .invalidConfiguration, .recordEncoding, .corruptRecords, .closed: false
        }
    }

    /// Whether the failure means our view of the cluster is stale and metadata should be refreshed.
    public var invalidatesMetadata: Bool {
        switch self {
        case .network, .unknownTopicOrPartition, .leaderNotAvailable: true
        case let .broker(code, _): code.invalidatesMetadata
        default: false
        }
    }
}

extension KafkaErrorCode {
    /// Errors after which the client refreshes metadata before retrying.
    public var invalidatesMetadata: Bool {
        switch self {
        case .notLeaderOrFollower, .unknownTopicOrPartition, .leaderNotAvailable, .fencedLeaderEpoch,
             .unknownLeaderEpoch, .notCoordinator, .kafkaStorageError, .notEnoughReplicas,
             .unknownTopicId, .inconsistentTopicId:
            true
        default: false
        }
    }
}
