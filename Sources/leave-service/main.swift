import HRMSServiceKit
import LeaveService

await HRMSApp.main(LeaveService.definition)
