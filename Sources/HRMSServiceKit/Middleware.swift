import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Metrics
import NIOConcurrencyHelpers
import Prometheus

extension HTTPField.Name {
    public static let correlationId = Self("X-Correlation-ID")!
    public static let requestId = Self("X-Request-ID")!
}

/// Request id and correlation id: the correlation id comes from `X-Correlation-ID` (made up when absent
/// or unreasonable), is echoed in the response, goes into every log line of the request and is passed
/// on by `ServiceClient` to every downstream call and into every event the request causes.
struct CorrelationMiddleware<Context: ServiceRequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        let incoming = request.headers[.correlationId].flatMap { CorrelationMiddleware.acceptable($0) ? $0 : nil }
        context.correlationId = incoming ?? UUID().uuidString.lowercased()
        context.requestId = UUID().uuidString.lowercased()
        context.userAgent = request.headers[.userAgent]
        context.logger[metadataKey: "correlation_id"] = "\(context.correlationId)"
        context.logger[metadataKey: "request_id"] = "\(context.requestId)"
        var response = try await next(request, context)
        response.headers[.correlationId] = context.correlationId
        response.headers[.requestId] = context.requestId
        return response
    }

    /// Printable ASCII, at most 128 characters: the id goes into headers, logs and events.
    static func acceptable(_ value: String) -> Bool {
        !value.isEmpty && value.utf8.count <= 128 && value.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F }
    }
}

/// The process's Prometheus registry. The kit's own HTTP metrics are recorded through `factory`, so
/// they reach the registry whether or not swift-metrics was bootstrapped; a service process
/// (`HRMSApp.main`) also bootstraps swift-metrics onto it, once, so that the libraries' metrics
/// (KafkaWire, the event pipeline) show in `/metrics` too. Apps built in tests leave the global
/// bootstrap to the test process (which may have its own test factory).
public enum HRMSMetrics {
    public static let registry = PrometheusCollectorRegistry()

    public static let factory: PrometheusMetricsFactory = {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
            .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10),
        ]
        return factory
    }()

    /// Called once by `HRMSApp.main`: swift-metrics allows one bootstrap per process.
    static func bootstrapProcess() { MetricsSystem.bootstrap(factory) }

    /// Prometheus text exposition of everything recorded.
    public static func exposition() -> String { registry.emitToString() }
}

/// `http_requests_total{method,route,status}` and `http_request_duration_seconds{method,route}`, by
/// route pattern (`/api/v1/employees/{id}`), not by raw path, so ids do not explode the label set.
struct MetricsMiddleware<Context: ServiceRequestContext>: RouterMiddleware {
    init() {}

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        let response = try await next(request, context)
        let route = context.endpointPath.map(MetricsMiddleware.pattern) ?? "unmatched"
        let method = request.method.rawValue
        Counter(label: "http_requests_total", dimensions: [("method", method), ("route", route), ("status", String(response.status.code))],
                factory: HRMSMetrics.factory).increment()
        let elapsed = ContinuousClock.now - start
        Timer(label: "http_request_duration_seconds", dimensions: [("method", method), ("route", route)], factory: HRMSMetrics.factory)
            .record(duration: elapsed)
        return response
    }

    /// Hummingbird writes parameters as `:id`; OpenAPI and our labels use `{id}`.
    static func pattern(_ path: String) -> String {
        path.split(separator: "/", omittingEmptySubsequences: false).map { $0.hasPrefix(":") ? "{\($0.dropFirst())}" : String($0) }.joined(separator: "/")
    }
}

/// Logs each request once it is answered (method, path, status, milliseconds) with the request's metadata.
struct AccessLogMiddleware<Context: ServiceRequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        let response = try await next(request, context)
        let ms = (ContinuousClock.now - start).components
        let millis = Double(ms.seconds) * 1000 + Double(ms.attoseconds) / 1e15
        let level: Logger.Level = response.status.code >= 500 ? .error : .info
        context.logger.log(level: level, "request", metadata: [
            "method": "\(request.method.rawValue)", "path": "\(request.uri.path)", "status": "\(response.status.code)",
            "ms": "\(String(format: "%.1f", millis))",
        ])
        return response
    }
}
