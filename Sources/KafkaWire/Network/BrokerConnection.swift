import Logging
import Synchronization

/// The API versions a broker offers, and the version KafkaWire picks for each API.
public struct ApiVersionTable: Sendable {
    /// What the broker advertised, by API key.
    public let broker: [Int16: ClosedRange<Int16>]

    /// Lowest versions KafkaWire uses. Record batch v2 needs Produce >= 3 and Fetch >= 4, and
    /// Kafka 4 removed the older versions of these APIs (a broker may still advertise them and
    /// then reject them).
    public static let clientFloors: [Int16: Int16] = [
        ApiKey.produce.rawValue: 3, ApiKey.fetch.rawValue: 4, ApiKey.listOffsets.rawValue: 1,
        ApiKey.offsetCommit.rawValue: 2, ApiKey.offsetFetch.rawValue: 1, ApiKey.metadata.rawValue: 1,
    ]
    /// Highest versions KafkaWire uses where newer ones change what the client must do:
    /// Fetch v13+ addresses topics by id only.
    public static let clientCaps: [Int16: Int16] = [ApiKey.fetch.rawValue: 12]

    public init(broker: [Int16: ClosedRange<Int16>]) { self.broker = broker }

    /// The range of versions the client can speak for `R`.
    public static func clientRange<R: KafkaRequest>(_: R.Type) -> ClosedRange<Int16> {
        let floor = max(R.validVersions.lowerBound, clientFloors[R.apiKey] ?? R.validVersions.lowerBound)
        let cap = min(R.validVersions.upperBound, clientCaps[R.apiKey] ?? R.validVersions.upperBound)
        return floor...max(floor, cap)
    }

    /// The highest version both sides support.
    public func version<R: KafkaRequest>(for type: R.Type) throws(KafkaError) -> Int16 {
        let client = Self.clientRange(type)
        guard let offered = broker[R.apiKey] else {
            throw .unsupportedVersion(apiKey: R.apiKey, broker: nil, client: client)
        }
        let best = min(client.upperBound, offered.upperBound)
        guard best >= client.lowerBound, best >= offered.lowerBound else {
            throw .unsupportedVersion(apiKey: R.apiKey, broker: offered, client: client)
        }
        return best
    }
}

/// A connection to one broker that speaks typed requests: frames them, negotiates versions once
/// with ApiVersions, decodes answers, and closes itself on anything malformed.
public final class BrokerConnection: Sendable {
    public let address: BrokerAddress
    /// The broker's node id, or a negative placeholder for a bootstrap connection.
    public let nodeId: Int32
    public let versions: ApiVersionTable
    let connection: Connection
    let clientId: String
    let requestTimeoutMs: Int
    let logger: Logger
    let metrics: NetworkMetrics
    private let correlation = Atomic<Int32>(0)

    private init(
        address: BrokerAddress, nodeId: Int32, connection: Connection, versions: ApiVersionTable,
        clientId: String, requestTimeoutMs: Int, logger: Logger
    ) {
        self.address = address
        self.nodeId = nodeId
        self.connection = connection
        self.versions = versions
        self.clientId = clientId
        self.requestTimeoutMs = requestTimeoutMs
        self.logger = logger
        metrics = NetworkMetrics(clientId: clientId)
    }

    public static let softwareName = "kafkawire"
    public static let softwareVersion = "0.1.0"

    /// Connects (with TLS if `security` says so), negotiates API versions, then authenticates
    /// (with SASL if `security` says so).
    public static func open(
        address: BrokerAddress, nodeId: Int32, clientId: String, connectTimeoutMs: Int,
        requestTimeoutMs: Int, maxResponseBytes: Int = 256 << 20, security: ConnectionSecurity = .plaintext,
        logger: Logger
    ) async throws(KafkaError) -> BrokerConnection {
        var tls: TLSClientSetup?
        if security.securityProtocol != .plaintext {
            try security.validate()
            if security.securityProtocol.usesTLS {
                tls = TLSClientSetup(context: try TLSContexts.context(for: security.tls))
            }
        }
        let connection: Connection
        do {
            connection = try await Connection.connect(
                to: address, timeoutMs: connectTimeoutMs, maxFrameBytes: maxResponseBytes, tls: tls)
        } catch let e as NetworkError {
            throw .network(e)
        } catch {
            throw .network(.socketFailed("\(error)"))
        }
        // Until ApiVersions answers, only ApiVersions itself may be sent.
        let bootstrap = BrokerConnection(
            address: address, nodeId: nodeId, connection: connection,
            versions: ApiVersionTable(broker: [ApiKey.apiVersions.rawValue: 0...3]),
            clientId: clientId, requestTimeoutMs: requestTimeoutMs, logger: logger)
        do {
            let table = try await bootstrap.negotiateVersions()
            let negotiated = BrokerConnection(
                address: address, nodeId: nodeId, connection: connection, versions: table,
                clientId: clientId, requestTimeoutMs: requestTimeoutMs, logger: logger)
            if security.securityProtocol.usesSASL {
                let lifetimeMs = try await negotiated.authenticate(security.sasl)
                // KIP-368: a broker with connections.max.reauth.ms closes the connection once the
                // session expires; the cluster then reconnects, authenticating afresh.
                logger.debug("authenticated", metadata: [
                    "broker": "\(address)", "mechanism": "\(security.sasl.mechanism.rawValue)",
                    "session_lifetime_ms": "\(lifetimeMs)",
                ])
            }
            return negotiated
        } catch {
            await connection.close()
            throw error
        }
    }

    /// Asks ApiVersions v3 (flexible, sends the client's name). A broker older than 2.4 does not know
    /// v3: it answers UNSUPPORTED_VERSION in the v0 layout with its own range, and we ask again with
    /// the highest version it offers.
    private func negotiateVersions() async throws(KafkaError) -> ApiVersionTable {
        var request = ApiVersionsRequest()
        request.clientSoftwareName = Self.softwareName
        request.clientSoftwareVersion = Self.softwareVersion
        var version: Int16 = 3
        for _ in 0..<2 {
            let frame = try await roundTrip(request, version: version)
            let response: ApiVersionsResponse
            do {
                response = try decodeBody(ApiVersionsResponse.self, frame: frame, version: version, closeOnFailure: version == 0)
            } catch {
                // Old brokers answer an unknown version in the v0 layout.
                guard version > 0, let v0 = try? decodeBody(ApiVersionsResponse.self, frame: frame, version: 0, closeOnFailure: false),
                      v0.errorCode == KafkaErrorCode.unsupportedVersion.rawValue
                else { throw error }
                version = v0.apiKeys.first { $0.apiKey == ApiKey.apiVersions.rawValue }.map { min($0.maxVersion, 2) } ?? 0
                continue
            }
            if response.errorCode == KafkaErrorCode.unsupportedVersion.rawValue {
                let offered = response.apiKeys.first { $0.apiKey == ApiKey.apiVersions.rawValue }?.maxVersion ?? 0
                guard offered < version else { break }
                version = offered
                continue
            }
            guard response.errorCode == 0 else {
                throw .broker(KafkaErrorCode(rawValue: response.errorCode), context: "ApiVersions from \(address)")
            }
            var table: [Int16: ClosedRange<Int16>] = [:]
            for api in response.apiKeys where api.minVersion <= api.maxVersion {
                table[api.apiKey] = api.minVersion...api.maxVersion
            }
            return ApiVersionTable(broker: table)
        }
        throw .unsupportedVersion(apiKey: ApiKey.apiVersions.rawValue, broker: nil, client: 0...3)
    }

    public var isClosed: Bool { connection.isClosed }
    public var inFlightCount: Int { connection.inFlightCount }

    public func close() async { await connection.close() }

    /// `version` if given, else the negotiated one.
    private func pick<R: KafkaRequest>(_ version: Int16?, _ type: R.Type) throws(KafkaError) -> Int16 {
        if let version { return version }
        return try versions.version(for: type)
    }

    /// Sends a request at the negotiated version (or `version`) and decodes the answer. `queued` is
    /// called once the request is queued on the socket, before its answer is awaited (not at all if
    /// it fails before that).
    public func send<R: KafkaRequest>(
        _ request: R, version: Int16? = nil, timeoutMs: Int? = nil, queued: (@Sendable () -> Void)? = nil
    ) async throws(KafkaError) -> R.Response {
        let v = try pick(version, R.self)
        let frame = try await roundTrip(request, version: v, timeoutMs: timeoutMs, queued: queued)
        return try decodeBody(R.Response.self, frame: frame, version: v)
    }

    /// Sends a request that gets no answer (Produce with acks=0).
    public func sendWithoutResponse<R: KafkaRequest>(
        _ request: R, version: Int16? = nil, queued: (@Sendable () -> Void)? = nil
    ) async throws(KafkaError) {
        let v = try pick(version, R.self)
        _ = try await roundTrip(request, version: v, expectsResponse: false, queued: queued)
    }

    func roundTrip<R: KafkaRequest>(
        _ request: R, version: Int16, timeoutMs: Int? = nil, expectsResponse: Bool = true,
        queued: (@Sendable () -> Void)? = nil
    ) async throws(KafkaError) -> [UInt8] {
        let correlationId = correlation.wrappingAdd(1, ordering: .relaxed).newValue & Int32.max
        var w = WireWriter(capacity: 512)
        w.writeInt32(0)  // size, patched by the connection
        w.writeInt16(R.apiKey)
        w.writeInt16(version)
        w.writeInt32(correlationId)
        w.writeNullableString(clientId, compact: false)  // the header's client id is never compact
        if R.requestHeaderVersion(version) >= 2 { w.writeUnsignedVarint(0) }
        do {
            try request.encode(into: &w, version: version)
        } catch {
            throw .invalidConfiguration("cannot encode \(R.self) v\(version): \(error)")
        }
        let timeout = timeoutMs ?? requestTimeoutMs
        let start = monotonicNanos()
        metrics.started()
        do {
            let frame = try await connection.send(
                frame: w.bytes, correlationId: correlationId, apiKey: R.apiKey, timeoutMs: timeout,
                expectsResponse: expectsResponse, queued: queued)
            metrics.finished(apiKey: R.apiKey, nanos: monotonicNanos() - start)
            if logger.logLevel <= .debug {
                logger.debug("request", metadata: [
                    "api": "\(ApiKey(rawValue: R.apiKey)?.name ?? "\(R.apiKey)")", "version": "\(version)",
                    "correlation_id": "\(correlationId)", "broker": "\(address)", "request_bytes": "\(w.count)",
                    "response_bytes": "\(frame.count)", "latency_ms": "\(Double(monotonicNanos() - start) / 1e6)",
                ])
            }
            return frame
        } catch let e as NetworkError {
            metrics.failed(apiKey: R.apiKey, error: e.metricName)
            logger.debug("request failed", metadata: [
                "api": "\(NetworkMetrics.apiName(R.apiKey))", "correlation_id": "\(correlationId)", "broker": "\(address)", "error": "\(e)",
            ])
            throw .network(e)
        } catch is CancellationError {
            metrics.failed(apiKey: R.apiKey, error: "cancelled")
            throw .timedOut("\(ApiKey(rawValue: R.apiKey)?.name ?? "request") cancelled")
        } catch {
            metrics.failed(apiKey: R.apiKey, error: "socket_failed")
            throw .network(.socketFailed("\(error)"))
        }
    }

    /// Decodes response header and body; a frame that does not decode closes the connection, since
    /// whatever sent it cannot be trusted for the next answer either.
    func decodeBody<M: KafkaResponse>(
        _ type: M.Type, frame: [UInt8], version: Int16, closeOnFailure: Bool = true
    ) throws(KafkaError) -> M {
        do {
            var r = WireReader(frame)
            _ = try r.readInt32("correlation id")
            if M.responseHeaderVersion(version) >= 1 { _ = try r.readTaggedFields() }
            let body = try M(from: &r, version: version)
            guard r.isAtEnd else {
                throw WireDecodingError.trailingBytes(r.remaining, message: "\(M.self) v\(version)")
            }
            return body
        } catch {
            if closeOnFailure { connection.shutdown(reason: .protocolViolation(address, "undecodable \(M.self) v\(version): \(error)")) }
            throw .malformedResponse(address, apiKey: M.apiKey, "\(error)")
        }
    }
}
