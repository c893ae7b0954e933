import HRMSServiceKit
import NotificationService

await HRMSApp.main(.notification) { config in try NotificationService.definition(config) }
