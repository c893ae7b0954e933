import Foundation
import HRMSServiceKit
import HRMSServiceSupport
import NotificationService

// `notification-service [serve]`: the API (and the consumer unless disabled);
// `notification-service worker`: the notification consumer alone, with /health and /metrics.
guard let mode = ServiceMode.parse(CommandLine.arguments, executable: "notification-service") else { exit(2) }
await HRMSApp.main(.notification) { config in try NotificationService.definition(config, mode: mode) }
