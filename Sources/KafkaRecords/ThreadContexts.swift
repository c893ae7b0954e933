import CLZ4
import CZstd

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Codec contexts kept per thread and reused from batch to batch: creating a zstd context costs
/// more than compressing a small batch. Each is freed when its thread exits.
enum ThreadContexts {
    // The destructor closures are literals so that they convert to C function pointers on every
    // platform (Glibc passes an optional pointer, Darwin a non-optional one).
    private static let zstdCompressionKey: pthread_key_t = {
        var key = pthread_key_t()
        let rc = pthread_key_create(&key) { p in _ = ZSTD_freeCCtx(OpaquePointer(p)) }
        precondition(rc == 0, "pthread_key_create failed")
        return key
    }()
    private static let zstdDecompressionKey: pthread_key_t = {
        var key = pthread_key_t()
        let rc = pthread_key_create(&key) { p in _ = ZSTD_freeDCtx(OpaquePointer(p)) }
        precondition(rc == 0, "pthread_key_create failed")
        return key
    }()
    private static let lz4DecompressionKey: pthread_key_t = {
        var key = pthread_key_t()
        let rc = pthread_key_create(&key) { p in _ = LZ4F_freeDecompressionContext(OpaquePointer(p)) }
        precondition(rc == 0, "pthread_key_create failed")
        return key
    }()

    private static func get(_ key: pthread_key_t, create: () -> OpaquePointer?) -> OpaquePointer? {
        if let existing = pthread_getspecific(key) { return OpaquePointer(existing) }
        guard let made = create() else { return nil }
        pthread_setspecific(key, UnsafeMutableRawPointer(made))
        return made
    }

    static func zstdCompression() -> OpaquePointer? {
        get(zstdCompressionKey) { ZSTD_createCCtx() }
    }

    static func zstdDecompression() -> OpaquePointer? {
        get(zstdDecompressionKey) { ZSTD_createDCtx() }
    }

    static func lz4Decompression() -> OpaquePointer? {
        get(lz4DecompressionKey) {
            var dctx: OpaquePointer?
            let rc = LZ4F_createDecompressionContext(&dctx, UInt32(LZ4F_VERSION))
            return LZ4F_isError(rc) == 0 ? dctx : nil
        }
    }
}
