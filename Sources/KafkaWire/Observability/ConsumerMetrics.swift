import Metrics

/// The metrics of one consumer (plain or group member), made once per topic or partition.
final class ConsumerMetrics: Sendable {
    let fetchLatency: Metrics.Timer
    let rebalances: Counter
    private let records: MetricCache<String, Counter>
    private let bytes: MetricCache<String, Counter>
    private let lagGauges: MetricCache<TopicPartition, Gauge>

    init(clientId: String, group: String) {
        fetchLatency = Metrics.Timer(label: KafkaWireMetricNames.fetchLatency, dimensions: [("client_id", clientId)])
        rebalances = Counter(label: KafkaWireMetricNames.consumerRebalances, dimensions: [("client_id", clientId), ("group", group)])
        records = MetricCache { topic in
            Counter(label: KafkaWireMetricNames.consumerRecords, dimensions: [("client_id", clientId), ("topic", topic)])
        }
        bytes = MetricCache { topic in
            Counter(label: KafkaWireMetricNames.consumerBytes, dimensions: [("client_id", clientId), ("topic", topic)])
        }
        lagGauges = MetricCache { tp in
            Gauge(label: KafkaWireMetricNames.consumerLag, dimensions: [
                ("client_id", clientId), ("topic", tp.topic), ("partition", String(tp.partition)), ("group", group),
            ])
        }
    }

    /// One topic's share of one fetch answer.
    func consumed(topic: String, records count: Int, bytes size: Int) {
        records[topic].increment(by: count)
        bytes[topic].increment(by: size)
    }

    func lag(_ tp: TopicPartition) -> Gauge { lagGauges[tp] }
}
