import Foundation
import KafkaFakeBroker
import NIOCore
import NIOEmbedded
import NIOSSL
import Synchronization
import Testing
@testable import KafkaWire

// SCRAM against published and independently computed vectors; the TLS engine against a real
// BoringSSL server (NIOSSL's server handler) and against peers that are not TLS servers; the
// security settings. End-to-end runs against real brokers are in tests_interop/test_security.py.

@Suite struct ScramTests {
    /// RFC 7677, section 3: user "user", password "pencil".
    @Test func rfc7677SHA256Vector() throws {
        var s = ScramSession(hash: .sha256, username: "user", password: "pencil", nonce: "rOprNGfwEbeRWgbNEkqO")
        #expect(String(decoding: s.initialResponse(), as: UTF8.self) == "n,,n=user,r=rOprNGfwEbeRWgbNEkqO")
        let serverFirst = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
        let final = try s.respond(to: Array(serverFirst.utf8))
        #expect(final.map { String(decoding: $0, as: UTF8.self) }
            == "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
        #expect(try s.respond(to: Array("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=".utf8)) == nil)
    }

    /// Computed with Python's scramp 1.5.0 (client and server agreeing), for a user name that needs
    /// saslname escaping and a password with a comma, an equals sign and a non-ASCII letter:
    ///
    ///     m = ScramMechanism("SCRAM-SHA-512")
    ///     auth = m.make_auth_info("päss,w=rd", iteration_count=4096, salt=b"salt-for-kafkawire")
    ///     server = m.make_server(lambda u: auth, s_nonce="serverNonce+/123")
    ///     client = ScramClient(["SCRAM-SHA-512"], "al=ice,x", "päss,w=rd", c_nonce="clientNonce/abc+XYZ")
    @Test func sha512VectorFromScramp() throws {
        var s = ScramSession(hash: .sha512, username: "al=ice,x", password: "päss,w=rd", nonce: "clientNonce/abc+XYZ")
        #expect(String(decoding: s.initialResponse(), as: UTF8.self) == "n,,n=al=3Dice=2Cx,r=clientNonce/abc+XYZ")
        let serverFirst = "r=clientNonce/abc+XYZserverNonce+/123,s=c2FsdC1mb3Ita2Fma2F3aXJl,i=4096"
        let final = try s.respond(to: Array(serverFirst.utf8))
        #expect(final.map { String(decoding: $0, as: UTF8.self) } == "c=biws,r=clientNonce/abc+XYZserverNonce+/123,p=T7HDhmHpKNdOq9U4BENgUsAaxkeBrNNhkQ9TiivarLnelv3fPDZ7yUVv044wAe3cD69KHKF/ez9lGF8nX7CP4g==")
        #expect(try s.respond(to: Array("v=3DlUUH8mJA3wJpb5lh3vv8so8tDqk9DN+YDU/Q/6uvcjq6wnHT+UsZT5NvIVaFn/4vlSu/1NhRkL0bssU0HG3g==".utf8)) == nil)
    }

    /// The server must prove it knows the credentials: a forged signature fails the exchange.
    @Test func wrongServerSignatureFails() throws {
        var s = ScramSession(hash: .sha256, username: "user", password: "pencil", nonce: "rOprNGfwEbeRWgbNEkqO")
        _ = s.initialResponse()
        _ = try s.respond(to: Array("r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096".utf8))
        #expect(throws: SASLFailure.self) { try s.respond(to: Array("v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=".utf8)) }
    }

    @Test func badServerFirstMessagesAreRefused() {
        let cases: [(String, String)] = [
            ("e=unknown-user", "refused: unknown-user"),
            ("r=someoneElsesNonce,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "nonce"),
            ("r=abcX,s=***,i=4096", "salt"),
            ("r=abcX,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4095", "iterations"),
            ("r=abcX,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=99999999", "iterations"),
            ("r=abcX,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=x", "not a number"),
            ("m=ext,r=abcX,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "extension"),
            ("r=abcX,i=4096", "malformed"),
            ("garbage", "malformed"),
            ("", "malformed"),
        ]
        for (message, expected) in cases {
            var s = ScramSession(hash: .sha256, username: "u", password: "p", nonce: "abc")
            _ = s.initialResponse()
            do {
                _ = try s.respond(to: Array(message.utf8))
                Issue.record("accepted \(message)")
            } catch {
                #expect(error.description.contains(expected), "\(message): \(error)")
            }
        }
        var s = ScramSession(hash: .sha256, username: "u", password: "p", nonce: "abc")
        #expect(throws: SASLFailure.self) { try s.respond(to: [0xFF, 0xFE]) }
    }

    @Test func randomNoncesArePrintableWithoutCommas() {
        let a = ScramSession(hash: .sha256, username: "u", password: "p").clientNonce
        let b = ScramSession(hash: .sha256, username: "u", password: "p").clientNonce
        #expect(a != b && a.count == 32)
        #expect(a.allSatisfy { $0.isASCII && $0 != "," && !$0.isWhitespace })
    }

    @Test func plainMessage() {
        #expect(PlainSession(username: "alice", password: "s3cret").initialResponse() == Array("\0alice\0s3cret".utf8))
    }

    @Test func base64() {
        for n in 0..<40 {
            let bytes = (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
            let text = Base64.encode(bytes)
            #expect(text == Data(bytes).base64EncodedString())
            #expect(Base64.decode(text) == bytes)
        }
        for bad in ["A", "AB=C", "A===", "AB*=", "ABC"] { #expect(Base64.decode(bad) == nil, "\(bad)") }
    }
}

/// PEM files for the TLS tests, written to a fresh folder: a CA, a server certificate it signed for
/// `localhost` and 127.0.0.1 (valid until 2126), and an unrelated CA.
final class TestPKI: Sendable {
    let folder: String

    init() throws {
        folder = NSTemporaryDirectory() + "kafkawire-tls-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for (name, text) in [("ca.pem", Self.ca), ("server.pem", Self.server), ("server.key", Self.serverKey), ("other-ca.pem", Self.otherCA)] {
            try text.write(toFile: folder + "/" + name, atomically: true, encoding: .utf8)
        }
    }

    deinit { try? FileManager.default.removeItem(atPath: folder) }

    func path(_ name: String) -> String { folder + "/" + name }

    func serverContext() throws -> NIOSSLContext {
        let configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMFile(path("server.pem")).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: path("server.key"), format: .pem)))
        return try NIOSSLContext(configuration: configuration)
    }

    static let ca = """
        -----BEGIN CERTIFICATE-----
        MIIBnjCCAUWgAwIBAgIUR61D+7RvSOPOlulAmRIe+3iC8BYwCgYIKoZIzj0EAwIw
        HDEaMBgGA1UEAwwRS2Fma2FXaXJlIHRlc3QgQ0EwIBcNMjYxMTI3MTcwNzQ3WhgP
        MjEyNjExMDMxNzA3NDdaMBwxGjAYBgNVBAMMEUthZmthV2lyZSB0ZXN0IENBMFkw
        EwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEawouWHhU2O/vvgNy/ubjC/YnJaDV8hnU
        mGYpPDf28k3Sa5CN8TmLMiOnkz+8ZPmyhFGAhA7Rkr9PWJIm+6jaQ6NjMGEwHQYD
        VR0OBBYEFBznfC1V9MLs3MfXfuSEsaudWtz/MB8GA1UdIwQYMBaAFBznfC1V9MLs
        3MfXfuSEsaudWtz/MA8GA1UdEwEB/wQFMAMBAf8wDgYDVR0PAQH/BAQDAgEGMAoG
        CCqGSM49BAMCA0cAMEQCIEZI+jrsntaLMqmcxtZsolF9up5aPl8eniPgDDtRBD+T
        AiAoS/plA2dQxmWT746zNw+dlX9omzQUS5Sx4N79qyQHzA==
        -----END CERTIFICATE-----

        """
    static let server = """
        -----BEGIN CERTIFICATE-----
        MIIBxDCCAWqgAwIBAgIUBbEvyF4hvOXzOjmYHxm/EBD3B00wCgYIKoZIzj0EAwIw
        HDEaMBgGA1UEAwwRS2Fma2FXaXJlIHRlc3QgQ0EwIBcNMjYxMTI3MTcwNzQ3WhgP
        MjEyNjExMDMxNzA3NDdaMBQxEjAQBgNVBAMMCWxvY2FsaG9zdDBZMBMGByqGSM49
        AgEGCCqGSM49AwEHA0IABOJaJMGSV2QUSXGxPRjlq7y87Nt+L7HxpKYcRfHvWnJW
        cTHGPjtwwNMAB0ClSXWBKwC+qGzKW1qc130ysDe6wlCjgY8wgYwwGgYDVR0RBBMw
        EYIJbG9jYWxob3N0hwR/AAABMAkGA1UdEwQCMAAwDgYDVR0PAQH/BAQDAgeAMBMG
        A1UdJQQMMAoGCCsGAQUFBwMBMB0GA1UdDgQWBBRvq+KXo+Tz1IcATfy2Dw86tRAB
        uDAfBgNVHSMEGDAWgBQc53wtVfTC7NzH137khLGrnVrc/zAKBggqhkjOPQQDAgNI
        ADBFAiA2MoL4gkfJFYlEJKDJ6O6GS0LFCCwaf8iUcJh26+QDEgIhAObYaOUQIkRT
        tEFv2tT6d7xitdqglwQpKWK5I2qk7Eg9
        -----END CERTIFICATE-----

        """
    static let serverKey = """
        -----BEGIN PRIVATE KEY-----
        MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgAa+TJ1evH2JxQxp6
        k0+vUJkpbKY3/U4IGgburIlkym6hRANCAATiWiTBkldkFElxsT0Y5au8vOzbfi+x
        8aSmHEXx71pyVnExxj47cMDTAAdApUl1gSsAvqhsyltanNd9MrA3usJQ
        -----END PRIVATE KEY-----

        """
    static let otherCA = """
        -----BEGIN CERTIFICATE-----
        MIIBhzCCAS2gAwIBAgIUPLF4MQ0W9PSrmPGdBB+gLd1m8xAwCgYIKoZIzj0EAwIw
        GDEWMBQGA1UEAwwNU29tZSBvdGhlciBDQTAgFw0yNjExMjcxNzA3NDdaGA8yMTI2
        MTEwMzE3MDc0N1owGDEWMBQGA1UEAwwNU29tZSBvdGhlciBDQTBZMBMGByqGSM49
        AgEGCCqGSM49AwEHA0IABIFE6YHXnbel/0vnE7PUKi108pQaP1epvMRrtjvCwgGC
        tatM/77nx5sKrJfaLZ7jGW5q5ZbFWcSyTVEIQKxsh6KjUzBRMB0GA1UdDgQWBBSi
        jgBRyODDB7ZV0EgaASFnzCc8xzAfBgNVHSMEGDAWgBSijgBRyODDB7ZV0EgaASFn
        zCc8xzAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0gAMEUCIQDV6EijipUJ
        Wb9dENGzwQT+owJrzpFZnvysp/oW7DJyfgIgffzwwMJkEvig/1CwdwnU7DPuIRwz
        exkl+mWxXJQ0LyA=
        -----END CERTIFICATE-----

        """
}

/// The client engine against NIOSSL's server handler, bytes pumped by hand in one thread (the
/// engine, like NIO's embedded loop, is bound to the thread that made it).
@Suite struct TLSEngineTests {
    /// A TLS server in an embedded channel; what it decrypts collects in `received`.
    final class Server {
        let channel = EmbeddedChannel()

        init(_ context: NIOSSLContext) throws {
            try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
            channel.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 40000), promise: nil)
        }

        func received() throws -> [UInt8] {
            var out: [UInt8] = []
            while let b = try channel.readInbound(as: ByteBuffer.self) { out += b.readableBytesView }
            return out
        }

        func send(_ bytes: [UInt8]) throws {
            try channel.writeOutbound(channel.allocator.buffer(bytes: bytes))
        }

        func close() {
            channel.close(promise: nil)
            channel.embeddedEventLoop.advanceTime(by: .hours(1))
        }
    }

    /// Moves bytes both ways until neither side has anything to say; returns the client's plaintext.
    @discardableResult
    static func pump(_ client: TLSEngine, _ server: Server) throws -> [UInt8] {
        var plaintext: [UInt8] = []
        for _ in 0..<100 {
            var toServer: [UInt8] = []
            client.takeCiphertext(into: &toServer)
            if !toServer.isEmpty { try server.channel.writeInbound(server.channel.allocator.buffer(bytes: toServer)) }
            var toClient: [UInt8] = []
            while let b = try server.channel.readOutbound(as: ByteBuffer.self) { toClient += b.readableBytesView }
            if toServer.isEmpty && toClient.isEmpty { return plaintext }
            if !toClient.isEmpty {
                toClient.withUnsafeBytes { client.receive($0, into: &plaintext) }
                if let failure = client.failure { throw failure }
            }
        }
        Issue.record("the two sides never went quiet")
        return plaintext
    }

    static func client(_ pki: TestPKI, host: String = "localhost", peerIP: String = "127.0.0.1", ca: String = "ca.pem",
                       verifyHostname: Bool = true) throws -> TLSEngine {
        let context = try TLSContexts.context(for: TLSSettings(caLocation: pki.path(ca), verifyHostname: verifyHostname))
        return try TLSEngine(setup: TLSClientSetup(context: context), address: BrokerAddress(host: host, port: 9093),
                             peer: try SocketAddress(ipAddress: peerIP, port: 9093))
    }

    @Test func handshakeThenDataBothWays() throws {
        let pki = try TestPKI()
        let server = try Server(try pki.serverContext())
        let client = try Self.client(pki)
        try Self.pump(client, server)
        #expect(client.handshakeCompleted)

        // Larger than a TLS record (16 KiB), so it spans several.
        let request = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        try client.send(request)
        try Self.pump(client, server)
        #expect(try server.received() == request)

        let answer = (0..<70_000).map { UInt8(truncatingIfNeeded: $0 &* 13) }
        try server.send(answer)
        #expect(try Self.pump(client, server) == answer)

        client.close()
        client.finish()
        server.close()
    }

    /// An IP address is checked against the certificate's IP entries (it cannot go in SNI).
    @Test func ipAddressInTheCertificateVerifies() throws {
        let pki = try TestPKI()
        let server = try Server(try pki.serverContext())
        let client = try Self.client(pki, host: "127.0.0.1")
        try Self.pump(client, server)
        #expect(client.handshakeCompleted)
        client.finish()
        server.close()
    }

    func handshakeFailure(_ client: TLSEngine, _ pki: TestPKI) throws -> NetworkError? {
        let server = try Server(try pki.serverContext())
        defer {
            client.finish()
            server.close()
        }
        do {
            try Self.pump(client, server)
        } catch let error as NetworkError {
            return error
        }
        return nil
    }

    @Test func untrustedCAFailsTheHandshake() throws {
        let pki = try TestPKI()
        let error = try handshakeFailure(try Self.client(pki, ca: "other-ca.pem"), pki)
        guard case let .tlsHandshakeFailed(_, why) = error else { Issue.record("\(String(describing: error))"); return }
        #expect(why.contains("CERTIFICATE_VERIFY_FAILED"), "\(why)")
        #expect(error?.isRetriable == false)
    }

    @Test func wrongHostNameFailsTheHandshake() throws {
        let pki = try TestPKI()
        // (NIOSSL also accepts a certificate naming the peer's IP address, whatever the host name:
        // the peer here is not 127.0.0.1, which the certificate names.)
        let error = try handshakeFailure(try Self.client(pki, host: "kafka.example.com", peerIP: "127.0.0.9"), pki)
        guard case let .tlsHandshakeFailed(_, why) = error else { Issue.record("\(String(describing: error))"); return }
        #expect(why.contains("not for kafka.example.com"), "\(why)")
        let ipError = try handshakeFailure(try Self.client(pki, host: "127.0.0.2", peerIP: "127.0.0.2"), pki)
        guard case .tlsHandshakeFailed = ipError else { Issue.record("\(String(describing: ipError))"); return }
    }

    /// ssl.endpoint.identification.algorithm=none: the chain is still checked, the name is not.
    @Test func hostNameCheckCanBeTurnedOff() throws {
        let pki = try TestPKI()
        #expect(try handshakeFailure(try Self.client(pki, host: "kafka.example.com", peerIP: "127.0.0.9", verifyHostname: false), pki) == nil)
        let error = try handshakeFailure(
            try Self.client(pki, host: "kafka.example.com", peerIP: "127.0.0.9", ca: "other-ca.pem", verifyHostname: false), pki)
        guard case .tlsHandshakeFailed = error else { Issue.record("\(String(describing: error))"); return }
    }

    @Test func garbageFromThePeerIsAHandshakeFailure() throws {
        let pki = try TestPKI()
        let client = try Self.client(pki)
        defer { client.finish() }
        var hello: [UInt8] = []
        client.takeCiphertext(into: &hello)
        #expect(hello.first == 0x16)  // a handshake record: the ClientHello
        var plaintext: [UInt8] = []
        let garbage = Array("HTTP/1.1 400 Bad Request\r\n\r\n".utf8) + [UInt8](repeating: 0xAB, count: 200)
        garbage.withUnsafeBytes { client.receive($0, into: &plaintext) }
        guard case .tlsHandshakeFailed = client.failure else { Issue.record("\(String(describing: client.failure))"); return }
        #expect(plaintext.isEmpty)
    }

    @Test func unreadableFilesAreConfigurationErrors() throws {
        let pki = try TestPKI()
        let cases: [(TLSSettings, String)] = [
            (TLSSettings(caLocation: pki.path("missing.pem")), "ssl.ca.location"),
            (TLSSettings(caLocation: pki.path("server.key")), "ssl.ca.location"),
            (TLSSettings(certificateLocation: pki.path("ca.pem"), keyLocation: pki.path("ca.pem")), "ssl.key.location"),
            (TLSSettings(certificateLocation: pki.path("server.key"), keyLocation: pki.path("server.key")), "ssl.certificate.location"),
        ]
        for (settings, name) in cases {
            do {
                _ = try TLSContexts.context(for: settings)
                Issue.record("accepted \(settings)")
            } catch {
                guard case let .invalidConfiguration(why) = error else { Issue.record("\(error)"); continue }
                #expect(why.hasPrefix(name), "\(why)")
            }
        }
    }
}

/// A TCP peer on 127.0.0.1 that does one thing with each connection (it is no TLS server).
final class RawPeer: Sendable {
    let port: Int
    private let listener: Int32

    init(_ behaviour: @escaping @Sendable (Int32) -> Void) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && listen(fd, 4) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        guard ok else { throw NetworkError.socketFailed("raw peer: \(errno)") }
        listener = fd
        port = Int(UInt16(bigEndian: addr.sin_port))
        Thread.detachNewThread {
            while true {
                let client = accept(fd, nil, nil)
                if client < 0 { return }
                behaviour(client)
                close(client)
            }
        }
    }

    func stop() { shutdown(listener, Int32(SHUT_RDWR)) }

    static func readSome(_ fd: Int32) -> Int {
        var buffer = [UInt8](repeating: 0, count: 4096)
        return read(fd, &buffer, buffer.count)
    }
}

/// TLS over real sockets against peers that are not TLS servers: each gives a typed error within
/// the connect timeout, never a hang or a crash.
@Suite(.timeLimit(.minutes(1))) struct TLSConnectionFailureTests {
    func connect(_ peer: RawPeer, _ pki: TestPKI, timeoutMs: Int = 5_000) async throws -> NetworkError? {
        let context = try TLSContexts.context(for: TLSSettings(caLocation: pki.path("ca.pem")))
        do {
            let c = try await Connection.connect(
                to: BrokerAddress(host: "127.0.0.1", port: peer.port), timeoutMs: timeoutMs, maxFrameBytes: 1 << 20,
                tls: TLSClientSetup(context: context))
            await c.close()
            return nil
        } catch let e as NetworkError {
            return e
        }
    }

    @Test func garbageInsteadOfServerHello() async throws {
        let pki = try TestPKI()
        let peer = try RawPeer { fd in
            _ = RawPeer.readSome(fd)
            let garbage = Array("not TLS at all\n".utf8) + [UInt8](repeating: 0x42, count: 64)
            _ = garbage.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            _ = RawPeer.readSome(fd)
        }
        defer { peer.stop() }
        let error = try await connect(peer, pki)
        guard case .tlsHandshakeFailed = error else { Issue.record("\(String(describing: error))"); return }
    }

    @Test func closedMidHandshake() async throws {
        let pki = try TestPKI()
        let peer = try RawPeer { fd in _ = RawPeer.readSome(fd) }  // reads the ClientHello, then closes
        defer { peer.stop() }
        let error = try await connect(peer, pki)
        guard case let .connectionLost(_, why) = error else { Issue.record("\(String(describing: error))"); return }
        #expect(why.contains("TLS handshake"))
    }

    @Test func silentPeerTimesOut() async throws {
        let pki = try TestPKI()
        let peer = try RawPeer { fd in
            _ = RawPeer.readSome(fd)
            _ = RawPeer.readSome(fd)  // until the client gives up
        }
        defer { peer.stop() }
        let error = try await connect(peer, pki, timeoutMs: 300)
        guard case .connectTimedOut = error else { Issue.record("\(String(describing: error))"); return }
    }
}

/// SASL exchanges with a scripted broker for what the real peers in tests_interop cannot be made
/// to do: a server whose SCRAM signature is forged, a broker without SaslHandshake v1.
@Suite(.timeLimit(.minutes(1))) struct SASLScriptedTests {
    static func securedConfig(_ broker: FakeBroker, _ mechanism: SASLMechanism) -> ClientConfig {
        var c = Scripted.config(broker)
        c.securityProtocol = .saslPlaintext
        c.sasl = SASLSettings(mechanism: mechanism, username: "user", password: "pencil")
        return c
    }

    static func apiVersionsWithSASL(_ req: FakeBroker.Request, handshake: ClosedRange<Int16> = 0...1) -> FakeBroker.Action {
        .respond(body: Scripted.apiVersions(
            version: req.apiVersion,
            keys: Scripted.supported + [(.saslHandshake, handshake), (.saslAuthenticate, 0...2)]), headerVersion: 0)
    }

    static func authenticateAnswer(_ req: FakeBroker.Request, bytes: [UInt8], error: Int16 = 0, message: String? = nil,
                                   lifetimeMs: Int64 = 0) -> FakeBroker.Action {
        var r = SaslAuthenticateResponse()
        r.errorCode = error
        r.errorMessage = message
        r.authBytes = bytes
        r.sessionLifetimeMs = lifetimeMs
        return .respond(body: try! r.encoded(version: req.apiVersion), headerVersion: req.apiVersion >= 2 ? 1 : 0)
    }

    func metadataError(_ config: ClientConfig) async -> KafkaError? {
        let cluster = KafkaCluster(config: config)
        do {
            try await cluster.refreshMetadata()
            return nil
        } catch {
            return error
        }
    }

    @Test func forgedServerSignatureFailsAuthentication() async throws {
        let broker = try FakeBroker { req in
            switch req.apiKey {
            case ApiKey.apiVersions.rawValue: return Self.apiVersionsWithSASL(req)
            case ApiKey.saslHandshake.rawValue:
                return .respond(body: try! SaslHandshakeResponse(errorCode: 0, mechanisms: ["SCRAM-SHA-256"]).encoded(version: 1), headerVersion: 0)
            case ApiKey.saslAuthenticate.rawValue:
                var r = WireReader(req.body)
                let token = (try? r.readBytes(compact: req.apiVersion >= 2, "auth")) ?? []
                let text = String(decoding: token, as: UTF8.self)
                if text.hasPrefix("n,,") {
                    let nonce = text.split(separator: ",").last!.dropFirst(2)
                    return Self.authenticateAnswer(req, bytes: Array("r=\(nonce)SERVER,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096".utf8))
                }
                return Self.authenticateAnswer(req, bytes: Array("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=".utf8))
            default:
                return .close
            }
        }
        defer { broker.stop() }
        let error = await metadataError(Self.securedConfig(broker, .scramSHA256))
        guard case let .broker(code, context) = error else { Issue.record("\(String(describing: error))"); return }
        #expect(code == .saslAuthenticationFailed && error?.isRetriable == false)
        #expect(context.contains("signature"), "\(context)")
        // Nothing but the SASL exchange was sent on that connection.
        #expect(broker.requests.allSatisfy { [ApiKey.apiVersions, .saslHandshake, .saslAuthenticate].map(\.rawValue).contains($0.apiKey) })
    }

    @Test func brokerWithoutSaslApisIsUnsupported() async throws {
        let broker = try Scripted.broker { req, _ in
            switch req.apiKey {
            case ApiKey.saslHandshake.rawValue:
                return .respond(body: try! SaslHandshakeResponse(errorCode: 0, mechanisms: ["PLAIN"]).encoded(version: 1), headerVersion: 0)
            case ApiKey.saslAuthenticate.rawValue:
                return Self.authenticateAnswer(req, bytes: [], lifetimeMs: 3_600_000)
            default:
                return .close
            }
        }
        defer { broker.stop() }
        // Scripted.broker's ApiVersions lacks the SASL APIs: the client must say so, not guess.
        let missing = await metadataError(Self.securedConfig(broker, .plain))
        guard case let .unsupportedVersion(key, _, _) = missing else { Issue.record("\(String(describing: missing))"); return }
        #expect(key == ApiKey.saslHandshake.rawValue)
    }

    @Test func plainWithLifetimeThenMetadata() async throws {
        let port = Mutex(0)
        let broker = try FakeBroker { req in
            switch req.apiKey {
            case ApiKey.apiVersions.rawValue: return Self.apiVersionsWithSASL(req)
            case ApiKey.saslHandshake.rawValue:
                return .respond(body: try! SaslHandshakeResponse(errorCode: 0, mechanisms: ["PLAIN"]).encoded(version: 1), headerVersion: 0)
            case ApiKey.saslAuthenticate.rawValue:
                var r = WireReader(req.body)
                let token = (try? r.readBytes(compact: req.apiVersion >= 2, "auth")) ?? []
                guard token == Array("\0user\0pencil".utf8) else {
                    return Self.authenticateAnswer(req, bytes: [], error: 58, message: "Invalid username or password")
                }
                return Self.authenticateAnswer(req, bytes: [], lifetimeMs: 3_600_000)
            case ApiKey.metadata.rawValue:
                return .respond(body: Scripted.metadata(port: port.withLock { $0 }, version: req.apiVersion),
                                headerVersion: req.apiVersion >= 9 ? 1 : 0)
            default:
                return .close
            }
        }
        port.withLock { $0 = broker.port }
        defer { broker.stop() }
        #expect(await metadataError(Self.securedConfig(broker, .plain)) == nil)
        let keys = broker.requests.map(\.apiKey)
        #expect(Array(keys.prefix(4)) == [ApiKey.apiVersions, .saslHandshake, .saslAuthenticate, .metadata].map(\.rawValue))

        var wrong = Self.securedConfig(broker, .plain)
        wrong.sasl.password = "wrong"
        let error = await metadataError(wrong)
        guard case let .broker(code, context) = error else { Issue.record("\(String(describing: error))"); return }
        #expect(code == .saslAuthenticationFailed)
        #expect(context.hasSuffix("failed: Invalid username or password"), "\(context)")
    }
}

@Suite struct SecuritySettingsTests {
    @Test func securitySettingsByKafkaName() throws {
        var c = ClientConfig(bootstrapServers: "a:1")
        try c.apply([
            "security.protocol": "sasl_ssl", "sasl.mechanism": "scram-sha-512", "sasl.username": "hrms",
            "sasl.password": "p=w,d", "ssl.ca.location": "/etc/ca.crt", "ssl.certificate.location": "/etc/user.crt",
            "ssl.key.location": "/etc/user.key", "ssl.key.password": "k", "ssl.endpoint.identification.algorithm": "none",
        ])
        #expect(c.securityProtocol == .saslSSL)
        #expect(c.sasl == SASLSettings(mechanism: .scramSHA512, username: "hrms", password: "p=w,d"))
        #expect(c.tls == TLSSettings(caLocation: "/etc/ca.crt", certificateLocation: "/etc/user.crt", keyLocation: "/etc/user.key",
                                     keyPassword: "k", verifyHostname: false))
        #expect(Set(c.settings.keys) == ClientConfig.settingNames)
        let round = try ClientConfig(settings: c.settings)
        #expect(round.security == c.security)

        try c.apply(["sasl.mechanisms": "PLAIN", "ssl.endpoint.identification.algorithm": "https", "ssl.ca.location": ""])
        #expect(c.sasl.mechanism == .plain && c.tls.verifyHostname && c.tls.caLocation == nil)

        let before = c.security
        for (name, value) in [("security.protocol", "TLS"), ("sasl.mechanism", "GSSAPI"), ("ssl.endpoint.identification.algorithm", "http")] {
            #expect(throws: KafkaError.self) { try c.apply([name: value]) }
        }
        #expect(c.security == before)
    }

    @Test func producerAndGroupConfigsTakeThem() throws {
        let p = try ProducerConfig(settings: ["bootstrap.servers": "b:1", "security.protocol": "SSL", "acks": "1"])
        #expect(p.client.securityProtocol == .ssl)
        let g = try GroupConsumerConfig(settings: ["bootstrap.servers": "b:1", "group.id": "g", "sasl.username": "u"])
        #expect(g.consumer.client.sasl.username == "u")
    }

    @Test func environmentNamesOfTheServices() throws {
        let env = [
            "KAFKA_BOOTSTRAP_SERVERS": "k:9093", "KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "KAFKA_SASL_USERNAME": "notification-service", "KAFKA_SASL_PASSWORD": "secret", "KAFKA_SSL_CA_LOCATION": "/certs/ca.crt",
        ]
        let c = try ClientConfig(settings: KafkaSettings.environment(env))
        #expect(c.security == ConnectionSecurity(
            securityProtocol: .saslSSL, sasl: SASLSettings(mechanism: .scramSHA512, username: "notification-service", password: "secret"),
            tls: TLSSettings(caLocation: "/certs/ca.crt")))
    }

    @Test func impossibleCombinationsFailBeforeConnecting() async throws {
        for (settings, text) in [
            (["security.protocol": "SASL_PLAINTEXT"], "sasl.username"),
            (["security.protocol": "SSL", "ssl.certificate.location": "/x.crt"], "ssl.key.location"),
        ] {
            var c = ClientConfig(bootstrapServers: "127.0.0.1:1")
            try c.apply(settings)
            do {
                try await KafkaCluster(config: c).refreshMetadata()
                Issue.record("connected with \(settings)")
            } catch {
                guard case let .invalidConfiguration(why) = error else { Issue.record("\(error)"); continue }
                #expect(why.contains(text), "\(why)")
            }
        }
    }

    @Test func listenerSchemesInBootstrapAddresses() {
        #expect(BrokerAddress("SASL_SSL://kafka-0.kafka:9093") == BrokerAddress(host: "kafka-0.kafka", port: 9093))
        #expect(BrokerAddress("ssl://h:1") == BrokerAddress(host: "h", port: 1))
        #expect(BrokerAddress("SASL_PLAINTEXT://[::1]:2") == BrokerAddress(host: "::1", port: 2))
    }
}
