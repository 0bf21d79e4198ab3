import RPC

/// How many bytes of text each user may store (`limits.storage_quota_bytes`): what the stores count
/// is listed in schema/0012_storage_usage.sql. A write that would take a user past it is refused
/// whole (`QuotaExceededError`); writes that remove or shrink text always pass, also over quota.
public struct StorageQuota: Sendable, Equatable {
    /// 1 GiB.
    public static let defaultLimitBytes: Int64 = 1 << 30
    public static let unlimited = StorageQuota(limitBytes: 0)

    /// 0: no limit.
    public var limitBytes: Int64

    public init(limitBytes: Int64 = defaultLimitBytes) {
        precondition(limitBytes >= 0)
        self.limitBytes = limitBytes
    }

    public var isUnlimited: Bool { limitBytes == 0 }

    /// Whether a user may store `bytes` in all.
    public func allows(_ bytes: Int64) -> Bool { isUnlimited || bytes <= limitBytes }
}

/// A user's stored bytes against their quota, as `auth.whoami` (API version 2) shows them.
public struct StorageUsage: Codable, Sendable, Equatable {
    public var storedBytes: Int64
    /// Absent when there is no quota.
    public var quotaBytes: Int64?

    public init(storedBytes: Int64, quota: StorageQuota) {
        self.storedBytes = storedBytes
        self.quotaBytes = quota.isUnlimited ? nil : quota.limitBytes
    }
}

extension RPCError.Code {
    /// A write would take its user past their storage quota (`data: {limit, actual}`), docs/ERRORS.md.
    public static let quotaExceeded = RPCError.Code(-32007)
}

/// A write refused by the storage quota: nothing of it was stored. Shared by every domain that
/// stores a user's data.
public struct QuotaExceededError: Error, Equatable, Sendable, RPCErrorConvertible {
    /// The quota in bytes.
    public var limit: Int64
    /// The user's stored bytes had the write been made.
    public var actual: Int64

    public init(limit: Int64, actual: Int64) {
        self.limit = limit
        self.actual = actual
    }

    public var rpcError: RPCError {
        RPCError(.quotaExceeded, "Quota exceeded", data: ["limit": limit, "actual": actual])
    }

    public static let description = RPCErrorDescription(
        .quotaExceeded, "Quota exceeded",
        data: "{limit, actual} in bytes: the write would take the caller's stored text past limits.storage_quota_bytes; nothing was stored")
}
