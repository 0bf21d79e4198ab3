import Logging
import RPC

/// `files.uploads_expire`: removes uploads past their `expiresAt` (rows, reservations and staged
/// bytes), a system job the daemon enqueues every `files.uploads_expire_interval_seconds`.
public struct UploadsExpireJob: JobHandler {
    public static let kind = "files.uploads_expire"

    /// Retried (the database busy, a disk error for a moment); running again only removes what is
    /// still expired.
    public let policy = JobKindPolicy(
        kind: kind, concurrency: 1, maxAttempts: 3, rerunAfterCrash: true, baseBackoff: .seconds(10), maxBackoff: .seconds(120), lease: .seconds(60),
        isRetriable: { !($0 is CancellationError) })

    private let files: FilesService
    private let logger: Logger

    public init(files: FilesService, logger: Logger) {
        self.files = files
        self.logger = logger
    }

    /// `{removed}`.
    public func run(_ job: ClaimedJob) async throws -> JSONFragment? {
        var removed = 0
        // A page at a time until none is left (a page removed less than full: the rest is not expired).
        while true {
            let count = try await files.expireUploads(limit: 100)
            removed += count
            if count < 100 { break }
        }
        if removed > 0 { logger.info("removed expired uploads", metadata: ["removed": "\(removed)"]) }
        return JSONFragment(unchecked: #"{"removed":\#(removed)}"#)
    }
}
