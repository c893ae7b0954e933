#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CKafkaSupport
import Synchronization

/// Why a connection or a request on it failed.
public enum NetworkError: Error, Sendable, Equatable, CustomStringConvertible {
    case resolveFailed(BrokerAddress, String)
    case connectFailed(BrokerAddress, String)
    case connectTimedOut(BrokerAddress, timeoutMs: Int)
    case socketFailed(String)
    /// The peer closed the connection, or a read/write failed.
    case connectionLost(BrokerAddress, String)
    case requestTimedOut(BrokerAddress, apiKey: Int16, timeoutMs: Int)
    /// The peer sent something that is not a Kafka frame (bad size prefix, wrong correlation id...).
    case protocolViolation(BrokerAddress, String)
    case closed(BrokerAddress)
    /// TLS could not be set up: the broker's certificate does not verify (chain or name), the peer
    /// does not speak TLS, or the two sides share no protocol version or cipher.
    case tlsHandshakeFailed(BrokerAddress, String)

    public var description: String {
        switch self {
        case let .resolveFailed(a, why): "cannot resolve \(a): \(why)"
        case let .connectFailed(a, why): "cannot connect to \(a): \(why)"
        case let .connectTimedOut(a, ms): "connecting to \(a) timed out after \(ms) ms"
        case let .socketFailed(why): "socket error: \(why)"
        case let .connectionLost(a, why): "connection to \(a) lost: \(why)"
        case let .requestTimedOut(a, key, ms):
            "\(ApiKey(rawValue: key)?.name ?? "api \(key)") request to \(a) timed out after \(ms) ms"
        case let .protocolViolation(a, why): "protocol violation from \(a): \(why)"
        case let .closed(a): "connection to \(a) is closed"
        case let .tlsHandshakeFailed(a, why): "TLS handshake with \(a) failed: \(why)"
        }
    }

    /// Whether trying again on a new connection may succeed.
    public var isRetriable: Bool {
        switch self {
        // A certificate or protocol mismatch stays one until the configuration changes.
        case .resolveFailed, .socketFailed, .tlsHandshakeFailed: false
        default: true
        }
    }
}

@inline(__always) func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// One TCP connection to a broker, with any number of requests in flight.
///
/// Kafka answers the requests of one connection in order, so in-flight requests form a FIFO and each
/// response must carry the correlation id at its head; anything else means the stream is corrupt
/// and the connection is closed, failing everything in flight with a typed error.
///
/// A dedicated I/O thread polls the socket (and a wake-up pipe) and completes continuations; callers
/// write directly when nothing is queued, so an idle connection costs no thread hop to send.
///
/// With TLS the I/O thread also owns the TLS engine (see `TLSEngine`): it runs the handshake before
/// `connect` returns, encrypts what callers queue (they queue plaintext and wake it, rather than
/// write) and decrypts what it reads. Without TLS none of that code runs.
public final class Connection: Sendable {
    public let address: BrokerAddress
    let maxFrameBytes: Int

    private struct Pending {
        var correlationId: Int32
        var apiKey: Int16
        var continuation: CheckedContinuation<[UInt8], any Error>?
        var deadline: UInt64
        var timeoutMs: Int
    }

    private struct State {
        var outbound: [UInt8] = []
        var outboundStart = 0
        var inFlight: [Pending] = []
        var inFlightHead = 0
        var closedReason: NetworkError?
        /// Everyone waiting in `close()` (several may: a failed request and the cluster closing).
        var threadDone: [CheckedContinuation<Void, Never>] = []
        var threadExited = false
    }

    private let socket: Socket
    private let wakeRead: Int32
    private let wakeWrite: Int32
    private let state: Mutex<State>
    /// Callers queue plaintext for the I/O thread to encrypt instead of writing to the socket.
    private let usesTLS: Bool

    private init(address: BrokerAddress, socket: Socket, wakeRead: Int32, wakeWrite: Int32, maxFrameBytes: Int, usesTLS: Bool) {
        self.address = address
        self.socket = socket
        self.wakeRead = wakeRead
        self.wakeWrite = wakeWrite
        self.maxFrameBytes = maxFrameBytes
        self.usesTLS = usesTLS
        state = Mutex(State())
    }

    /// Connects (name resolution and the TCP handshake run on a fresh thread, not on the caller's).
    public static func connect(
        to address: BrokerAddress, timeoutMs: Int, maxFrameBytes: Int = 256 << 20
    ) async throws -> Connection {
        try await connect(to: address, timeoutMs: timeoutMs, maxFrameBytes: maxFrameBytes, tls: nil)
    }

    /// Connects, then with `tls` runs the TLS handshake (within the same `timeoutMs`, counted
    /// anew) before returning.
    static func connect(
        to address: BrokerAddress, timeoutMs: Int, maxFrameBytes: Int, tls: TLSClientSetup?
    ) async throws -> Connection {
        let socket = try await runOnThread { () throws(NetworkError) -> Socket in
            try Socket.connect(to: address, timeoutMs: timeoutMs)
        }
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else {
            socket.close()
            throw NetworkError.socketFailed(Socket.errnoDescription())
        }
        for fd in fds { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL, 0) | O_NONBLOCK) }
        let connection = Connection(
            address: address, socket: socket, wakeRead: fds[0], wakeWrite: fds[1], maxFrameBytes: maxFrameBytes,
            usesTLS: tls != nil)
        // Named after the broker port so that tools (and tests) can tell whose thread it is.
        let name = "kw-io:\(address.port)"
        guard let tls else {
            startThread(name: name) { connection.ioLoop(tls: nil) }
            return connection
        }
        let deadline = monotonicNanos() + UInt64(max(timeoutMs, 0)) * 1_000_000
        // On failure the I/O thread has closed everything by the time this throws.
        try await withCheckedThrowingContinuation { (ready: CheckedContinuation<Void, any Error>) in
            let start = TLSStart(setup: tls, deadline: deadline, timeoutMs: timeoutMs, ready: ready)
            startThread(name: name) { connection.ioLoop(tls: start) }
        }
        return connection
    }

    /// The TLS session a new connection's I/O thread sets up, and whom it tells when it is ready.
    private struct TLSStart: Sendable {
        let setup: TLSClientSetup
        let deadline: UInt64
        let timeoutMs: Int
        let ready: CheckedContinuation<Void, any Error>
    }

    public var isClosed: Bool { state.withLock { $0.closedReason != nil } }
    public var inFlightCount: Int { state.withLock { $0.inFlight.count - $0.inFlightHead } }

    /// Sends one framed request (`frame` must begin with a 4-byte size placeholder, patched here)
    /// and returns the response frame (header and body, without the size prefix).
    /// With `expectsResponse == false` (Produce with acks=0) it returns `[]` once the bytes are queued.
    /// `queued` is called once the frame is queued for writing (or refused), before the answer is
    /// awaited: callers that must keep requests in order let the next one go from there.
    public func send(
        frame: [UInt8], correlationId: Int32, apiKey: Int16, timeoutMs: Int, expectsResponse: Bool = true,
        queued: (@Sendable () -> Void)? = nil
    ) async throws -> [UInt8] {
        var frame = frame
        let size = UInt32(frame.count - 4)
        frame[0] = UInt8(truncatingIfNeeded: size >> 24)
        frame[1] = UInt8(truncatingIfNeeded: size >> 16)
        frame[2] = UInt8(truncatingIfNeeded: size >> 8)
        frame[3] = UInt8(truncatingIfNeeded: size)

        if !expectsResponse {
            let error = enqueue(frame, pending: nil)
            queued?()
            if let error { throw error }
            return []
        }
        let deadline = monotonicNanos() + UInt64(max(timeoutMs, 0)) * 1_000_000
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<[UInt8], any Error>) in
                let p = Pending(correlationId: correlationId, apiKey: apiKey, continuation: c, deadline: deadline, timeoutMs: timeoutMs)
                let error = enqueue(frame, pending: p)
                queued?()
                if let error { c.resume(throwing: error); return }
                // A task cancelled before the request was queued ran the handler below too early to
                // find it: release the waiter now rather than at the request's deadline.
                if Task.isCancelled { releaseWaiter(correlationId) }
            }
        } onCancel: {
            releaseWaiter(correlationId)
        }
    }

    /// Fails the waiter of a request with CancellationError. The response will still arrive and
    /// must be read to keep the stream aligned: only the waiter is released.
    private func releaseWaiter(_ correlationId: Int32) {
        let c = state.withLock { s -> CheckedContinuation<[UInt8], any Error>? in
            guard let i = s.inFlight[s.inFlightHead...].firstIndex(where: { $0.correlationId == correlationId }) else { return nil }
            defer { s.inFlight[i].continuation = nil }
            return s.inFlight[i].continuation
        }
        c?.resume(throwing: CancellationError())
    }

    /// Queues bytes, writing straight to the socket when nothing else is queued.
    private func enqueue(_ frame: [UInt8], pending: Pending?) -> NetworkError? {
        // The I/O thread sleeps without a deadline when nothing is in flight: wake it so it starts
        // watching this request's deadline, or the socket for writability.
        let error: NetworkError? = state.withLock { s in
            if let reason = s.closedReason { return reason }
            if let pending { s.inFlight.append(pending) }
            if usesTLS {
                // The I/O thread drains the whole queue each time it wakes: one wake-up per batch.
                let wasEmpty = s.outbound.isEmpty
                s.outbound.append(contentsOf: frame)
                if wasEmpty || (pending != nil && s.inFlight.count - s.inFlightHead == 1) { wakeLocked(s) }
                return nil
            }
            if s.outbound.count == s.outboundStart {
                let written = frame.withUnsafeBytes { write(socket.fd, $0.baseAddress, $0.count) }
                if written == frame.count {
                    if pending != nil && s.inFlight.count - s.inFlightHead == 1 { wakeLocked(s) }
                    return nil
                }
                if written < 0 && errno != EAGAIN && errno != EWOULDBLOCK {
                    // Leave the failure to the I/O thread, which owns closing.
                    s.outbound.append(contentsOf: frame)
                } else {
                    s.outbound.append(contentsOf: frame[max(written, 0)...])
                }
                wakeLocked(s)
            } else {
                s.outbound.append(contentsOf: frame)
            }
            return nil
        }
        return error
    }

    /// Wakes the I/O thread. Called under the lock: the pipe is closed by that thread under the
    /// same lock, so a wake-up can never write into a descriptor number that has since been reused.
    private func wakeLocked(_ s: borrowing State) {
        guard !s.threadExited else { return }
        var one: UInt8 = 1
        _ = write(wakeWrite, &one, 1)
    }

    /// Fails everything in flight and closes; returns once the I/O thread has released the socket.
    public func close() async {
        shutdown(reason: .closed(address))
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let resumeNow = state.withLock { s -> Bool in
                if s.threadExited { return true }
                s.threadDone.append(c)
                return false
            }
            if resumeNow { c.resume() }
        }
    }

    /// Marks the connection closed and fails all waiters; the I/O thread then exits and closes fds.
    func shutdown(reason: NetworkError) {
        let waiters = state.withLock { s -> [CheckedContinuation<[UInt8], any Error>] in
            if s.closedReason == nil { s.closedReason = reason }
            let w = s.inFlight[s.inFlightHead...].compactMap(\.continuation)
            s.inFlight.removeAll()
            s.inFlightHead = 0
            s.outbound.removeAll()
            s.outboundStart = 0
            wakeLocked(s)
            return w
        }
        for w in waiters { w.resume(throwing: reason) }
    }

    // MARK: I/O thread

    private func ioLoop(tls start: TLSStart?) {
        var inbound: [UInt8] = []
        inbound.reserveCapacity(1 << 16)
        let chunk = 1 << 18
        var scratch = [UInt8](repeating: 0, count: chunk)
        var drain = [UInt8](repeating: 0, count: 64)

        // TLS only: the engine, ciphertext not yet written, the plaintext queue taken from callers,
        // and the waiter of `connect` until the handshake ends one way or the other.
        var tls: TLSEngine?
        var cipher: [UInt8] = []
        var cipherStart = 0
        var plaintext: [UInt8] = []
        var ready = start?.ready
        if let start {
            if let peer = socket.peerAddress() {
                do throws(NetworkError) {
                    tls = try TLSEngine(setup: start.setup, address: address, peer: peer)
                } catch {
                    shutdown(reason: error)
                }
            } else {
                shutdown(reason: .connectionLost(address, "no peer address: \(Socket.errnoDescription())"))
            }
        }

        loop: while true {
            let (closed, queued, nextDeadline) = state.withLock { s in
                (s.closedReason != nil, s.outbound.count > s.outboundStart,
                 s.inFlight[s.inFlightHead...].lazy.map(\.deadline).min())
            }
            if closed { break }
            var wantWrite = queued
            var deadline = nextDeadline
            if let tls {
                if queued && tls.handshakeCompleted {
                    state.withLock { s in
                        swap(&plaintext, &s.outbound)
                        s.outboundStart = 0
                    }
                    do throws(NetworkError) { try tls.send(plaintext) } catch { shutdown(reason: error); break }
                    plaintext.removeAll(keepingCapacity: plaintext.capacity <= 1 << 20)
                }
                tls.takeCiphertext(into: &cipher)
                if let error = writeSome(&cipher, from: &cipherStart) { shutdown(reason: error); break }
                wantWrite = cipher.count > cipherStart
                if let start, ready != nil { deadline = min(deadline ?? start.deadline, start.deadline) }
            }
            var timeout: Int32 = -1
            if let d = deadline {
                let now = monotonicNanos()
                timeout = d <= now ? 0 : Int32(clamping: (d - now) / 1_000_000 + 1)
            }
            var fds = [
                pollfd(fd: socket.fd, events: Int16(POLLIN) | (wantWrite ? Int16(POLLOUT) : 0), revents: 0),
                pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0),
            ]
            let n = poll(&fds, 2, timeout)
            if n < 0 {
                if errno == EINTR { continue }
                shutdown(reason: .socketFailed(Socket.errnoDescription()))
                break
            }
            if fds[1].revents != 0 { while read(wakeRead, &drain, drain.count) > 0 {} }

            if fds[0].revents & Int16(POLLOUT) != 0 && tls == nil {
                if let error = flushOutbound() { shutdown(reason: error); break }
            }
            if fds[0].revents & (Int16(POLLIN) | Int16(POLLHUP) | Int16(POLLERR)) != 0 {
                // Read everything available now, then hand out complete frames.
                var tlsFailure: NetworkError?
                while true {
                    let got = scratch.withUnsafeMutableBytes { recv(socket.fd, $0.baseAddress, chunk, 0) }
                    if got > 0 {
                        if let tls {
                            scratch.withUnsafeBytes { tls.receive(UnsafeRawBufferPointer(rebasing: $0[0..<got]), into: &inbound) }
                            if tls.handshakeCompleted, let r = ready {
                                ready = nil
                                r.resume()
                            }
                            // Answers decrypted before a failure or close_notify still go out below.
                            if let failure = tls.failure {
                                tlsFailure = failure
                                break
                            }
                        } else {
                            inbound.append(contentsOf: scratch[0..<got])
                        }
                        if got < chunk { break }
                    } else if got == 0 {
                        let why = tls != nil && ready != nil ? "closed by peer during the TLS handshake" : "closed by peer"
                        shutdown(reason: .connectionLost(address, why))
                        break loop
                    } else {
                        if errno == EINTR { continue }
                        if errno == EAGAIN || errno == EWOULDBLOCK { break }
                        shutdown(reason: .connectionLost(address, Socket.errnoDescription()))
                        break loop
                    }
                }
                if let error = dispatchFrames(&inbound) { shutdown(reason: error); break }
                if let tlsFailure { shutdown(reason: tlsFailure); break }
            }
            if let expired = expiredRequest() {
                shutdown(reason: .requestTimedOut(address, apiKey: expired.apiKey, timeoutMs: expired.timeoutMs))
                break
            }
            if let start, ready != nil, monotonicNanos() >= start.deadline {
                shutdown(reason: .connectTimedOut(address, timeoutMs: start.timeoutMs))
                break
            }
        }
        if let tls {
            // A polite close_notify if the socket takes it now; the engine dies on this thread.
            tls.close()
            tls.takeCiphertext(into: &cipher)
            _ = writeSome(&cipher, from: &cipherStart)
            tls.finish()
        }
        if let ready {
            ready.resume(throwing: state.withLock { $0.closedReason } ?? NetworkError.closed(address))
        }
        let done = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            socket.close()
            _ = closeDescriptor(wakeRead)
            _ = closeDescriptor(wakeWrite)
            s.threadExited = true
            defer { s.threadDone = [] }
            return s.threadDone
        }
        for c in done { c.resume() }
    }

    private func flushOutbound() -> NetworkError? {
        state.withLock { s in writeSome(&s.outbound, from: &s.outboundStart) }
    }

    /// Writes `buffer[start...]` until done or the socket is full; empties the buffer once all of
    /// it is written.
    private func writeSome(_ buffer: inout [UInt8], from start: inout Int) -> NetworkError? {
        while buffer.count > start {
            let written = buffer.withUnsafeBytes { write(socket.fd, $0.baseAddress! + start, $0.count - start) }
            if written < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK { return nil }
                return .connectionLost(address, Socket.errnoDescription())
            }
            start += written
        }
        buffer.removeAll(keepingCapacity: buffer.capacity <= 1 << 20)
        start = 0
        return nil
    }

    /// Splits complete frames off `inbound` and completes their waiters in order.
    private func dispatchFrames(_ inbound: inout [UInt8]) -> NetworkError? {
        var consumed = 0
        var completions: [(CheckedContinuation<[UInt8], any Error>, [UInt8])] = []
        var failure: NetworkError?
        while inbound.count - consumed >= 4 {
            let size = Int(Int32(bitPattern:
                UInt32(inbound[consumed]) << 24 | UInt32(inbound[consumed + 1]) << 16
                | UInt32(inbound[consumed + 2]) << 8 | UInt32(inbound[consumed + 3])))
            guard size >= 4, size <= maxFrameBytes else {
                failure = .protocolViolation(address, "response size \(size) outside 4...\(maxFrameBytes)")
                break
            }
            guard inbound.count - consumed - 4 >= size else { break }
            let frame = Array(inbound[consumed + 4..<consumed + 4 + size])
            consumed += 4 + size
            let correlationId = Int32(bitPattern:
                UInt32(frame[0]) << 24 | UInt32(frame[1]) << 16 | UInt32(frame[2]) << 8 | UInt32(frame[3]))
            let waiter = state.withLock { s -> Result<CheckedContinuation<[UInt8], any Error>?, NetworkError> in
                guard s.inFlightHead < s.inFlight.count else {
                    return .failure(.protocolViolation(address, "response with correlation id \(correlationId) but nothing in flight"))
                }
                let head = s.inFlight[s.inFlightHead]
                guard head.correlationId == correlationId else {
                    return .failure(.protocolViolation(address, "expected correlation id \(head.correlationId), got \(correlationId)"))
                }
                s.inFlightHead += 1
                if s.inFlightHead == s.inFlight.count {
                    s.inFlight.removeAll(keepingCapacity: true)
                    s.inFlightHead = 0
                } else if s.inFlightHead > 1024 {
                    s.inFlight.removeFirst(s.inFlightHead)
                    s.inFlightHead = 0
                }
                return .success(head.continuation)
            }
            switch waiter {
            case let .success(c): if let c { completions.append((c, frame)) }
            case let .failure(e): failure = e
            }
            if failure != nil { break }
        }
        if consumed > 0 { inbound.removeFirst(consumed) }
        for (c, frame) in completions { c.resume(returning: frame) }
        return failure
    }

    private func expiredRequest() -> Pending? {
        let now = monotonicNanos()
        return state.withLock { s in s.inFlight[s.inFlightHead...].first { $0.deadline <= now } }
    }
}

// MARK: Threads

private final class ThreadBody {
    let run: () -> Void
    init(_ run: @escaping () -> Void) { self.run = run }
}

/// Starts a detached POSIX thread (the I/O loops block in poll, so they must not use the
/// cooperative pool).
func startThread(name: String? = nil, _ body: @escaping @Sendable () -> Void) {
    let box = Unmanaged.passRetained(ThreadBody {
        if let name { kw_set_thread_name(name) }
        body()
    }).toOpaque()
    var attr = pthread_attr_t()
    pthread_attr_init(&attr)
    pthread_attr_setdetachstate(&attr, Int32(PTHREAD_CREATE_DETACHED))
    var tid = pthread_t()
    let rc = pthread_create(&tid, &attr, { arg in
        let body = Unmanaged<ThreadBody>.fromOpaque(arg!).takeRetainedValue()
        body.run()
        return nil
    }, box)
    pthread_attr_destroy(&attr)
    if rc != 0 {
        // Out of threads: run inline rather than lose the work.
        Unmanaged<ThreadBody>.fromOpaque(box).takeRetainedValue().run()
    }
}

/// Runs blocking work (name resolution, connect) on its own thread and awaits its result.
func runOnThread<T: Sendable>(_ work: @escaping @Sendable () throws(NetworkError) -> T) async throws(NetworkError) -> T {
    let result: Result<T, NetworkError> = await withCheckedContinuation { c in
        startThread {
            do throws(NetworkError) { c.resume(returning: .success(try work())) } catch { c.resume(returning: .failure(error)) }
        }
    }
    return try result.get()
}
