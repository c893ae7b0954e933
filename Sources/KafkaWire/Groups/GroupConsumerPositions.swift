/// Where a group member's fetching stands, for tools that need to know when they have caught up
/// (`kwire consume -G -e`).
extension KafkaGroupConsumer {
    /// The next offset to fetch for each partition this member fetches now.
    public func positions() -> [String: [Int32: Int64]] { fetcher.positions() }

    /// The high watermark last seen in a fetch for each partition this member fetches now (-1 before
    /// the partition's first fetch).
    public func highWatermarks() -> [String: [Int32: Int64]] { fetcher.highWatermarks() }
}
