import HRMSServiceKit
import UserManagementService

await HRMSApp.main(.userManagement, UserManagementService.definition)
