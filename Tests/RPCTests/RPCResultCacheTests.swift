import NIOCore
import Testing

@testable import RPC

/// The result cache: hits, invalidation by tag, the epoch that keeps a result read during a change
/// out, and its bounds.
@Suite("Result cache")
struct RPCResultCacheTests {
    static func key(_ caller: String, _ id: String) -> RPCResultCache.Key {
        RPCResultCache.Key(caller: caller, method: "modules.get@1", params: ByteBuffer(string: #"{"id":"\#(id)"}"#))
    }

    @Test("a stored result is found for the same caller and params only; invalidating its tag drops it")
    func hitAndInvalidate() {
        let cache = RPCResultCache()
        let (missed, epoch) = cache.lookUp(Self.key("usr_a", "mod_1"))
        #expect(missed == nil)
        cache.store(Self.key("usr_a", "mod_1"), value: ByteBuffer(string: "v1"), tags: ["module:mod_1"], epoch: epoch)
        #expect(cache.lookUp(Self.key("usr_a", "mod_1")).0 == ByteBuffer(string: "v1"))
        #expect(cache.lookUp(Self.key("usr_b", "mod_1")).0 == nil)
        #expect(cache.lookUp(Self.key("usr_a", "mod_2")).0 == nil)
        cache.invalidate(tag: "module:mod_2")
        #expect(cache.lookUp(Self.key("usr_a", "mod_1")).0 != nil)
        cache.invalidate(tag: "module:mod_1")
        #expect(cache.lookUp(Self.key("usr_a", "mod_1")).0 == nil)
        #expect(cache.count == 0)
    }

    @Test("a result looked up before a change commits is not stored after it (it may be the old value)")
    func raceWithAChange() {
        let cache = RPCResultCache()
        let (_, epoch) = cache.lookUp(Self.key("usr_a", "mod_1"))
        // The handler reads the old row; meanwhile the update commits and invalidates.
        cache.invalidate(tag: "module:mod_1")
        cache.store(Self.key("usr_a", "mod_1"), value: ByteBuffer(string: "old"), tags: ["module:mod_1"], epoch: epoch)
        #expect(cache.lookUp(Self.key("usr_a", "mod_1")).0 == nil)
    }

    @Test("bounded: past maxEntries or maxBytes the oldest go first; a result too big for it is not kept")
    func bounds() {
        let cache = RPCResultCache(maxEntries: 3, maxBytes: 1600)
        for n in 1...5 {
            let epoch = cache.lookUp(Self.key("usr_a", "mod_\(n)")).epoch
            cache.store(Self.key("usr_a", "mod_\(n)"), value: ByteBuffer(string: "v\(n)"), tags: ["module:mod_\(n)"], epoch: epoch)
        }
        #expect(cache.count == 3)
        #expect(cache.lookUp(Self.key("usr_a", "mod_1")).0 == nil && cache.lookUp(Self.key("usr_a", "mod_5")).0 != nil)
        let epoch = cache.lookUp(Self.key("usr_a", "big")).epoch
        cache.store(Self.key("usr_a", "big"), value: ByteBuffer(string: String(repeating: "x", count: 200)), tags: [], epoch: epoch)
        #expect(cache.lookUp(Self.key("usr_a", "big")).0 == nil)
    }

    // Issue 17, item 6: "bounded by entries, not bytes (10k x 4 MiB)". Values were already bounded
    // by bytes; the keys (caller, method and the params a client writes) were not counted at all.

    /// Stores `count` results under `params(n)`, each as a fresh lookup would.
    static func fill(_ cache: RPCResultCache, count: Int, value: (Int) -> ByteBuffer, params: (Int) -> ByteBuffer) {
        for n in 0..<count {
            let key = RPCResultCache.Key(caller: "usr_a", method: "prompts.render@1", params: params(n))
            let epoch = cache.lookUp(key).epoch
            cache.store(key, value: value(n), tags: ["prompt:p_\(n)"], epoch: epoch)
        }
    }

    /// Before the fix: 88 MiB held for 64 MiB counted, not the finding's 10,000 x 4 MiB.
    @Test("results were bounded by the bytes they show (64 MiB), not only by entries; what their storage holds (powers of two) is now what counts")
    func valuesWereBoundedByBytes() {
        let cache = RPCResultCache()  // the daemon's defaults: 10,000 entries, 64 MiB
        // 1 to 3 MiB each, 80 MiB in all: the ByteBuffers hold 2 or 4 MiB each.
        Self.fill(
            cache, count: 40, value: { ByteBuffer(repeating: UInt8(ascii: "x"), count: (1 << 20) + $0 * 53_000) },
            params: { ByteBuffer(string: #"{"id":"p_\#($0)"}"#) })
        #expect(cache.retainedBytes <= cache.maxBytes, "\(cache.retainedBytes) bytes held")
        #expect(cache.count > 0 && cache.count < 40)
    }

    @Test("keys count: a client's params (any size, whitespace included) are bytes the cache holds, within maxBytes")
    func keyBytesAreCounted() {
        let cache = RPCResultCache(maxEntries: 10_000, maxBytes: 1 << 20)
        // Distinct keys for the same call: about 3,000 bytes of params padded with n spaces (under
        // maxParamsBytes, so cached) and a two-byte result. Counting only results, all 1,000 stay.
        Self.fill(
            cache, count: 1000, value: { _ in ByteBuffer(string: "{}") },
            params: { n in
                ByteBuffer(
                    string: #"{"id":"p_1","variables":{"text":""# + String(repeating: "y", count: 2900) + #""}"# + String(repeating: " ", count: n)
                        + "}")
            })
        #expect(
            cache.count > 0 && cache.count * 2900 <= cache.maxBytes,
            "\(cache.count) entries of 2,900+ bytes of params in a cache of \(cache.maxBytes)")
        #expect(cache.retainedBytes <= cache.maxBytes, "\(cache.retainedBytes) bytes held by a cache of \(cache.maxBytes)")
    }

    @Test("small params are still cached, counted with their key; large ones are not cached at all")
    func largeParamsAreNotCached() {
        let cache = RPCResultCache(maxEntries: 10_000, maxBytes: 1 << 20)
        let small = RPCResultCache.Key(caller: "usr_a", method: "modules.get@1", params: ByteBuffer(string: #"{"id":"mod_1"}"#))
        cache.store(small, value: ByteBuffer(string: "v"), tags: [], epoch: cache.lookUp(small).epoch)
        #expect(cache.lookUp(small).0 == ByteBuffer(string: "v"))
        let large = RPCResultCache.Key(
            caller: "usr_a", method: "modules.get@1",
            params: ByteBuffer(string: #"{"id":"mod_1""# + String(repeating: " ", count: RPCResultCache.maxParamsBytes) + "}"))
        cache.store(large, value: ByteBuffer(string: "v"), tags: [], epoch: cache.lookUp(large).epoch)
        #expect(cache.lookUp(large).0 == nil)
    }

    @Test("a key keeps only its params, not the whole message they were read from")
    func paramsSliceDoesNotPinTheMessage() {
        let cache = RPCResultCache(maxEntries: 10_000, maxBytes: 1 << 20)
        Self.fill(
            cache, count: 16, value: { _ in ByteBuffer(string: "{}") },
            params: { n in
                // The parser hands params as a slice of the message: here a 1 MiB one.
                var message = ByteBuffer(string: #"{"id":"p_\#(n)"}"#)
                message.writeRepeatingByte(UInt8(ascii: " "), count: 1 << 20)
                return message.getSlice(at: 0, length: #"{"id":"p_\#(n)"}"#.utf8.count)!
            })
        #expect(cache.count == 16)
        #expect(cache.retainedBytes <= cache.maxBytes, "\(cache.retainedBytes) bytes held by a cache of \(cache.maxBytes)")
    }
}
