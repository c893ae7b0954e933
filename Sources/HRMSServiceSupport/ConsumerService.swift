import Foundation
import HRMSServiceKit
import ServiceLifecycle

/// Runs an event consumer (issue 6) next to the HTTP server: stopped on graceful shutdown, and
/// restarted after a pause if it fails for good (a broker away for long), so the service's API
/// never goes down with its consumer.
public struct ConsumerService: Service {
    let name: String
    let logger: Logger
    let body: @Sendable () async throws -> Void

    public init(_ name: String, logger: Logger, run body: @escaping @Sendable () async throws -> Void) {
        self.name = name
        self.logger = logger
        self.body = body
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            var failures = 0
            while !Task.isCancelled {
                do {
                    try await body()
                    return
                } catch {
                    if Task.isCancelled { return }
                    failures += 1
                    let pauseMs = min(1_000 << min(failures - 1, 5), 30_000)
                    logger.error("\(name) stopped, restarting", metadata: ["error": "\(error)", "pause_ms": "\(pauseMs)"])
                    try? await Task.sleep(nanoseconds: UInt64(pauseMs) * 1_000_000)
                }
            }
        }
    }
}

/// How an HRMS service that hosts a consumer was started: `serve` (API and, when enabled, the
/// consumer) or `worker` (the consumer plus health and metrics routes only).
public enum ServiceMode: Sendable, Equatable {
    case serve
    case worker

    /// The mode from the executable's arguments; nil (after a usage line on stderr) for anything else.
    public static func parse(_ arguments: [String], executable: String, extra: [String] = []) -> ServiceMode? {
        switch arguments.dropFirst().first {
        case nil, "serve": return .serve
        case "worker": return .worker
        default:
            let commands = (["serve", "worker"] + extra).joined(separator: "|")
            FileHandle.standardError.write(Data("usage: \(executable) [\(commands)]\n".utf8))
            return nil
        }
    }

    /// Whether the consumer runs: always in a worker; in the service when `enabledVariable` (default
    /// true) is on and a broker is configured.
    public func runsConsumer(_ config: ServiceConfig, enabledVariable: String) throws(ConfigError) -> Bool {
        if self == .worker { return true }
        return try config.env.bool(enabledVariable, default: true) && config.env.string("KAFKA_BOOTSTRAP_SERVERS") != nil
    }
}
