import Foundation

/// A mailbox: an address and an optional display name.
public struct MailAddress: Sendable, Hashable {
    public var address: String
    public var name: String?

    public init(_ address: String, name: String? = nil) {
        self.address = address
        self.name = name
    }

    /// The address as it may go into MAIL FROM / RCPT TO and a header: ASCII (no SMTPUTF8), one `@`
    /// with text on both sides, nothing that could end the command or the bracket.
    func validated() throws(MailError) -> String {
        let forbidden: Set<Character> = ["<", ">", " ", "\t", "\r", "\n", "\0", ",", "\""]
        let parts = address.split(separator: "@", omittingEmptySubsequences: false)
        guard address.allSatisfy({ $0.isASCII && !forbidden.contains($0) }), parts.count == 2,
              !parts[0].isEmpty, !parts[1].isEmpty, address.utf8.count <= 254 else {
            throw .invalidAddress(address)
        }
        return address
    }
}

/// An email: text, optionally with an HTML alternative. `rendered()` gives the RFC 5322 bytes.
public struct MailMessage: Sendable {
    public var from: MailAddress
    public var to: [MailAddress]
    public var subject: String
    public var text: String
    public var html: String?
    public var date: Date
    public var messageID: String
    /// Extra headers (e.g. `X-HRMS-Event-Id`); names must be plain header names.
    public var headers: [(name: String, value: String)]

    public init(from: MailAddress, to: [MailAddress], subject: String, text: String, html: String? = nil,
                date: Date = Date(), messageID: String? = nil, headers: [(name: String, value: String)] = []) {
        self.from = from
        self.to = to
        self.subject = subject
        self.text = text
        self.html = html
        self.date = date
        let domain = from.address.split(separator: "@").last.map(String.init) ?? "localhost"
        self.messageID = messageID ?? "<\(UUID().uuidString.lowercased())@\(domain)>"
        self.headers = headers
    }

    /// The message as sent after DATA (before dot-stuffing), CRLF line ends throughout.
    public func rendered() throws(MailError) -> [UInt8] {
        var out = ""
        func header(_ name: String, _ value: String) { out += "\(name): \(value)\r\n" }
        header("Date", MIME.rfc5322Date(date))
        header("From", try MIME.mailbox(from))
        guard !to.isEmpty else { throw .invalidAddress("no recipient") }
        var recipients: [String] = []
        for address in to { recipients.append(try MIME.mailbox(address)) }
        header("To", recipients.joined(separator: ",\r\n "))
        header("Subject", MIME.headerText(subject))
        header("Message-ID", messageID.filter { !$0.isNewline })
        for (name, value) in headers {
            guard !name.isEmpty, name.allSatisfy({ $0.isASCII && $0 != ":" && ($0.asciiValue! > 32 && $0.asciiValue! < 127) }) else {
                throw .invalidConfiguration("bad header name \(name)")
            }
            header(name, MIME.headerText(value))
        }
        header("MIME-Version", "1.0")
        if let html {
            let boundary = "=_hrms_\(UUID().uuidString.lowercased())"   // "=_" never occurs in quoted-printable
            header("Content-Type", "multipart/alternative; boundary=\"\(boundary)\"")
            out += "\r\n"
            for (type, body) in [("text/plain", text), ("text/html", html)] {
                out += "--\(boundary)\r\n"
                out += "Content-Type: \(type); charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
                out += MIME.quotedPrintable(body) + "\r\n"
            }
            out += "--\(boundary)--\r\n"
        } else {
            header("Content-Type", "text/plain; charset=utf-8")
            header("Content-Transfer-Encoding", "quoted-printable")
            // The message must end in CRLF; add one only when the text did not already end its last line.
            let body = MIME.quotedPrintable(text)
            out += "\r\n" + body + (body.hasSuffix("\r\n") ? "" : "\r\n")
        }
        return Array(out.utf8)
    }
}

/// The MIME pieces: header encodings (RFC 2047), quoted-printable (RFC 2045), dates (RFC 5322).
public enum MIME {
    /// `Fri, 27 Nov 2026 17:00:53 +0000`
    public static func rfc5322Date(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss '+0000'"
        return formatter.string(from: date)
    }

    /// `Name <addr>` with the name as atoms, a quoted string, or encoded words, whichever it needs.
    static func mailbox(_ mailbox: MailAddress) throws(MailError) -> String {
        let address = try mailbox.validated()
        guard let raw = mailbox.name, case let name = singleLine(raw), !name.isEmpty else { return address }
        if !name.allSatisfy(\.isASCII) { return "\(encodedWords(name)) <\(address)>" }
        let atext = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: " !#$%&'*+-/=?^_`{|}~"))
        if name.unicodeScalars.allSatisfy({ atext.contains($0) }), name.first != " ", name.last != " " {
            return "\(name) <\(address)>"
        }
        let quoted = name.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
        return "\"\(quoted)\" <\(address)>"
    }

    /// Unstructured header text: as is when short printable ASCII, else RFC 2047 encoded words
    /// (never a raw CR or LF: a value cannot inject headers).
    public static func headerText(_ text: String) -> String {
        let line = singleLine(text)
        if line.utf8.count <= 70, line.utf8.allSatisfy({ $0 >= 32 && $0 < 127 }), !line.contains("=?") {
            return line
        }
        return encodedWords(line)
    }

    private static func singleLine(_ text: String) -> String {
        String(text.map { $0.isNewline ? " " : $0 })
    }

    /// `=?UTF-8?B?...?=` words of at most 75 characters (45 bytes of UTF-8 each), cut only between
    /// Unicode scalars, folded onto continuation lines.
    public static func encodedWords(_ text: String) -> String {
        var words: [String] = []
        var chunk: [UInt8] = []
        func flush() {
            guard !chunk.isEmpty else { return }
            words.append("=?UTF-8?B?\(Data(chunk).base64EncodedString())?=")
            chunk = []
        }
        for scalar in text.unicodeScalars {
            let bytes = Array(String(scalar).utf8)
            if chunk.count + bytes.count > 45 { flush() }
            chunk += bytes
        }
        flush()
        return words.isEmpty ? "" : words.joined(separator: "\r\n ")
    }

    /// Quoted-printable body (RFC 2045 6.7): lines end in CRLF, encoded lines stay within 76 characters
    /// (soft breaks `=`), trailing space or tab is encoded, escapes are never split.
    public static func quotedPrintable(_ text: String) -> String {
        var out = ""
        let lines = normalizedLines(Array(text.utf8))
        for (index, line) in lines.enumerated() {
            var current = ""
            for (position, byte) in line.enumerated() {
                let isLast = position == line.count - 1
                let literal = (byte >= 33 && byte <= 126 && byte != UInt8(ascii: "="))
                    || ((byte == 32 || byte == 9) && !isLast)
                let piece = literal ? String(UnicodeScalar(byte)) : String(format: "=%02X", byte)
                // Room for the piece plus a soft break "=" must stay within 76.
                if current.utf8.count + piece.utf8.count > 75 {
                    out += current + "=\r\n"
                    current = ""
                }
                current += piece
            }
            out += current
            if index < lines.count - 1 { out += "\r\n" }
        }
        return out
    }

    /// Splits on CRLF, lone LF or lone CR: every line end becomes one CRLF.
    static func normalizedLines(_ bytes: [UInt8]) -> [[UInt8]] {
        var lines: [[UInt8]] = [[]]
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == 13 {
                lines.append([])
                if index + 1 < bytes.count, bytes[index + 1] == 10 { index += 1 }
            } else if byte == 10 {
                lines.append([])
            } else {
                lines[lines.count - 1].append(byte)
            }
            index += 1
        }
        return lines
    }

    /// The DATA payload: line ends normalised to CRLF, lines starting with "." doubled (RFC 5321
    /// 4.5.2), a final CRLF if missing, then the terminating ".".
    public static func dataPayload(_ message: [UInt8]) -> [UInt8] {
        var lines = normalizedLines(message)
        if lines.count > 1, lines.last!.isEmpty { lines.removeLast() }   // message already ended in a newline
        var out: [UInt8] = []
        out.reserveCapacity(message.count + message.count / 32 + 8)
        for line in lines {
            if line.first == UInt8(ascii: ".") { out.append(UInt8(ascii: ".")) }
            out += line
            out += [13, 10]
        }
        out += [UInt8(ascii: "."), 13, 10]
        return out
    }
}
