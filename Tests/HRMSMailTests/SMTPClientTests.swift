import Foundation
import HRMSEvents
import NIOCore
import Testing

@testable import HRMSMail

private func realServer() throws -> RealSMTPServer { try RealSMTPServer.shared.get() }

private func client(port: Int = RealSMTPServer.port, user: String? = nil, password: String? = nil,
                    dataTimeout: TimeAmount = .seconds(20)) -> SMTPClient {
    SMTPClient(configuration: SMTPConfiguration(host: "127.0.0.1", port: port, username: user, password: password,
                                                heloName: "hrms.test", connectTimeout: .seconds(5),
                                                commandTimeout: .seconds(5), dataTimeout: dataTimeout))
}

private func message(to: String, subject: String, text: String = "hello\n", html: String? = nil) -> MailMessage {
    MailMessage(from: MailAddress("hrms@example.org", name: "HRMS"), to: [MailAddress(to, name: "Test User")],
                subject: subject, text: text, html: html)
}

private func crlf(_ text: String) -> String {
    text.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
        .replacingOccurrences(of: "\n", with: "\r\n")
}

/// Runs `body` and returns the MailError it throws (nil if it did not throw).
private func mailError(_ body: () async throws -> Void) async -> MailError? {
    do { try await body() } catch let error as MailError { return error } catch {
        Issue.record("not a MailError: \(error)")
    }
    return nil
}

@Suite("SMTP client against aiosmtpd")
struct SMTPClientTests {
    @Test func deliversExactBytesAndParsableMIME() async throws {
        let server = try realServer()
        let token = UUID().uuidString
        // Lines starting with ".", a lone ".", bare LF and CR line ends, a long line, trailing spaces,
        // "=" signs and non-ASCII text: all must arrive as written.
        let text = "Dear Zoë,\n.hidden line\n.\nwindows\r\nold mac\rtrailing space \n"
            + String(repeating: "long=line ", count: 30) + "\nend — ok ✓"
        let mail = MailMessage(from: MailAddress("hrms@example.org", name: "HR Team"),
                               to: [MailAddress("zoe@example.org", name: "Zoë \"Z\" Ünal"), MailAddress("b@example.org")],
                               subject: "Ünïcödé subject \(token) with a fairly long tail that needs folding ✓✓✓",
                               text: text)
        let receipt = try await client().send(mail)
        #expect(receipt.reply.code == 250)
        let got = try #require(try server.received(subjectContaining: token))
        // The server's copy (after it undid dot-stuffing) is exactly what we rendered.
        #expect(got.eml == (try mail.rendered()))
        #expect(got.json["subject"] as? String == mail.subject)
        #expect(got.json["mail_from"] as? String == "hrms@example.org")
        #expect(got.json["rcpt_tos"] as? [String] == ["zoe@example.org", "b@example.org"])
        #expect(got.json["to"] as? String == "\"Zoë \\\"Z\\\" Ünal\" <zoe@example.org>, b@example.org"
                || (got.json["to"] as? String)?.contains("<zoe@example.org>") == true)
        #expect(got.json["message_id"] as? String == mail.messageID)
        #expect((got.json["defects"] as? [String])?.isEmpty == true)
        // Python's parser keeps the CRLF line ends; the body gains only the message's final CRLF.
        #expect(got.parts["text/plain"] == crlf(text) + "\r\n")
        // Every line on the wire within RFC 5322's 78/998 limits, only ASCII.
        let lines = String(decoding: got.eml, as: UTF8.self).components(separatedBy: "\r\n")
        #expect(lines.allSatisfy { $0.utf8.count <= 998 })
        #expect(got.eml.allSatisfy { $0 < 128 })
    }

    @Test func multipartWithHTML() async throws {
        let server = try realServer()
        let token = UUID().uuidString
        let rendered = try MailTemplates.builtIn.render(
            "leave_approved", data: ["name": "Ana <b>", "leave_type": "annual", "start_date": "2026-12-01",
                                     "end_date": "2026-12-05", "approved_by": "Bo & Co"])
        try await client().send(message(to: "ana@example.org", subject: rendered.subject + " " + token,
                                        text: rendered.text, html: rendered.html))
        let got = try #require(try server.received(subjectContaining: token))
        #expect(got.json["content_type"] as? String == "multipart/alternative")
        // In a multipart body the CRLF before a boundary belongs to the boundary: the parts come back exact.
        #expect(got.parts["text/plain"] == crlf(rendered.text))
        #expect(got.parts["text/html"] == crlf(rendered.html))
        #expect(got.parts["text/html"]?.contains("Ana &lt;b&gt;") == true)
        #expect(got.parts["text/html"]?.contains("Bo &amp; Co") == true)
    }

    @Test func singlePartTextEndingInNewlineComesBackExact() async throws {
        let server = try realServer()
        let token = UUID().uuidString
        try await client().send(message(to: "a@example.org", subject: token, text: "line one\nline two\n"))
        let got = try #require(try server.received(subjectContaining: token))
        #expect(got.parts["text/plain"] == "line one\r\nline two\r\n")
    }

    @Test func authPlainWithCredentials() async throws {
        let server = try realServer()
        let token = UUID().uuidString
        try await client(user: "hrms", password: "s3cret!").send(message(to: "x@example.org", subject: token))
        let got = try #require(try server.received(subjectContaining: token))
        #expect(got.json["auth_user"] as? String == "hrms")
    }

    @Test func wrongPasswordIsPermanent() async throws {
        _ = try realServer()
        let error = await mailError { try await client(user: "hrms", password: "wrong").send(message(to: "x@example.org", subject: "no")) }
        guard case .permanent(535, _, "AUTH") = error else { Issue.record("got \(String(describing: error))"); return }
        #expect(error?.isRetryable == false)
    }

    @Test func rcpt550IsPermanentAnd451IsTransient() async throws {
        _ = try realServer()
        let permanent = await mailError { try await client().send(message(to: "reject-perm@example.org", subject: "x")) }
        #expect(permanent == .permanent(code: 550, message: "5.1.1 mailbox unavailable", stage: "RCPT TO"))
        #expect(permanent?.isRetryable == false)
        let transient = await mailError { try await client().send(message(to: "reject-temp@example.org", subject: "x")) }
        #expect(transient == .transient(code: 451, message: "4.3.0 try again later", stage: "RCPT TO"))
        #expect(transient?.isRetryable == true)
        let dataRefused = await mailError { try await client().send(message(to: "data-perm@example.org", subject: "x")) }
        #expect(dataRefused == .permanent(code: 554, message: "5.6.0 message refused", stage: "end of DATA"))
    }

    @Test func connectionDroppedMidDataIsTransient() async throws {
        _ = try realServer()
        let start = ContinuousClock.now
        let error = await mailError { try await client().send(message(to: "drop-data@example.org", subject: "x",
                                                                             text: String(repeating: "x", count: 200_000))) }
        guard case .connectionClosed = error else { Issue.record("got \(String(describing: error))"); return }
        #expect(error?.isRetryable == true)
        #expect(ContinuousClock.now - start < .seconds(5))   // closed promptly, not after a timeout
    }

    @Test func slowServerTimesOut() async throws {
        _ = try realServer()
        let error = await mailError { try await client(dataTimeout: .seconds(1)).send(message(to: "slow@example.org", subject: "x")) }
        #expect(error == .timeout(stage: "end of DATA"))
        #expect(error?.isRetryable == true)
    }

    @Test func refusedConnectionIsTransient() async {
        // Port 1 on loopback: nothing listens there, and unprivileged code never can.
        let error = await mailError { try await client(port: 1).send(message(to: "a@example.org", subject: "x")) }
        guard case .connectionFailed = error else { Issue.record("got \(String(describing: error))"); return }
        #expect(error?.isRetryable == true)
    }

    @Test func invalidAddressesNeverReachTheWire() async {
        for bad in ["no-at-sign", "a@b\r\nRCPT TO:<evil@x>", "<a@b>", "ü@example.org", "@example.org", "a@"] {
            let error = await mailError { try await client(port: 1).send(message(to: bad, subject: "x")) }
            #expect(error == .invalidAddress(bad))
        }
    }
}

@Suite("SMTP client against scripted servers")
struct ScriptedSMTPTests {
    @Test func silentServerTimesOutAtGreeting() async throws {
        let server = try await ScriptedServer(greeting: nil) { _ in nil }
        let error = await mailError {
            try await SMTPClient(configuration: SMTPConfiguration(host: "127.0.0.1", port: server.port,
                                                                  commandTimeout: .milliseconds(300)))
                .send(message(to: "a@example.org", subject: "x"))
        }
        #expect(error == .timeout(stage: "greeting"))
        await server.close()
    }

    @Test func garbageIsAProtocolViolation() async throws {
        let server = try await ScriptedServer(greeting: "HTTP/1.1 400 Bad Request\r\n\r\n") { _ in nil }
        let error = await mailError { try await client(port: server.port).send(message(to: "a@example.org", subject: "x")) }
        guard case .protocolViolation = error else { Issue.record("got \(String(describing: error))"); return }
        await server.close()
    }

    @Test func fallsBackToHELOAndReadsMultiLineReplies() async throws {
        let log = Log()
        let server = try await ScriptedServer(greeting: "220-first line\r\n220-second\r\n220 ready\r\n") { line in
            log.append(line)
            switch line.split(separator: " ").first?.uppercased() {
            case "EHLO": return "502 5.5.1 not implemented\r\n"
            case "HELO", "MAIL", "RCPT": return "250 ok\r\n"
            case "DATA": return "354 go\r\n"
            case "<END": return "250-accepted\r\n250 queued as 7\r\n"
            case "QUIT": return "221 bye\r\n"
            default: return "500 what\r\n"
            }
        }
        let receipt = try await client(port: server.port).send(message(to: "a@example.org", subject: "x"))
        #expect(receipt.reply == SMTPReply(code: 250, lines: ["accepted", "queued as 7"]))
        #expect(log.lines.prefix(4) == ["EHLO hrms.test", "HELO hrms.test", "MAIL FROM:<hrms@example.org>",
                                        "RCPT TO:<a@example.org>"])
        await server.close()
    }

    @Test func authLoginWhenPlainIsNotOffered() async throws {
        let log = Log()
        let server = try await ScriptedServer(greeting: "220 hi\r\n") { line in
            log.append(line)
            switch log.lines.count {
            case 1: return "250-hi\r\n250 AUTH LOGIN\r\n"
            case 2, 3: return "334 next\r\n"
            case 4: return "235 ok\r\n"
            default: return line == "DATA" ? "354 go\r\n" : "250 ok\r\n"
            }
        }
        try await client(port: server.port, user: "hrms", password: "pä ss").send(message(to: "a@example.org", subject: "x"))
        #expect(Array(log.lines[1...3]) == ["AUTH LOGIN", Data("hrms".utf8).base64EncodedString(),
                                            Data("pä ss".utf8).base64EncodedString()])
        await server.close()
    }

    @Test func credentialsWithoutAuthSupportAreRefused() async throws {
        let server = try await ScriptedServer(greeting: "220 hi\r\n") { line in
            line.hasPrefix("EHLO") ? "250-hi\r\n250 8BITMIME\r\n" : "221 bye\r\n"
        }
        let error = await mailError { try await client(port: server.port, user: "u", password: "p").send(message(to: "a@example.org", subject: "x")) }
        #expect(error == .authenticationUnsupported)
        await server.close()
    }
}

final class Log: @unchecked Sendable {   // guarded by the lock
    private let lock = NSLock()
    private var stored: [String] = []
    func append(_ line: String) { lock.withLock { stored.append(line) } }
    var lines: [String] { lock.withLock { stored } }
}

@Suite("MIME and DATA encoding")
struct MIMETests {
    @Test func dotStuffingAndLineEnds() {
        let payload = MIME.dataPayload(Array("a\n.b\r\n..c\rd\r\n.".utf8))
        #expect(payload == Array("a\r\n..b\r\n...c\r\nd\r\n..\r\n.\r\n".utf8))
        #expect(MIME.dataPayload(Array("x\r\n".utf8)) == Array("x\r\n.\r\n".utf8))
    }

    @Test func quotedPrintableLines() {
        let encoded = MIME.quotedPrintable(String(repeating: "é=", count: 100) + " \nend\t")
        let lines = encoded.components(separatedBy: "\r\n")
        #expect(lines.allSatisfy { $0.utf8.count <= 76 })
        #expect(lines.last == "end=09")
        #expect(!encoded.contains("= ") && !encoded.unicodeScalars.contains { !$0.isASCII })
    }

    @Test func encodedWordsStayShortAndWhole() {
        let words = MIME.encodedWords(String(repeating: "😀é", count: 40)).components(separatedBy: "\r\n ")
        #expect(words.count > 1)
        for word in words {
            #expect(word.count <= 75)
            let base64 = word.dropFirst(10).dropLast(2)
            let bytes = Data(base64Encoded: String(base64))
            #expect(bytes.flatMap { String(data: $0, encoding: .utf8) } != nil)   // no scalar cut in half
        }
        #expect(MIME.headerText("plain subject") == "plain subject")
        #expect(MIME.headerText("inject\r\nBcc: x@y") == "inject Bcc: x@y")
    }

    @Test func configurationFromURL() throws {
        let config = try SMTPConfiguration(url: "smtp://us%40er:p%3Ass@mail.example.org:2525")
        #expect(config.host == "mail.example.org" && config.port == 2525)
        #expect(config.username == "us@er" && config.password == "p:ss")
        #expect(try SMTPConfiguration(url: "smtp://127.0.0.1").port == 25)
        #expect(throws: MailError.self) { try SMTPConfiguration(url: "smtps://host:465") }
        #expect(throws: MailError.self) { try SMTPConfiguration(url: "smtp://:25") }
        #expect(throws: MailError.self) { try SMTPConfiguration(url: "smtp://host:99999") }
    }
}

@Suite("Templates")
struct TemplateTests {
    @Test func everyNotificationHasATemplate() {
        let names = Set(MailTemplates.builtIn.names)
        for needed in ["account_created", "password_changed", "account_suspended", "account_deleted", "leave_requested",
                       "leave_approved", "leave_rejected", "attendance_marked", "compliance_violation",
                       "employee_created", "employee_updated"] {
            #expect(names.contains(needed), "\(needed)")
        }
    }

    @Test func substitutesValues() throws {
        let mail = try MailTemplates.builtIn.render(
            "attendance_marked", data: ["name": "Ana", "date": "2026-11-27", "status": "late", "check_in_time": "09:40",
                                        "hours": 7.5])
        #expect(mail.subject == "Attendance recorded for 2026-11-27: late")
        #expect(mail.text.contains("Check-in: 09:40\nCheck-out: \n"))
        let violation = try MailTemplates.builtIn.render(
            "compliance_violation", data: ["name": "Bo", "policy_name": "user_deletion", "violations": ["legal hold", 3]])
        #expect(violation.text.contains("legal hold, 3"))
    }

    @Test func missingAndUnknownAreErrors() {
        #expect(throws: TemplateError.missingKey(template: "leave_rejected", key: "rejection_reason")) {
            try MailTemplates.builtIn.render("leave_rejected", data: ["name": "A", "leave_type": "sick", "start_date": "a",
                                                                      "end_date": "b", "rejection_reason": nil])
        }
        #expect(throws: TemplateError.unknownTemplate("nope")) { try MailTemplates.builtIn.render("nope", data: [:]) }
        #expect(throws: TemplateError.malformed(template: "t", detail: "unclosed {{")) {
            try MailTemplate(name: "t", subject: "x {{a", body: "")
        }
        #expect(throws: TemplateError.self) { try MailTemplate(name: "t", subject: "{{a b}}", body: "") }
        #expect(throws: TemplateError.self) { try MailTemplate(name: "t", subject: "{{}}", body: "") }
    }

    @Test func subjectValuesCannotBreakLines() throws {
        let mail = try MailTemplates.builtIn.render("role_changed", data: ["name": "A", "role": "admin\r\nBcc: x@y"])
        #expect(!mail.subject.contains("\n") && !mail.subject.contains("\r"))
    }
}
