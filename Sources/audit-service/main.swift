import HRMSServiceKit
import AuditService

await HRMSApp.main(AuditService.definition)
