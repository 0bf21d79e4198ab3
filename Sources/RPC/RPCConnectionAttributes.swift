import Synchronization

/// A typed key for a value kept on a connection (`RPCConnectionAttributes`).
///
/// ```swift
/// enum PrincipalKey: RPCConnectionAttributeKey { typealias Value = Principal }
/// context.connection.attributes[PrincipalKey.self] = principal
/// ```
public protocol RPCConnectionAttributeKey {
    associatedtype Value: Sendable
}

/// Values a connection keeps between calls (who it authenticated as, …), by typed key.
/// Thread-safe: calls on one connection run concurrently in their own tasks. The engine never
/// reads them; domains own their keys.
public final class RPCConnectionAttributes: Sendable {
    // The dictionary is only touched under the mutex; values are Sendable.
    private let storage = Mutex<[ObjectIdentifier: any Sendable]>([:])

    public init() {}

    public subscript<Key: RPCConnectionAttributeKey>(key: Key.Type) -> Key.Value? {
        get { storage.withLock { $0[ObjectIdentifier(key)] as? Key.Value } }
        set { storage.withLock { $0[ObjectIdentifier(key)] = newValue } }
    }

    /// Sets `key` to `value` unless it already has a value; returns the value it holds afterwards.
    @discardableResult
    public func setIfAbsent<Key: RPCConnectionAttributeKey>(_ key: Key.Type, _ value: Key.Value) -> Key.Value {
        storage.withLock { values in
            if let existing = values[ObjectIdentifier(key)] as? Key.Value { return existing }
            values[ObjectIdentifier(key)] = value
            return value
        }
    }
}
