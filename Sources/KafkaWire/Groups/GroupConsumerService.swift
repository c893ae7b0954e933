import ServiceLifecycle

/// A group consumer is a swift-service-lifecycle `Service`: add it to a `ServiceGroup` next to the
/// services that read its `records`. `run()` returns when the consumer stops (closed, or failed:
/// then it throws the error). On graceful shutdown or cancellation it closes: fetching stops,
/// records still buffered are not handed out, processed offsets are committed (with
/// `enable.auto.commit`), the rebalance handler sees the partitions revoked and the member leaves
/// the group, so that another member gets its partitions at once instead of after the session
/// timeout. All of it within `closeTimeoutMs`, broker or no broker.
extension KafkaGroupConsumer: Service {
    public func run() async throws {
        let stop = Signal()
        let group = groupTask.withLock { $0 }
        // Ends the wait when the consumer stops on its own (close() elsewhere, a fatal error).
        let watcher = Task {
            await group?.value
            stop.signal()
        }
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                await stop.wait(until: nil)
            } onGracefulShutdown: {
                stop.signal()
            }
        } onCancel: {
            stop.signal()
        }
        watcher.cancel()
        await close()
        if let fatal = membership.withLock({ $0.fatal }) { throw fatal }
    }
}
