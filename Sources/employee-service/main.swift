import EmployeeService
import HRMSServiceKit

await HRMSApp.main(EmployeeService.definition)
