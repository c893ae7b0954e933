import Synchronization

/// Bytes of fetched records per partition waiting for the application, against a per-partition
/// bound: the fetch loops skip a partition at its bound, and the reader's progress wakes them.
final class PartitionBufferLedger: Sendable {
    let bound: Int
    private struct State {
        var bytes: [TopicPartition: Int] = [:]
        var peak: [TopicPartition: Int] = [:]
        var onRoom: (@Sendable () -> Void)?
    }
    private let state = Mutex(State())

    init(bound: Int) { self.bound = max(1, bound) }

    /// Called (outside the lock) when a partition falls below its bound.
    var onRoom: (@Sendable () -> Void)? {
        get { state.withLock { $0.onRoom } }
        set { state.withLock { $0.onRoom = newValue } }
    }

    func isFull(_ tp: TopicPartition) -> Bool { state.withLock { ($0.bytes[tp] ?? 0) >= bound } }

    func add(_ tp: TopicPartition, _ n: Int) {
        state.withLock { s in
            let now = (s.bytes[tp] ?? 0) + n
            s.bytes[tp] = now
            if now > s.peak[tp] ?? 0 { s.peak[tp] = now }
        }
    }

    func remove(_ tp: TopicPartition, _ n: Int) {
        let room = state.withLock { s -> (@Sendable () -> Void)? in
            let before = s.bytes[tp] ?? 0
            let after = max(0, before - n)
            s.bytes[tp] = after == 0 ? nil : after
            return before >= bound && after < bound ? s.onRoom : nil
        }
        room?()
    }

    /// Bytes buffered for `tp` now, and the most ever buffered for it.
    func buffered(_ tp: TopicPartition) -> (now: Int, peak: Int) {
        state.withLock { ($0.bytes[tp] ?? 0, $0.peak[tp] ?? 0) }
    }
}
