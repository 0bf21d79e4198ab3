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
}
