import HRMSServiceKit
import AttendanceService

await HRMSApp.main(AttendanceService.definition)
