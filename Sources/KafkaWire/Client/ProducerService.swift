import Logging
import ServiceLifecycle

/// A producer as a swift-service-lifecycle `Service`: runs until graceful shutdown (or
/// cancellation), then closes the producer, delivering what it holds within `shutdownTimeoutMs`.
/// What could not be delivered is logged and handed to `onUndelivered`.
///
///     let producer = KafkaProducer(config: config)
///     let group = ServiceGroup(services: [KafkaProducerService(producer), httpServer], logger: logger)
///     try await group.run()
public struct KafkaProducerService: Service {
    public let producer: KafkaProducer
    public var shutdownTimeoutMs: Int
    public var onUndelivered: (@Sendable ([UndeliveredRecord]) -> Void)?

    public init(_ producer: KafkaProducer, shutdownTimeoutMs: Int = 30_000, onUndelivered: (@Sendable ([UndeliveredRecord]) -> Void)? = nil) {
        self.producer = producer
        self.shutdownTimeoutMs = shutdownTimeoutMs
        self.onUndelivered = onUndelivered
    }

    public func run() async throws {
        // Returns at graceful shutdown; throws if the task is cancelled first. Either way: close.
        try? await gracefulShutdown()
        let undelivered = await producer.close(timeoutMs: shutdownTimeoutMs)
        if !undelivered.isEmpty {
            producer.logger.error("records not delivered at shutdown", metadata: [
                "count": "\(undelivered.count)", "first": "\(undelivered[0])",
            ])
            onUndelivered?(undelivered)
        }
    }
}
