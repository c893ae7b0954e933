import Foundation
import HRMSEventPipeline
import HRMSMail
import HRMSServiceKit
import HRMSServiceSupport

/// The Notification service's side of the notification consumer (issue 6): templates, the same
/// mailer as `POST /notifications/email`, and the `notifications` table.
extension NotificationService {
    /// The built-in template for each notification event type (used when the event's
    /// `template_name` is not a known one).
    static let templateByEventType: [String: String] = [
        "user.created": "account_created", "user.password_changed": "password_changed",
        "user.suspended": "account_suspended", "user.activated": "account_activated", "user.deleted": "account_deleted",
        "user.role_changed": "role_changed", "employee.created": "employee_created", "employee.updated": "employee_updated",
        "leave.requested": "leave_requested", "leave.approved": "leave_approved", "leave.rejected": "leave_rejected",
        "leave.cancelled": "leave_cancelled", "attendance.marked": "attendance_marked",
        "compliance.violation": "compliance_violation",
    ]

    /// The template an event is rendered with: its own `template_name` when the service knows it,
    /// else the one of its type, else the name it gave (rendering then fails: dead letter).
    static func template(eventType: String, data: NotificationData) -> String {
        if MailTemplates.builtIn.templates[data.templateName] != nil { return data.templateName }
        return templateByEventType[eventType] ?? data.templateName
    }

    /// The consumer's settings; a bad value stops the start with a line naming it.
    static func consumerSettings(_ config: ServiceConfig) throws(ConfigError) -> NotificationConsumer.Config {
        do {
            return try .fromEnvironment(config.env.values)
        } catch {
            throw ConfigError(variable: "notification consumer", reason: error.description)
        }
    }

    /// The consumer running in this process (the service with NOTIFICATION_CONSUMER_ENABLED, or the worker).
    static func makeConsumer(_ settings: NotificationConsumer.Config, env: ServiceEnvironment, mailer: Mailer) -> NotificationConsumer {
        NotificationConsumer(config: settings, store: EventNotificationStore(db: env.db, channel: mailer.channel),
                             renderer: EventNotificationRenderer(), deliverer: MailerDeliverer(mailer: mailer), logger: env.logger)
    }
}

struct EventNotificationRenderer: NotificationRenderer {
    func render(eventType: String, data: NotificationData) throws -> RenderedNotification {
        let mail = try NotificationService.render(NotificationService.template(eventType: eventType, data: data),
                                                  data: data.templateData, recipientName: data.recipientName, subject: data.subject)
        return RenderedNotification(to: data.recipientEmail, toName: data.recipientName, subject: mail.subject,
                                    textBody: mail.text, htmlBody: mail.html)
    }
}

/// A refusal no retry can fix (5xx, a malformed address): the consumer dead-letters at once.
struct PermanentMailFailure: PermanentDeliveryError, CustomStringConvertible {
    var error: MailError
    var description: String { "\(error)" }
}

/// Delivery through the service's one `Mailer` (SMTP_URL, or the local outbox kept as delivered).
struct MailerDeliverer: NotificationDeliverer {
    let mailer: Mailer

    func deliver(_ message: RenderedNotification, eventId: String) async throws {
        // A notification made from an event has the event id as its id (see EventNotificationStore).
        do {
            try await mailer.deliver(id: eventId, to: MailAddress(message.to, name: message.toName),
                                     mail: RenderedMail(subject: message.subject, text: message.textBody, html: message.htmlBody ?? ""),
                                     eventId: eventId)
        } catch {
            if error.isRetryable { throw error }
            throw PermanentMailFailure(error: error)
        }
    }
}

/// The consumer's outcomes in the `notifications` table, one row per event id, so that they show
/// in `GET /api/v1/notifications` (and by employee when the event's data names one).
struct EventNotificationStore: NotificationStore {
    let db: Database
    let channel: String

    /// Sent, or being sent by `POST /notifications/email` with the same event id (the HTTP fallback).
    func alreadyHandled(eventId: String) async throws -> Bool {
        try await db.queryOne("SELECT id FROM notifications WHERE event_id = ? AND status IN ('sent', 'pending')",
                              [eventId.lowercased()]) != nil
    }

    func recordOutcome(_ o: NotificationOutcome) async throws {
        let eventId = o.eventId.lowercased()
        let now = Timestamp.now()
        let sent = o.status == .sent
        let status: NotificationStatus = sent ? .sent : .failed
        let employeeId: String? = if case .string(let text)? = o.data.templateData["employee_id"], let uuid = UUID(uuidString: text) {
            uuid.uuidString.lowercased()
        } else {
            nil
        }
        let dataText = String(decoding: try JSONEncoder.sorted.encode(o.data.templateData), as: UTF8.self)
        let template = NotificationService.template(eventType: o.eventType, data: o.data)
        // One row per event: a redelivery after a failure updates the row the first try made.
        try await db.execute("""
            INSERT INTO notifications (id, event_id, employee_id, recipient_email, recipient_name, subject, template, template_data,
              status, channel, attempts, last_error, retryable, created_at, updated_at, sent_at, event_type, correlation_id)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?)
            ON CONFLICT (event_id) DO UPDATE SET status = excluded.status, subject = excluded.subject,
              attempts = notifications.attempts + excluded.attempts, last_error = excluded.last_error,
              updated_at = excluded.updated_at, sent_at = excluded.sent_at
            """,
            [eventId, eventId, employeeId, o.recipientEmail, o.data.recipientName, o.subject, template, dataText,
             status.rawValue, channel, o.attempts, o.error, now, now, sent ? now : nil, o.eventType, o.correlationId])
    }
}
