import HRMSMail
import HRMSServiceKit

extension NotificationService {
    static var openAPI: OpenAPIDocument {
        let record = OAS.object([
            "id": OAS.string(format: "uuid"), "event_id": OAS.string(), "employee_id": OAS.string(nullable: true),
            "recipient_email": OAS.string(), "recipient_name": OAS.string(nullable: true), "subject": OAS.string(),
            "template": OAS.string(), "template_data": OAS.anyObject, "status": OAS.string(enum: NotificationStatus.names),
            "channel": OAS.string(enum: ["smtp", "outbox"]), "attempts": OAS.integer(), "last_error": OAS.string(nullable: true),
            "retryable": OAS.boolean(), "created_at": OAS.string(format: "date-time"), "sent_at": OAS.string(nullable: true),
        ], required: ["id", "event_id", "recipient_email", "subject", "template", "template_data", "status", "channel",
                      "attempts", "retryable", "created_at"])
        let email = OAS.object([
            "to": OAS.string(format: "email", maxLength: 254), "subject": OAS.string(maxLength: 255, minLength: 1),
            "template": OAS.string(enum: MailTemplates.builtIn.names), "data": OAS.anyObject,
            "recipient_name": OAS.string(nullable: true, maxLength: 255), "employee_id": OAS.string(format: "uuid", nullable: true),
            "event_id": OAS.string(format: "uuid", nullable: true),
        ], required: ["to", "subject", "template"])
        let list = OAS.object(["total": OAS.integer(), "offset": OAS.integer(), "limit": OAS.integer(),
                               "items": OAS.array(OAS.ref("Notification"))], required: ["total", "offset", "limit", "items"])
        let one = OAS.ref("Notification")
        return OpenAPIDocument(title: "HRMS Notification service", paths: [
            "/api/v1/notifications/email": ["post": OAS.op("Send an email from a template (delivered after the answer)", body: email,
                                                           responses: [202: ("Accepted", one)])],
            "/api/v1/notifications": ["get": OAS.op("List, newest first", parameters: OAS.pagination + [
                OAS.queryParam("status", OAS.string(enum: NotificationStatus.names))], responses: [200: ("Notifications", OAS.ref("NotificationList"))])],
            "/api/v1/notifications/{id}": ["get": OAS.op("One notification", parameters: [OAS.pathParam("id")],
                                                         responses: [200: ("Notification", one)], errors: [404])],
            "/api/v1/notifications/employee/{employee_id}": ["get": OAS.op("An employee's notifications",
                parameters: [OAS.pathParam("employee_id")] + OAS.pagination, responses: [200: ("Notifications", OAS.ref("NotificationList"))], errors: [404])],
            "/api/v1/notifications/{id}/retry": ["put": OAS.op("Deliver a failed notification again", parameters: [OAS.pathParam("id")],
                                                               responses: [200: ("Notification", one)], errors: [404, 409])],
        ], schemas: ["Notification": record, "NotificationList": list])
    }
}
