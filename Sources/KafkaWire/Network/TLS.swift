#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import NIOEmbedded
import NIOSSL
import NIOTLS
import Synchronization

// TLS for a `Connection`: NIOSSL's BoringSSL engine, driven over our own socket. The handler sits in
// an EmbeddedChannel used as a byte pump: ciphertext read from the socket goes in as inbound
// data and comes out as plaintext; plaintext written goes out as ciphertext for the socket. NIO's
// embedded event loop is bound to the thread that made it, so each engine lives and dies on its
// connection's I/O thread.

/// Client TLS contexts by settings, made once per set of files (and again when a file changes, as
/// when a CA or client certificate is rotated).
enum TLSContexts {
    private struct Entry {
        var stamps: [Int]
        var context: NIOSSLContext
    }

    private static let cache = Mutex<[TLSSettings: Entry]>([:])

    static func context(for settings: TLSSettings) throws(KafkaError) -> NIOSSLContext {
        let paths = [settings.caLocation, settings.certificateLocation, settings.keyLocation]
        let stamps = paths.map { $0.map(modificationStamp) ?? 0 }
        if let hit = cache.withLock({ $0[settings] }), hit.stamps == stamps { return hit.context }
        let context = try make(settings)
        cache.withLock { $0[settings] = Entry(stamps: stamps, context: context) }
        return context
    }

    private static func modificationStamp(_ path: String) -> Int {
        var st = stat()
        guard stat(path, &st) == 0 else { return -1 }
        #if canImport(Darwin)
        return Int(st.st_mtimespec.tv_sec) &* 1_000_000_000 &+ Int(st.st_mtimespec.tv_nsec) &+ Int(st.st_size)
        #else
        return Int(st.st_mtim.tv_sec) &* 1_000_000_000 &+ Int(st.st_mtim.tv_nsec) &+ Int(st.st_size)
        #endif
    }

    private static func readable(_ setting: String, _ path: String) throws(KafkaError) {
        guard access(path, R_OK) == 0 else {
            throw .invalidConfiguration("\(setting) \(path): \(Socket.errnoDescription())")
        }
    }

    private static func make(_ settings: TLSSettings) throws(KafkaError) -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        configuration.certificateVerification = settings.verifyHostname ? .fullVerification : .noHostnameVerification
        if let ca = settings.caLocation {
            try readable("ssl.ca.location", ca)
            let roots: [NIOSSLCertificate]
            do { roots = try NIOSSLCertificate.fromPEMFile(ca) } catch {
                throw .invalidConfiguration("ssl.ca.location \(ca): not a PEM file of certificates (\(error))")
            }
            guard !roots.isEmpty else { throw .invalidConfiguration("ssl.ca.location \(ca): no certificate in the file") }
            configuration.trustRoots = .certificates(roots)
        }
        if let certificate = settings.certificateLocation, let key = settings.keyLocation {
            try readable("ssl.certificate.location", certificate)
            try readable("ssl.key.location", key)
            do {
                let chain = try NIOSSLCertificate.fromPEMFile(certificate)
                guard !chain.isEmpty else { throw NIOSSLError.failedToLoadCertificate }
                configuration.certificateChain = chain.map { .certificate($0) }
            } catch {
                throw .invalidConfiguration("ssl.certificate.location \(certificate): not a PEM certificate chain (\(error))")
            }
            do {
                if let password = settings.keyPassword {
                    let bytes = Array(password.utf8)
                    configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: key, format: .pem) { set in set(bytes) })
                } else {
                    configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))
                }
            } catch {
                throw .invalidConfiguration("ssl.key.location \(key): not a PEM private key, or a wrong ssl.key.password (\(error))")
            }
        }
        do { return try NIOSSLContext(configuration: configuration) } catch {
            throw .invalidConfiguration("TLS settings: \(error)")
        }
    }
}

/// What a connection hands its I/O thread to secure the socket with.
struct TLSClientSetup: Sendable {
    let context: NIOSSLContext
}

/// One TLS session over a socket. Not thread-safe: only the connection's I/O thread touches it,
/// from creation to `close`.
final class TLSEngine {
    /// Where the TLS handler's output ends: decrypted bytes, the handshake's end, errors.
    private final class Sink: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        var plaintext: [UInt8] = []
        var handshakeCompleted = false
        var error: (any Error)?
        var inactive = false

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = unwrapInboundIn(data)
            buffer.withUnsafeReadableBytes { plaintext.append(contentsOf: $0) }
        }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if let event = event as? TLSUserEvent, case .handshakeCompleted = event { handshakeCompleted = true }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            if self.error == nil { self.error = error }
        }

        func channelInactive(context: ChannelHandlerContext) { inactive = true }
    }

    private let channel: EmbeddedChannel
    private let sink = Sink()
    let address: BrokerAddress

    /// Sets the engine up and starts the handshake (the ClientHello is then waiting in
    /// `takeCiphertext`). `peer` is the socket's remote address, against which an IP address in
    /// the certificate is checked; the host name goes in SNI and is checked against DNS names.
    init(setup: TLSClientSetup, address: BrokerAddress, peer: SocketAddress) throws(NetworkError) {
        self.address = address
        channel = EmbeddedChannel()
        // SNI takes host names only; an IP address is verified through `peer` instead.
        let isIP = (try? SocketAddress(ipAddress: address.host, port: 0)) != nil
        do {
            let handler = try NIOSSLClientHandler(context: setup.context, serverHostname: isIP ? nil : address.host)
            try channel.pipeline.syncOperations.addHandler(handler)
            try channel.pipeline.syncOperations.addHandler(sink)
        } catch {
            channel.embeddedEventLoop.run()
            _ = try? channel.finish(acceptAlreadyClosed: true)
            throw .tlsHandshakeFailed(address, "cannot set up TLS for \(address.host): \(error)")
        }
        channel.connect(to: peer, promise: nil)
        channel.embeddedEventLoop.run()
    }

    var handshakeCompleted: Bool { sink.handshakeCompleted }

    /// Feeds ciphertext from the socket; appends what it decrypts to `plaintext`. Whatever was
    /// decrypted is handed over even when the session then failed or closed (a broker's last
    /// answer often shares a read with its close_notify): see `failure` afterwards.
    func receive(_ ciphertext: UnsafeRawBufferPointer, into plaintext: inout [UInt8]) {
        let buffer = channel.allocator.buffer(bytes: ciphertext)
        do { try channel.writeInbound(buffer) } catch { sink.error = sink.error ?? error }
        if plaintext.isEmpty {
            swap(&plaintext, &sink.plaintext)
        } else if !sink.plaintext.isEmpty {
            plaintext.append(contentsOf: sink.plaintext)
            sink.plaintext.removeAll(keepingCapacity: true)
        }
    }

    /// Encrypts plaintext; the records wait in `takeCiphertext`.
    func send(_ plaintext: [UInt8]) throws(NetworkError) {
        channel.write(channel.allocator.buffer(bytes: plaintext), promise: nil)
        channel.flush()
        if let failure { throw failure }
    }

    /// Moves the ciphertext waiting for the socket onto `out`.
    func takeCiphertext(into out: inout [UInt8]) {
        while let buffer = try? channel.readOutbound(as: ByteBuffer.self) {
            buffer.withUnsafeReadableBytes { out.append(contentsOf: $0) }
        }
    }

    /// Why the session cannot go on: a TLS error (in the handshake: a certificate that does not
    /// verify, a peer that does not speak TLS...), or the peer's close_notify.
    var failure: NetworkError? {
        if let error = sink.error {
            if sink.handshakeCompleted { return .connectionLost(address, "TLS: \(Self.describe(error, host: address.host))") }
            return .tlsHandshakeFailed(address, Self.describe(error, host: address.host))
        }
        if sink.inactive {
            return .connectionLost(address, sink.handshakeCompleted ? "closed by peer" : "closed by peer during the TLS handshake")
        }
        return nil
    }

    /// Starts a clean TLS close (the close_notify is then in `takeCiphertext`) and releases the
    /// engine; it must not be used afterwards.
    func close() {
        channel.close(promise: nil)
        channel.embeddedEventLoop.run()
    }

    /// Tears the channel down without waiting for the peer's close_notify. Call after `close`
    /// and after taking the last ciphertext.
    func finish() {
        // NIOSSL waits for the peer's close_notify with a timer: on the embedded loop, time only
        // moves when told to, so moving it past the timeout completes the close.
        channel.close(promise: nil)
        channel.embeddedEventLoop.advanceTime(by: .hours(1))
    }

    /// NIOSSL's errors in words a user can act on.
    static func describe(_ error: any Error, host: String) -> String {
        if let e = error as? NIOSSLExtraError, e == .failedToValidateHostname {
            return "the broker's certificate is not for \(host) (ssl.endpoint.identification.algorithm=none skips this check)"
        }
        guard let e = error as? NIOSSLError, case let .handshakeFailed(.sslError(stack)) = e else { return "\(error)" }
        // "error:1000007d:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED at file:line" -> the reason.
        let reasons = stack.map { entry -> String in
            let text = entry.description
            guard let r = text.firstRange(of: "OPENSSL_internal:") else { return text }
            let rest = text[r.upperBound...]
            return String(rest[..<(rest.firstRange(of: " at ")?.lowerBound ?? rest.endIndex)])
        }
        if reasons.contains("CERTIFICATE_VERIFY_FAILED") {
            return "CERTIFICATE_VERIFY_FAILED: the broker's certificate does not chain to a CA of ssl.ca.location (or of the system's store when that is unset), or has expired"
        }
        if reasons.contains("WRONG_VERSION_NUMBER") {
            return "WRONG_VERSION_NUMBER: the peer does not speak TLS (a PLAINTEXT listener?)"
        }
        return reasons.isEmpty ? "\(error)" : reasons.joined(separator: ", ")
    }
}

extension Socket {
    /// The connected peer's address, as NIO spells it.
    func peerAddress() -> SocketAddress? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let rc = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &length) }
        }
        guard rc == 0 else { return nil }
        switch Int32(storage.ss_family) {
        case AF_INET:
            return withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { SocketAddress($0.pointee) } }
        case AF_INET6:
            return withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { SocketAddress($0.pointee) } }
        default:
            return nil
        }
    }
}
