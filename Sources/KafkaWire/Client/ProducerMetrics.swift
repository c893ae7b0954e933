import Metrics
import Synchronization

/// The producer's swift-metrics instruments, updated once per batch (never per record):
///
/// - `kafkawire_producer_records_sent_total`, `kafkawire_producer_bytes_sent_total` (batch bytes
///   on the wire), `kafkawire_producer_batch_size_bytes` (recorder): by client_id and topic
/// - `kafkawire_producer_errors_total`, `kafkawire_producer_retries_total`: records, by client_id,
///   topic and error (the Kafka error name, or the client-side failure kind)
/// - `kafkawire_producer_buffer_bytes` (gauge): bytes held, by client_id
final class ProducerMetrics: Sendable {
    private struct TopicInstruments {
        let records: Counter
        let bytes: Counter
        let batchSize: Recorder
    }
    private let clientId: String
    private let topics = Mutex<[String: TopicInstruments]>([:])
    private let bufferBytes: Gauge
    private let factory: any MetricsFactory

    init(clientId: String, factory: any MetricsFactory) {
        self.clientId = clientId
        self.factory = factory
        bufferBytes = Gauge(label: "kafkawire_producer_buffer_bytes", dimensions: [("client_id", clientId)], factory: factory)
    }

    private func instruments(_ topic: String) -> TopicInstruments {
        if let t = topics.withLock({ $0[topic] }) { return t }
        let dims = [("client_id", clientId), ("topic", topic)]
        let t = TopicInstruments(
            records: Counter(label: "kafkawire_producer_records_sent_total", dimensions: dims, factory: factory),
            bytes: Counter(label: "kafkawire_producer_bytes_sent_total", dimensions: dims, factory: factory),
            batchSize: Recorder(label: "kafkawire_producer_batch_size_bytes", dimensions: dims, factory: factory))
        topics.withLock { $0[topic] = t }
        return t
    }

    func sent(topic: String, records: Int, bytes: Int) {
        let t = instruments(topic)
        t.records.increment(by: records)
        t.bytes.increment(by: bytes)
        t.batchSize.record(bytes)
    }

    func failed(topic: String, error: KafkaError, records: Int) {
        Counter(label: "kafkawire_producer_errors_total", dimensions: [("client_id", clientId), ("topic", topic), ("error", error.metricName)], factory: factory)
            .increment(by: records)
    }

    func retried(topic: String, error: KafkaError, records: Int) {
        Counter(label: "kafkawire_producer_retries_total", dimensions: [("client_id", clientId), ("topic", topic), ("error", error.metricName)], factory: factory)
            .increment(by: records)
    }

    func buffer(bytes: Int) { bufferBytes.record(bytes) }
}

extension KafkaError {
    /// A short, bounded label for metrics: the Kafka error name, or the kind of client failure.
    var metricName: String {
        switch self {
        case let .broker(code, _): code.name
        case .network: "network"
        case .malformedResponse: "malformed_response"
        case .unsupportedVersion: "unsupported_version"
        case .unknownTopicOrPartition: "UNKNOWN_TOPIC_OR_PARTITION"
        case .leaderNotAvailable: "LEADER_NOT_AVAILABLE"
        case .timedOut: "timed_out"
        case .invalidConfiguration: "invalid_configuration"
        case .corruptRecords: "corrupt_records"
        case .recordEncoding: "record_encoding"
        case .closed: "closed"
        }
    }
}
