import Foundation
import AuditService
import HRMSServiceKit
import HRMSServiceSupport

// `audit-service [serve]`: the API (and the consumer unless disabled); `audit-service worker`: the
// audit consumer alone, with /health and /metrics; `audit-service replay [--database-url URL]`:
// rebuilds the audit store from the topic.
if CommandLine.arguments.dropFirst().first == "replay" {
    exit(await AuditService.replayCommand(Array(CommandLine.arguments.dropFirst(2))))
}
guard let mode = ServiceMode.parse(CommandLine.arguments, executable: "audit-service", extra: ["replay [--database-url URL]"]) else { exit(2) }
await HRMSApp.main(.audit) { config in try AuditService.definition(config, mode: mode) }
