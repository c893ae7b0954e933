import Foundation
import NIOCore
import NIOPosix

/// What the server said when it took the message.
public struct SMTPReceipt: Sendable, Equatable {
    /// The reply to the end of DATA (250, often carrying the server's queue id).
    public var reply: SMTPReply
    public var messageID: String?
}

/// An SMTP client (RFC 5321): one connection per message, EHLO (HELO when EHLO is refused), AUTH PLAIN
/// or LOGIN when credentials are configured, MAIL FROM, RCPT TO for each recipient, DATA, QUIT.
public struct SMTPClient: Sendable {
    public let configuration: SMTPConfiguration
    private let group: any EventLoopGroup

    public init(configuration: SMTPConfiguration, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.configuration = configuration
        self.group = group
    }

    /// Renders and sends `message` to all its `to` recipients.
    @discardableResult
    public func send(_ message: MailMessage) async throws(MailError) -> SMTPReceipt {
        let content = try message.rendered()
        var receipt = try await send(raw: content, from: message.from, to: message.to)
        receipt.messageID = message.messageID
        return receipt
    }

    /// Sends already-formatted message bytes (any line ends; they are normalised and dot-stuffed).
    @discardableResult
    public func send(raw content: [UInt8], from: MailAddress, to recipients: [MailAddress]) async throws(MailError)
        -> SMTPReceipt
    {
        let sender = try from.validated()
        guard !recipients.isEmpty else { throw .invalidAddress("no recipient") }
        var targets: [String] = []
        for recipient in recipients { targets.append(try recipient.validated()) }

        let session = try await Session.open(configuration, group: group)
        do {
            try await session.expect(200..<300, stage: "greeting", timeout: configuration.commandTimeout)
            let extensions = try await session.hello(configuration.heloName, timeout: configuration.commandTimeout)
            if let user = configuration.username {
                try await session.authenticate(user: user, password: configuration.password ?? "",
                                               extensions: extensions, timeout: configuration.commandTimeout)
            }
            try await session.command("MAIL FROM:<\(sender)>", stage: "MAIL FROM", timeout: configuration.commandTimeout)
            for target in targets {
                try await session.command("RCPT TO:<\(target)>", stage: "RCPT TO", timeout: configuration.commandTimeout)
            }
            try await session.command("DATA", stage: "DATA", expecting: 300..<400, timeout: configuration.commandTimeout)
            try await session.write(MIME.dataPayload(content), stage: "DATA content")
            let accepted = try await session.expect(200..<300, stage: "end of DATA", timeout: configuration.dataTimeout)
            // The message is taken; a failing QUIT does not change that.
            _ = try? await session.command("QUIT", stage: "QUIT", timeout: configuration.commandTimeout)
            await session.close()
            return SMTPReceipt(reply: accepted, messageID: nil)
        } catch {
            await session.abandon(after: error)
            throw error
        }
    }
}

/// One connection's conversation.
private struct Session: Sendable {
    let channel: any Channel
    let reader: ReplyReader

    static func open(_ configuration: SMTPConfiguration, group: any EventLoopGroup) async throws(MailError) -> Session {
        let reader = ReplyReader()
        let bootstrap = ClientBootstrap(group: group)
            .connectTimeout(configuration.connectTimeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(reader) }
            }
        do {
            let channel = try await bootstrap.connect(host: configuration.host, port: configuration.port).get()
            return Session(channel: channel, reader: reader)
        } catch {
            throw .connectionFailed("\(configuration.host):\(configuration.port): \(error)")
        }
    }

    func reply(stage: String, timeout: TimeAmount) async throws(MailError) -> SMTPReply {
        let loop = channel.eventLoop
        let reader = reader
        do {
            return try await loop.flatSubmit { reader.next(on: loop, timeout: timeout) }.get()
        } catch ReaderFailure.timedOut {
            throw .timeout(stage: stage)
        } catch ReaderFailure.malformed(let why) {
            throw .protocolViolation(why)
        } catch {
            throw .connectionClosed(stage: stage)
        }
    }

    /// The next reply, which must be in `range`; 4xx and 5xx become transient and permanent errors.
    @discardableResult
    func expect(_ range: Range<Int>, stage: String, timeout: TimeAmount) async throws(MailError) -> SMTPReply {
        let answer = try await reply(stage: stage, timeout: timeout)
        if range.contains(answer.code) { return answer }
        switch answer.code {
        case 400..<500: throw .transient(code: answer.code, message: answer.text, stage: stage)
        case 500..<600: throw .permanent(code: answer.code, message: answer.text, stage: stage)
        default: throw .protocolViolation("unexpected reply \(answer.code) at \(stage): \(answer.text)")
        }
    }

    func write(_ bytes: [UInt8], stage: String) async throws(MailError) {
        var buffer = channel.allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        do {
            try await channel.writeAndFlush(buffer).get()
        } catch {
            throw .connectionClosed(stage: stage)
        }
    }

    @discardableResult
    func command(_ line: String, stage: String, expecting range: Range<Int> = 200..<300,
                 timeout: TimeAmount) async throws(MailError) -> SMTPReply {
        try await write(Array((line + "\r\n").utf8), stage: stage)
        return try await expect(range, stage: stage, timeout: timeout)
    }

    /// EHLO, or HELO when the server does not know EHLO (500-504). Returns the EHLO keywords, upper-cased.
    func hello(_ name: String, timeout: TimeAmount) async throws(MailError) -> [String] {
        do {
            let reply = try await command("EHLO \(name)", stage: "EHLO", timeout: timeout)
            return reply.lines.dropFirst().map { $0.uppercased() }
        } catch .permanent(let code, _, _) where (500...504).contains(code) {
            try await command("HELO \(name)", stage: "HELO", timeout: timeout)
            return []
        }
    }

    func authenticate(user: String, password: String, extensions: [String],
                      timeout: TimeAmount) async throws(MailError) {
        let mechanisms = Set(extensions.filter { $0.hasPrefix("AUTH ") || $0.hasPrefix("AUTH=") }
            .flatMap { $0.dropFirst(5).split(separator: " ").map(String.init) })
        func base64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }
        if mechanisms.contains("PLAIN") {
            try await command("AUTH PLAIN \(base64("\0\(user)\0\(password)"))", stage: "AUTH", timeout: timeout)
        } else if mechanisms.contains("LOGIN") {
            try await command("AUTH LOGIN", stage: "AUTH", expecting: 334..<335, timeout: timeout)
            try await command(base64(user), stage: "AUTH", expecting: 334..<335, timeout: timeout)
            try await command(base64(password), stage: "AUTH", timeout: timeout)
        } else {
            throw .authenticationUnsupported
        }
    }

    func close() async {
        try? await channel.close().get()
    }

    /// After a refusal, say QUIT politely (briefly); after a broken connection, just close.
    func abandon(after error: MailError) async {
        switch error {
        case .permanent, .transient, .authenticationUnsupported:
            _ = try? await command("QUIT", stage: "QUIT", timeout: .seconds(2))
        default: break
        }
        await close()
    }
}
