import ComplianceService
import HRMSServiceKit

await HRMSApp.main(.compliance, ComplianceService.definition)
