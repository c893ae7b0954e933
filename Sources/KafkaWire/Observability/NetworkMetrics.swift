import KafkaProtocol
import Metrics

/// The network metrics of one client id: request latency per API, requests in flight, and failed
/// requests by API and error.
final class NetworkMetrics: Sendable {
    struct ErrorKey: Hashable, Sendable {
        var apiKey: Int16
        var error: String
    }

    private let latency: MetricCache<Int16, Metrics.Timer>
    private let errors: MetricCache<ErrorKey, Counter>
    private let inFlight: Meter

    init(clientId: String) {
        latency = MetricCache { key in
            Metrics.Timer(label: KafkaWireMetricNames.requestLatency,
                          dimensions: [("client_id", clientId), ("api", NetworkMetrics.apiName(key))])
        }
        errors = MetricCache { key in
            Counter(label: KafkaWireMetricNames.requestErrors,
                    dimensions: [("client_id", clientId), ("api", NetworkMetrics.apiName(key.apiKey)), ("error", key.error)])
        }
        inFlight = Meter(label: KafkaWireMetricNames.requestsInFlight, dimensions: [("client_id", clientId)])
    }

    static func apiName(_ key: Int16) -> String { ApiKey(rawValue: key)?.name ?? "api_\(key)" }

    func started() { inFlight.increment() }

    func finished(apiKey: Int16, nanos: UInt64) {
        inFlight.decrement()
        latency[apiKey].recordNanoseconds(Int64(clamping: nanos))
    }

    func failed(apiKey: Int16, error: String) {
        inFlight.decrement()
        errors[ErrorKey(apiKey: apiKey, error: error)].increment()
    }

    /// A broker error code in an answer (the request itself went through).
    func brokerError(apiKey: Int16, _ code: KafkaErrorCode) {
        errors[ErrorKey(apiKey: apiKey, error: code.name)].increment()
    }
}

extension NetworkError {
    /// A short, stable name for metrics.
    var metricName: String {
        switch self {
        case .resolveFailed: "resolve_failed"
        case .connectFailed: "connect_failed"
        case .connectTimedOut: "connect_timed_out"
        case .socketFailed: "socket_failed"
        case .connectionLost: "connection_lost"
        case .requestTimedOut: "request_timed_out"
        case .protocolViolation: "protocol_violation"
        case .closed: "closed"
        case .tlsHandshakeFailed: "tls_handshake_failed"
        }
    }
}
