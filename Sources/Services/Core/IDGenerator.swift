/// Makes opaque, unique ids for new rows (`usr_3f9c…`).
public protocol IDGenerator: Sendable {
    /// A new id: `prefix`, then 128 random bits.
    func makeID(prefix: String) -> String
}

/// 128 bits from the system's random generator, as 32 lowercase hex digits after the prefix.
public struct RandomIDGenerator: IDGenerator {
    public init() {}

    public func makeID(prefix: String) -> String {
        var generator = SystemRandomNumberGenerator()
        let high = generator.next() as UInt64
        let low = generator.next() as UInt64
        return prefix + Self.hex(high) + Self.hex(low)
    }

    static func hex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
