import Metrics
import Synchronization

/// Every metric KafkaWire reports through swift-metrics, in one place (Prometheus-style names; every
/// metric also carries a `client_id` dimension). Recorded per request or per fetch response, never
/// per record, so the hot path stays cheap.
public enum KafkaWireMetricNames {
    // Network (every request, any client).
    /// Timer, dimension `api` (the Kafka API name, e.g. `Fetch`).
    public static let requestLatency = "kafkawire_request_latency_seconds"
    /// Meter: requests sent and not yet answered.
    public static let requestsInFlight = "kafkawire_requests_in_flight"
    /// Counter, dimensions `api` and `error` (a Kafka error name, or the network failure's kind).
    public static let requestErrors = "kafkawire_request_errors_total"

    // Consumer.
    /// Counter, dimension `topic`: records handed to the application's buffer.
    public static let consumerRecords = "kafkawire_consumer_records_total"
    /// Counter, dimension `topic`: key and value bytes of those records.
    public static let consumerBytes = "kafkawire_consumer_bytes_total"
    /// Timer: one Fetch round trip as the consumer sees it.
    public static let fetchLatency = "kafkawire_fetch_latency_seconds"
    /// Gauge, dimensions `topic`, `partition`, `group` (empty without a group): high watermark minus
    /// the position, after each fetch answer for the partition.
    public static let consumerLag = "kafkawire_consumer_lag"
    /// Counter, dimension `group`: assignments received (each completed rebalance).
    public static let consumerRebalances = "kafkawire_consumer_rebalances_total"
}

/// Metric objects made once and reused; swift-metrics factories may take a lock per creation.
/// Keyed by their varying dimension; the `client_id` dimension is fixed per cache.
final class MetricCache<Key: Hashable & Sendable, Metric: Sendable>: Sendable {
    private let made: Mutex<[Key: Metric]> = Mutex([:])
    private let make: @Sendable (Key) -> Metric

    init(_ make: @escaping @Sendable (Key) -> Metric) { self.make = make }

    subscript(key: Key) -> Metric {
        if let m = made.withLock({ $0[key] }) { return m }
        let m = make(key)
        return made.withLock { d in
            if let existing = d[key] { return existing }
            d[key] = m
            return m
        }
    }
}
