/// A decoded record batch.
///
/// Magic 2 batches map field for field. A legacy message (magic 0/1) becomes a batch of its own:
/// a plain message gives one record, a compressed wrapper gives its inner messages; producer fields
/// are then -1 and `crc` is the message's CRC-32 (IEEE).
public struct RecordBatch: Sendable, Equatable {
    public var baseOffset: Int64
    /// Bytes after the length field (as on the wire).
    public var batchLength: Int32
    public var partitionLeaderEpoch: Int32
    public var magic: Int8
    /// As read from the wire (and verified).
    public var crc: UInt32
    public var attributes: RecordBatchAttributes
    public var lastOffsetDelta: Int32
    public var baseTimestamp: Int64
    public var maxTimestamp: Int64
    public var producerId: Int64
    public var producerEpoch: Int16
    public var baseSequence: Int32
    public var records: [Record]
    /// For a control batch: its control record's key (abort/commit marker).
    public var controlRecord: ControlRecord?

    public init(
        baseOffset: Int64, batchLength: Int32, partitionLeaderEpoch: Int32 = -1, magic: Int8 = 2, crc: UInt32,
        attributes: RecordBatchAttributes, lastOffsetDelta: Int32, baseTimestamp: Int64, maxTimestamp: Int64,
        producerId: Int64 = -1, producerEpoch: Int16 = -1, baseSequence: Int32 = -1, records: [Record],
        controlRecord: ControlRecord? = nil
    ) {
        self.baseOffset = baseOffset
        self.batchLength = batchLength
        self.partitionLeaderEpoch = partitionLeaderEpoch
        self.magic = magic
        self.crc = crc
        self.attributes = attributes
        self.lastOffsetDelta = lastOffsetDelta
        self.baseTimestamp = baseTimestamp
        self.maxTimestamp = maxTimestamp
        self.producerId = producerId
        self.producerEpoch = producerEpoch
        self.baseSequence = baseSequence
        self.records = records
        self.controlRecord = controlRecord
    }

    public var compression: CompressionCodec { attributes.compression ?? .none }
    public var timestampType: TimestampType { attributes.timestampType }
    public var isTransactional: Bool { attributes.isTransactional }
    /// Control batches carry transaction markers: consumers must not hand their records to the application.
    public var isControl: Bool { attributes.isControl }
    public var hasDeleteHorizon: Bool { attributes.hasDeleteHorizon }
    /// Offset of the last record the batch had when written (compaction may have removed records).
    public var lastOffset: Int64 { baseOffset &+ Int64(lastOffsetDelta) }
    /// Where a consumer continues after this batch.
    public var nextOffset: Int64 { lastOffset &+ 1 }
    /// Total bytes of the batch on the wire, including the offset and length fields.
    public var sizeInBytes: Int { 12 + Int(batchLength) }
}
