/// Makes opaque, unique ids for new rows (`usr_3f9c…`).
public protocol IDGenerator: Sendable {
    /// A new id: `prefix`, then 32 lowercase hex digits.
    func makeID(prefix: String) -> String
}

/// Ids that sort by creation time: 48 bits of Unix milliseconds, then 80 random bits (the layout
/// of a UUIDv7 or ULID), as 32 lowercase hex digits after the prefix.
///
/// Why time first: every table keeps a unique index on `id`. With fully random ids each insert
/// lands on a random leaf of that index, so a group-commit batch of 100 appends dirtied ~100
/// index pages (100 WAL frames written, later checkpointed, and read back through the page cache).
/// Ids that grow with time land on the index's right edge: a batch dirties one or two pages.
/// 80 random bits per millisecond keep ids unguessable and collisions out of reach; the creation
/// time they reveal is in every row's `createdAt` anyway.
public struct TimeOrderedIDGenerator: IDGenerator {
    private let clock: any WallClock

    public init(clock: any WallClock) {
        self.clock = clock
    }

    public func makeID(prefix: String) -> String {
        var generator = SystemRandomNumberGenerator()
        let milliseconds = UInt64(max(0, clock.now().timeIntervalSince1970 * 1000)) & 0xFFFF_FFFF_FFFF
        let random = generator.next() as UInt64
        // 48 bits of time and the top 16 random bits, then 64 more random bits.
        let high = milliseconds << 16 | random >> 48
        let low = generator.next() as UInt64
        return prefix + Self.hex(high) + Self.hex(low)
    }

    static func hex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
