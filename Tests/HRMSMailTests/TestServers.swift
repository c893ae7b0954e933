import Foundation
import NIOCore
import NIOPosix

/// The aiosmtpd server (smtp_test_server.py) on 127.0.0.1:28025, started once for the whole test run.
/// It exits when our end of its stdin closes, i.e. when the test process ends.
final class RealSMTPServer: @unchecked Sendable {   // immutable after init; the Pipe only keeps stdin open
    static let port = 28025
    static let shared: Result<RealSMTPServer, any Error> = Result { try RealSMTPServer() }

    let outDir: URL
    private let process: Process
    private let stdin: Pipe

    struct ServerStartError: Error, CustomStringConvertible { var description: String }

    private init() throws(ServerStartError) {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let python = root.appendingPathComponent(".venv/bin/python")
        let script = root.appendingPathComponent("Tests/HRMSMailTests/smtp_test_server.py")
        outDir = FileManager.default.temporaryDirectory.appendingPathComponent("hrmsmail-\(UUID().uuidString)")
        process = Process()
        process.executableURL = python
        process.arguments = [script.path, "127.0.0.1", String(Self.port), outDir.path]
        stdin = Pipe()
        process.standardInput = stdin
        do { try process.run() } catch {
            throw ServerStartError(description: "cannot start \(python.path): \(error)")
        }
        let ready = outDir.appendingPathComponent("ready")
        for _ in 0..<150 {
            if FileManager.default.fileExists(atPath: ready.path) { return }
            if !process.isRunning { break }
            Thread.sleep(forTimeInterval: 0.1)
        }
        process.terminate()
        throw ServerStartError(description: "aiosmtpd did not come up on port \(Self.port) (is aiosmtpd installed in .venv, is the port free?)")
    }

    struct Received {
        var eml: [UInt8]
        var json: [String: Any]
        var parts: [String: String] { json["parts"] as? [String: String] ?? [:] }
    }

    /// The saved message whose subject contains `token` (the server writes it before answering 250).
    func received(subjectContaining token: String) throws -> Received? {
        for name in try FileManager.default.contentsOfDirectory(atPath: outDir.path) where name.hasSuffix(".json") {
            let url = outDir.appendingPathComponent(name)
            let json = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any] ?? [:]
            if (json["subject"] as? String)?.contains(token) == true {
                let eml = try Data(contentsOf: url.deletingPathExtension().appendingPathExtension("eml"))
                return Received(eml: Array(eml), json: json)
            }
        }
        return nil
    }
}

/// A scripted, misbehaving server on an ephemeral loopback port: what no real SMTP server does
/// (stay silent, speak garbage, refuse EHLO). `respond` maps each command line to the reply bytes
/// (nil: say nothing); `greeting` nil: never greet.
final class ScriptedServer: Sendable {
    let channel: any Channel
    var port: Int { channel.localAddress!.port! }

    init(greeting: String?, respond: @escaping @Sendable (String) -> String?) async throws {
        channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { child in
                child.eventLoop.makeCompletedFuture {
                    try child.pipeline.syncOperations.addHandler(ScriptHandler(greeting: greeting, respond: respond))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
    }

    func close() async { try? await channel.close().get() }
}

private final class ScriptHandler: ChannelInboundHandler, @unchecked Sendable {   // event-loop confined
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let greeting: String?
    let respond: @Sendable (String) -> String?
    var buffer = ByteBuffer()
    var inData = false

    init(greeting: String?, respond: @escaping @Sendable (String) -> String?) {
        self.greeting = greeting
        self.respond = respond
    }

    func channelActive(context: ChannelHandlerContext) {
        if let greeting { send(greeting, context) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        buffer.writeBuffer(&incoming)
        while let newline = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
            let line = buffer.readString(length: newline - buffer.readerIndex + 1)!
                .trimmingCharacters(in: .newlines)
            if inData {
                if line == "." { inData = false; reply(to: "<end of data>", context) }
                continue
            }
            if line.uppercased() == "DATA" { inData = true }
            reply(to: line, context)
        }
        buffer.discardReadBytes()
    }

    private func reply(to line: String, _ context: ChannelHandlerContext) {
        if let answer = respond(line) { send(answer, context) }
    }

    private func send(_ text: String, _ context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(string: text)), promise: nil)
    }
}
