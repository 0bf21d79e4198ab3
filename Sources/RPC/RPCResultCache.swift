import Foundation
import Metrics
import NIOCore
import Synchronization

/// Encoded results of read calls, by caller, method and params, each filed under tags (the ids it
/// shows, `module:mod_…`) so that a change to one of them drops every result that showed it.
///
/// Bounded by entries and bytes (the oldest entries go first). The bytes are what an entry keeps in
/// memory: its result's storage, its key (the params a client wrote are part of it) and tags, and a
/// fixed cost for the bookkeeping; params longer than `maxParamsBytes` are not cached at all (hot
/// reads of one item have short params), and params or results that would keep more storage than
/// they show (a slice of the whole message) are copied first. A result read from the database
/// while a change to it commits must not be kept: every invalidation moves an epoch, and a result
/// is only stored when no invalidation happened since its call looked the cache up
/// (`lookUp` → `store(…, epoch:)`).
public final class RPCResultCache: Sendable {
    public struct Key: Hashable, Sendable {
        public var caller: String
        public var method: String
        /// The params' raw JSON (two spellings of the same params are two entries: harmless).
        public var params: ByteBuffer?
    }

    private struct Entry {
        var value: ByteBuffer
        var tags: [String]
        /// What it counts against `maxBytes`.
        var cost: Int
    }

    private struct State {
        var entries: [Key: Entry] = [:]
        /// Keys in insertion order, for eviction (may hold keys already removed).
        var order: [Key] = []
        var orderStart = 0
        var byTag: [String: Set<Key>] = [:]
        var bytes = 0
        var epoch: UInt64 = 0
    }

    public let maxEntries: Int
    public let maxBytes: Int
    private let state = Mutex(State())

    public init(maxEntries: Int = 10_000, maxBytes: Int = 64 << 20) {
        self.maxEntries = maxEntries
        self.maxBytes = maxBytes
    }

    /// The cached result, or nil with the epoch to pass to `store`.
    public func lookUp(_ key: Key) -> (ByteBuffer?, epoch: UInt64) {
        state.withLock { state in (state.entries[key]?.value, state.epoch) }
    }

    /// Dictionary, order and tag-index entries, and the key's own fields, per entry (about).
    static let entryOverhead = 256

    /// Keeps `value` unless something was invalidated since `epoch`.
    public func store(_ key: Key, value: ByteBuffer, tags: [String], epoch: UInt64) {
        if let params = key.params, params.readableBytes > Self.maxParamsBytes { return }
        var key = key
        // The parser's params are a slice of the message they came in: kept as they are, one
        // 20-byte key would keep the whole message (up to max_message_bytes) alive.
        key.params = key.params.map(Self.compacted)
        let value = Self.compacted(value)
        let held =
            key.caller.utf8.count + key.method.utf8.count + (key.params?.storageCapacity ?? 0) + value.storageCapacity
            + tags.reduce(0) { $0 + $1.utf8.count }
        guard held <= maxBytes / 16 else { return }  // one huge result must not flush the rest
        let cost = Self.entryOverhead + held
        state.withLock { state in
            guard state.epoch == epoch, state.entries[key] == nil else { return }
            state.entries[key] = Entry(value: value, tags: tags, cost: cost)
            state.order.append(key)
            state.bytes += cost
            for tag in tags { state.byTag[tag, default: []].insert(key) }
            while state.entries.count > maxEntries || state.bytes > maxBytes { Self.evictOldest(&state) }
        }
    }

    /// Drops every result filed under `tag`.
    public func invalidate(tag: String) {
        state.withLock { state in
            state.epoch &+= 1
            guard let keys = state.byTag.removeValue(forKey: tag) else { return }
            for key in keys { Self.remove(key, from: &state) }
        }
    }

    public var count: Int { state.withLock { $0.entries.count } }

    /// Params longer than this are not cached: a hot read of one item has short params.
    public static let maxParamsBytes = 4096

    /// What the entries hold in memory, summed from scratch (the storage their buffers keep alive,
    /// not the bytes they show): for tests, which check it against `maxBytes`.
    var retainedBytes: Int {
        state.withLock { state in
            state.entries.reduce(0) { sum, entry in
                sum + entry.key.caller.utf8.count + entry.key.method.utf8.count + (entry.key.params?.storageCapacity ?? 0)
                    + entry.value.value.storageCapacity
            }
        }
    }

    private static func remove(_ key: Key, from state: inout State) {
        guard let entry = state.entries.removeValue(forKey: key) else { return }
        state.bytes -= entry.cost
        for tag in entry.tags {
            state.byTag[tag]?.remove(key)
            if state.byTag[tag]?.isEmpty == true { state.byTag[tag] = nil }
        }
    }

    /// `buffer`'s bytes in storage of their own, unless it holds no more than that already
    /// (ByteBuffer storage comes in powers of two).
    private static func compacted(_ buffer: ByteBuffer) -> ByteBuffer {
        let own = buffer.readableBytes <= 1 ? 1 : 1 << (Int.bitWidth - (buffer.readableBytes - 1).leadingZeroBitCount)
        guard buffer.storageCapacity > own else { return buffer }
        var copy = ByteBufferAllocator().buffer(capacity: buffer.readableBytes)
        copy.writeImmutableBuffer(buffer)
        return copy
    }

    private static func evictOldest(_ state: inout State) {
        while state.orderStart < state.order.count {
            let key = state.order[state.orderStart]
            state.orderStart += 1
            if state.entries[key] != nil {
                remove(key, from: &state)
                break
            }
        }
        // Compact the order list once half of it is consumed.
        if state.orderStart > 1024, state.orderStart * 2 > state.order.count {
            state.order.removeFirst(state.orderStart)
            state.orderStart = 0
        }
    }
}

/// How the cache middleware keeps one method's results (`RPCMethod.cacheRule`): the tags a call's
/// result is filed under, from its params; nil: this call is not cached.
public struct RPCCacheRule: Sendable {
    public var tags: @Sendable (_ params: ByteBuffer?) -> [String]?

    public init(tags: @escaping @Sendable (ByteBuffer?) -> [String]?) {
        self.tags = tags
    }

    private struct IDParams: Decodable {
        var id: String
    }

    /// A read of one item: its result is filed under `tag(prefix, id:)` of its `id` param. Params
    /// that are not an object with a string `id` (by position, say) go through uncached.
    public static func byID(tag prefix: String) -> RPCCacheRule {
        RPCCacheRule { params in
            guard let params, let value = try? JSONDecoder().decode(IDParams.self, from: Data(params.readableBytesView)) else { return nil }
            return [tag(prefix, id: value.id)]
        }
    }

    /// The tag of one item (`module:mod_…`): what `byID(tag:)` files results under and what a change
    /// to the item invalidates.
    public static func tag(_ prefix: String, id: String) -> String {
        "\(prefix):\(id)"
    }
}

/// Serves hot reads from `RPCResultCache` and fills it on a miss, for the methods that declare a
/// cache rule (`RPCMethod.cacheRule`); what is invalidated when is not its business (the
/// composition root connects the event bus to `invalidate(tag:)`). Counts hits and misses per
/// method (`rpc_cache_hits_total`, `rpc_cache_misses_total`).
public struct RPCCacheMiddleware: RPCMiddleware {
    let cache: RPCResultCache
    let caller: @Sendable (RPCContext) -> String?
    let enabled: @Sendable () -> Bool
    private let hits: [String: Counter]
    private let misses: [String: Counter]

    /// - Parameter router: the methods it caches are the routes (in any version) with a cache rule.
    public init(
        cache: RPCResultCache, router: RPCRouter, caller: @escaping @Sendable (RPCContext) -> String?,
        enabled: @escaping @Sendable () -> Bool = { true }
    ) {
        self.cache = cache
        self.caller = caller
        self.enabled = enabled
        var hits: [String: Counter] = [:]
        var misses: [String: Counter] = [:]
        for table in router.tables.values {
            for (method, route) in table where route.cacheRule != nil && hits[method] == nil {
                hits[method] = Counter(label: "rpc_cache_hits_total", dimensions: [("method", method)])
                misses[method] = Counter(label: "rpc_cache_misses_total", dimensions: [("method", method)])
            }
        }
        self.hits = hits
        self.misses = misses
    }

    public func handle(_ request: RPCRequest, context: RPCContext, next: RPCNext) -> RPCReply {
        guard let rule = context.route?.cacheRule, enabled(), let caller = caller(context), let tags = rule.tags(request.params)
        else { return next(request, context) }
        let key = RPCResultCache.Key(caller: caller, method: context.method + "@" + context.apiVersion, params: request.params)
        let (cached, epoch) = cache.lookUp(key)
        if let cached {
            hits[context.method]?.increment()
            return .now(.result(cached))
        }
        misses[context.method]?.increment()
        let cache = self.cache
        let reply = next(request, context)
        reply.whenComplete { outcome in
            if case .result(let value) = outcome { cache.store(key, value: value, tags: tags, epoch: epoch) }
        }
        return reply
    }
}
