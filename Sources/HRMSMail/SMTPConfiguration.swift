import Foundation
import NIOCore

/// Where and how to talk SMTP. Built from `SMTP_URL` (`smtp://host:port` or `smtp://user:pass@host:port`).
public struct SMTPConfiguration: Sendable, Equatable {
    public var host: String
    public var port: Int
    public var username: String?
    public var password: String?
    /// The name we greet with in EHLO/HELO.
    public var heloName: String
    public var connectTimeout: TimeAmount
    /// Deadline for each reply to a command (greeting, EHLO, MAIL, RCPT, DATA, QUIT).
    public var commandTimeout: TimeAmount
    /// Deadline for the reply after the message content (servers may scan it first; RFC 5321 4.5.3.2
    /// suggests minutes, we use less so a stuck server does not hold a delivery worker for long).
    public var dataTimeout: TimeAmount

    public init(host: String, port: Int = 25, username: String? = nil, password: String? = nil,
                heloName: String = "localhost", connectTimeout: TimeAmount = .seconds(10),
                commandTimeout: TimeAmount = .seconds(60), dataTimeout: TimeAmount = .seconds(120)) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.heloName = heloName
        self.connectTimeout = connectTimeout
        self.commandTimeout = commandTimeout
        self.dataTimeout = dataTimeout
    }

    /// Parses `smtp://[user[:pass]@]host[:port]`; user and password are percent-decoded.
    public init(url text: String) throws(MailError) {
        guard let components = URLComponents(string: text) else {
            throw .invalidConfiguration("SMTP_URL is not a URL: \(text)")
        }
        guard components.scheme?.lowercased() == "smtp" else {
            throw .invalidConfiguration("SMTP_URL scheme must be smtp:// (got \(components.scheme ?? "none"))")
        }
        guard var host = components.host, !host.isEmpty else {
            throw .invalidConfiguration("SMTP_URL has no host")
        }
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        let port = components.port ?? 25
        guard (1...65535).contains(port) else { throw .invalidConfiguration("SMTP_URL port out of range: \(port)") }
        let user = components.percentEncodedUser.flatMap { $0.removingPercentEncoding }
        let pass = components.percentEncodedPassword.flatMap { $0.removingPercentEncoding }
        if pass != nil, user == nil || user == "" {
            throw .invalidConfiguration("SMTP_URL has a password but no user")
        }
        self.init(host: host, port: port, username: user.flatMap { $0.isEmpty ? nil : $0 }, password: pass)
    }
}
