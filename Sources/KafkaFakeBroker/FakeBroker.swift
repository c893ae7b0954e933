#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import KafkaProtocol
import Synchronization

/// A scriptable Kafka broker on 127.0.0.1 for tests of what a real broker cannot be made to do:
/// garbage answers, wrong correlation ids, silence, dropped connections, old ApiVersions behaviour.
///
/// Each request is parsed (header v1/v2) and handed to `handler`, which decides what goes back.
public final class FakeBroker: Sendable {
    /// A request as the fake broker received it.
    public struct Request: Sendable {
        public var apiKey: Int16
        public var apiVersion: Int16
        public var correlationId: Int32
        public var clientId: String?
        /// The body after the header (tagged fields of a v2 header already skipped).
        public var body: [UInt8]
        /// The whole frame without its size prefix.
        public var frame: [UInt8]
        public var connectionIndex: Int
    }

    public enum Action: Sendable {
        /// Sends a response header (v0 or v1 as given) with the request's correlation id, then `body`.
        case respond(body: [UInt8], headerVersion: Int16)
        /// Sends these bytes verbatim (a size prefix must be included if wanted).
        case raw([UInt8])
        /// Sends nothing back (a request that gets no answer, or a hung broker).
        case silence
        /// Closes the connection.
        case close
        /// Several actions in order.
        case sequence([Action])
    }

    public let port: Int
    private let listener: Int32
    private let handler: @Sendable (Request) -> Action
    private let state = Mutex<(stopped: Bool, connections: [Int32], count: Int, requests: [Request])>((false, [], 0, []))

    public init(handler: @escaping @Sendable (Request) -> Action) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw FakeBrokerError.socket(errno) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 16) == 0 else { close(fd); throw FakeBrokerError.socket(errno) }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        port = Int(UInt16(bigEndian: addr.sin_port))
        listener = fd
        self.handler = handler
        spawn { [self] in acceptLoop() }
    }

    /// Every request received so far, in arrival order.
    public var requests: [Request] { state.withLock { $0.requests } }
    public var connectionCount: Int { state.withLock { $0.count } }

    /// Stops accepting and ends every connection. Descriptors are shut down under the lock and
    /// closed only by the threads that own them, so a number reused by another broker in the same
    /// process (tests run in parallel) is never touched.
    public func stop() {
        state.withLock { s in
            s.stopped = true
            shutdown(listener, Int32(SHUT_RDWR))
            for fd in s.connections { shutdown(fd, Int32(SHUT_RDWR)) }
        }
    }

    private func acceptLoop() {
        defer { close(listener) }
        while true {
            let fd = accept(listener, nil, nil)
            if fd < 0 {
                if errno == EINTR { continue }
                return
            }
            let index = state.withLock { s -> Int? in
                if s.stopped { return nil }
                s.connections.append(fd)
                s.count += 1
                return s.count - 1
            }
            guard let index else { close(fd); return }
            spawn { [self] in serve(fd, index) }
        }
    }

    private func serve(_ fd: Int32, _ index: Int) {
        defer {
            state.withLock { s in
                s.connections.removeAll { $0 == fd }
                close(fd)
            }
        }
        while true {
            guard let sizeBytes = readExactly(fd, 4) else { return }
            let size = Int(Int32(bitPattern: UInt32(sizeBytes[0]) << 24 | UInt32(sizeBytes[1]) << 16 | UInt32(sizeBytes[2]) << 8 | UInt32(sizeBytes[3])))
            guard size >= 8, size < 64 << 20, let frame = readExactly(fd, size) else { return }
            guard let request = parse(frame, index) else { return }
            state.withLock { $0.requests.append(request) }
            if !perform(handler(request), request, fd) { return }
        }
    }

    private func parse(_ frame: [UInt8], _ index: Int) -> Request? {
        var r = WireReader(frame)
        guard let key = try? r.readInt16(), let version = try? r.readInt16(), let corr = try? r.readInt32(),
              let clientId = try? r.readNullableString(compact: false) else { return nil }
        if FakeBroker.requestIsFlexible(apiKey: key, version: version) { _ = try? r.readTaggedFields() }
        return Request(apiKey: key, apiVersion: version, correlationId: corr, clientId: clientId,
                       body: Array(frame[r.position...]), frame: frame, connectionIndex: index)
    }

    /// Whether the request header has tagged fields (header v2): from the generated request type's
    /// first flexible version. APIs without generated messages are treated as non-flexible.
    static func requestIsFlexible(apiKey: Int16, version: Int16) -> Bool {
        guard let type = ApiKey(rawValue: apiKey)?.requestType else { return false }
        return type.requestHeaderVersion(version) >= 2
    }

    private func perform(_ action: Action, _ request: Request, _ fd: Int32) -> Bool {
        switch action {
        case let .respond(body, headerVersion):
            var w = WireWriter()
            w.writeInt32(0)
            w.writeInt32(request.correlationId)
            if headerVersion >= 1 { w.writeUnsignedVarint(0) }
            w.writeRaw(body)
            w.patchInt32(Int32(w.count - 4), at: 0)
            return writeAll(fd, w.bytes)
        case let .raw(bytes):
            return writeAll(fd, bytes)
        case .silence:
            return true
        case .close:
            return false
        case let .sequence(actions):
            for a in actions where !perform(a, request, fd) { return false }
            return true
        }
    }

    private func readExactly(_ fd: Int32, _ n: Int) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: n)
        var got = 0
        while got < n {
            let r = out.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + got, n - got, 0) }
            if r <= 0 {
                if r < 0 && errno == EINTR { continue }
                return nil
            }
            got += r
        }
        return out
    }

    private func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var sent = 0
        while sent < bytes.count {
            let r = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + sent, bytes.count - sent, Int32(MSG_NOSIGNAL)) }
            if r <= 0 {
                if r < 0 && errno == EINTR { continue }
                return false
            }
            sent += r
        }
        return true
    }
}

public enum FakeBrokerError: Error {
    case socket(Int32)
}

private final class Body {
    let run: () -> Void
    init(_ run: @escaping () -> Void) { self.run = run }
}

private func spawn(_ body: @escaping @Sendable () -> Void) {
    let box = Unmanaged.passRetained(Body(body)).toOpaque()
    var tid = pthread_t()
    if pthread_create(&tid, nil, { arg in
        Unmanaged<Body>.fromOpaque(arg!).takeRetainedValue().run()
        return nil
    }, box) == 0 {
        pthread_detach(tid)
    }
}
