import NIOCore

/// One SMTP reply: its code and text lines (a multi-line reply has several, RFC 5321 4.2.1).
public struct SMTPReply: Sendable, Equatable {
    public var code: Int
    public var lines: [String]
    public var text: String { lines.joined(separator: " | ") }
}

/// What the reader reports instead of a reply; the client adds the stage it was at.
enum ReaderFailure: Error {
    case closed
    case timedOut
    case malformed(String)
}

/// Turns the server's bytes into replies, one per awaited `next`. Replies that arrive early are kept
/// (a server may answer before we ask, e.g. a 421 before closing).
/// All state is touched only on the channel's event loop (channelRead/Inactive run there, and the
/// client calls `next` through `eventLoop.flatSubmit`), which is why the unchecked Sendable is sound.
final class ReplyReader: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer

    /// RFC 5321 4.5.3.1.5 limits a reply line to 512 octets; allow slack, but never grow without bound.
    static let maxLineLength = 4096

    private var pending = ByteBuffer()
    private var partialCode: Int?
    private var partialLines: [String] = []
    private var ready = CircularBuffer<SMTPReply>()
    private var failure: ReaderFailure?
    private var waiter: EventLoopPromise<SMTPReply>?
    private var timer: Scheduled<Void>?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        pending.writeBuffer(&incoming)
        while failure == nil, let newline = pending.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
            let length = newline - pending.readerIndex
            var bytes = pending.readBytes(length: length + 1)!
            bytes.removeLast()
            if bytes.last == UInt8(ascii: "\r") { bytes.removeLast() }
            consume(line: bytes, context: context)
        }
        if failure == nil, pending.readableBytes > Self.maxLineLength {
            fail(.malformed("reply line longer than \(Self.maxLineLength) bytes"), context: context)
        }
        pending.discardReadBytes()
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(.closed, context: nil)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(.closed, context: context)
    }

    private func consume(line: [UInt8], context: ChannelHandlerContext) {
        // "DDD text" (last line), "DDD-text" (more follow), or a bare "DDD".
        guard line.count >= 3, line[0...2].allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
              (UInt8(ascii: "2")...UInt8(ascii: "5")).contains(line[0]) else {
            fail(.malformed("not an SMTP reply line: \(String(decoding: line.prefix(80), as: UTF8.self))"),
                 context: context)
            return
        }
        let code = Int(line[0] - 48) * 100 + Int(line[1] - 48) * 10 + Int(line[2] - 48)
        let separator = line.count > 3 ? line[3] : UInt8(ascii: " ")
        guard separator == UInt8(ascii: " ") || separator == UInt8(ascii: "-") else {
            fail(.malformed("bad separator after reply code \(code)"), context: context)
            return
        }
        if let partialCode, partialCode != code {
            fail(.malformed("multi-line reply changed code from \(partialCode) to \(code)"), context: context)
            return
        }
        partialCode = code
        partialLines.append(line.count > 4 ? String(decoding: line[4...], as: UTF8.self) : "")
        guard separator == UInt8(ascii: " ") else { return }
        let reply = SMTPReply(code: code, lines: partialLines)
        partialCode = nil
        partialLines = []
        if let waiter {
            self.waiter = nil
            timer?.cancel()
            waiter.succeed(reply)
        } else {
            ready.append(reply)
        }
    }

    private func fail(_ reason: ReaderFailure, context: ChannelHandlerContext?) {
        if failure == nil { failure = reason }
        if let waiter {
            self.waiter = nil
            timer?.cancel()
            waiter.fail(reason)
        }
        if case .malformed = reason { context?.close(promise: nil) }
    }

    /// The next complete reply, or a failure after `timeout`. Must run on the channel's event loop.
    func next(on loop: any EventLoop, timeout: TimeAmount) -> EventLoopFuture<SMTPReply> {
        loop.preconditionInEventLoop()
        if let reply = ready.popFirst() { return loop.makeSucceededFuture(reply) }
        if let failure { return loop.makeFailedFuture(failure) }
        let promise = loop.makePromise(of: SMTPReply.self)
        waiter = promise
        timer = loop.scheduleTask(in: timeout) { [self] in
            guard let waiter = self.waiter else { return }
            self.waiter = nil
            waiter.fail(ReaderFailure.timedOut)
        }
        return promise.futureResult
    }
}
