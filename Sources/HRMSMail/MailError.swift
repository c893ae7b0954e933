/// Why a message was not delivered. `isRetryable` is the one decision a caller needs: a permanent
/// refusal (5xx, a malformed address, bad configuration) will fail the same way again; a transient
/// one (4xx, a connection that failed, closed or timed out) may succeed later.
public enum MailError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The server answered 5xx at `stage` (e.g. "RCPT TO", "DATA"): do not retry.
    case permanent(code: Int, message: String, stage: String)
    /// The server answered 4xx at `stage`: retry later.
    case transient(code: Int, message: String, stage: String)
    /// No TCP connection could be made (refused, unreachable, connect timeout).
    case connectionFailed(String)
    /// The server closed the connection (or the socket failed) while we were at `stage`.
    case connectionClosed(stage: String)
    /// No (complete) reply within the configured time at `stage`.
    case timeout(stage: String)
    /// The server spoke something that is not SMTP (malformed or unexpected reply).
    case protocolViolation(String)
    /// Credentials were given but the server offers neither AUTH PLAIN nor AUTH LOGIN.
    case authenticationUnsupported
    /// An envelope address we refuse to put on the wire (CR/LF, brackets, non-ASCII, no `@`).
    case invalidAddress(String)
    /// SMTP_URL or another setting is unusable.
    case invalidConfiguration(String)

    public var isRetryable: Bool {
        switch self {
        case .transient, .connectionFailed, .connectionClosed, .timeout, .protocolViolation: true
        case .permanent, .authenticationUnsupported, .invalidAddress, .invalidConfiguration: false
        }
    }

    public var description: String {
        switch self {
        case .permanent(let code, let message, let stage): "SMTP \(code) at \(stage) (permanent): \(message)"
        case .transient(let code, let message, let stage): "SMTP \(code) at \(stage) (transient): \(message)"
        case .connectionFailed(let why): "SMTP connection failed: \(why)"
        case .connectionClosed(let stage): "SMTP server closed the connection during \(stage)"
        case .timeout(let stage): "SMTP server did not answer in time during \(stage)"
        case .protocolViolation(let why): "SMTP protocol violation: \(why)"
        case .authenticationUnsupported: "SMTP server offers no AUTH PLAIN or LOGIN but credentials were configured"
        case .invalidAddress(let address): "invalid mail address: \(address)"
        case .invalidConfiguration(let why): "invalid SMTP configuration: \(why)"
        }
    }
}
