import RPC

extension RPCError.Code {
    // Files (-32070…-32079), docs/ERRORS.md.
    /// `files.upload.chunk` at another offset than the upload's (`data: {expected, actual}`).
    public static let uploadOffsetMismatch = RPCError.Code(-32070)
    /// `files.upload.commit` of bytes whose SHA-256 or size is not the one announced at begin.
    public static let uploadChecksumMismatch = RPCError.Code(-32071)
    /// `files.upload.begin` with `files.max_open_uploads` uploads open already.
    public static let tooManyUploads = RPCError.Code(-32072)
    /// A file the agent cannot give this model (an image to a model without image input).
    public static let attachmentUnsupported = RPCError.Code(-32073)
}

/// The files domain's errors, and how they appear on the wire.
public enum FilesError: Error, Equatable, Sendable, RPCErrorConvertible, InvalidParamsError {
    /// No such file or upload for this user (another user's answers the same). `kind`: `file`, `upload`.
    case notFound(kind: String, id: String)
    /// A param fails validation: `-32602` with `{field, reason}`.
    case invalid(field: String, reason: String)
    /// A param over its limit: `-32602` with `{field, reason, limit, actual}`, naming the setting in `reason`.
    case tooLarge(field: String, reason: String, limit: Int64, actual: Int64)
    /// A chunk not at the upload's offset; nothing of it was kept.
    case offsetMismatch(expected: Int64, actual: Int64)
    /// The committed bytes are not those announced; nothing was kept (the upload is gone).
    case checksumMismatch(field: String, expected: String, actual: String)
    case tooManyUploads(limit: Int)
    /// The agent cannot give `fileId` to the model: `reason` says why.
    case attachmentUnsupported(fileId: String, name: String, reason: String)

    public var rpcError: RPCError {
        switch self {
        case .notFound(let kind, let id):
            RPCError(.notFound, "Not found", data: ["kind": kind, "id": id])
        case .invalid(let field, let reason):
            RPCError.invalidParams(field: field, reason: reason)
        case .tooLarge(let field, let reason, let limit, let actual):
            RPCError.invalidParams(field: field, reason: reason, limit: Int(limit), actual: Int(actual))
        case .offsetMismatch(let expected, let actual):
            RPCError(.uploadOffsetMismatch, "Wrong upload offset", data: ["expected": expected, "actual": actual])
        case .checksumMismatch(let field, let expected, let actual):
            RPCError(.uploadChecksumMismatch, "Upload does not match", data: ["field": field, "expected": expected, "actual": actual])
        case .tooManyUploads(let limit):
            RPCError(.tooManyUploads, "Too many uploads in progress", data: TooManyUploads(limit: limit, setting: "files.max_open_uploads"))
        case .attachmentUnsupported(let fileId, let name, let reason):
            RPCError(.attachmentUnsupported, "Attachment not supported", data: ["fileId": fileId, "name": name, "reason": reason])
        }
    }

    private struct TooManyUploads: Encodable {
        var limit: Int
        var setting: String
    }

    /// What `agent.act` and `agent.regenerate` answer for a file the model cannot be given.
    public static let attachmentUnsupportedDescription = RPCErrorDescription(
        .attachmentUnsupported, "Attachment not supported",
        data: "{fileId, name, reason}: an image for a model not in llm.image_models, binary content, text that is not UTF-8; the model was not called"
    )
    static let fileNotFoundDescription = RPCErrorDescription(
        .notFound, "Not found", data: "{kind: \"file\", id}: no file with this id for the caller (also another user's)")
    static let uploadNotFoundDescription = RPCErrorDescription(
        .notFound, "Not found", data: "{kind: \"upload\", id}: no such upload for the caller (also another user's, committed or expired)")
    static let offsetMismatchDescription = RPCErrorDescription(
        .uploadOffsetMismatch, "Wrong upload offset", data: "{expected, actual}: send the chunk that starts at expected")
    static let checksumMismatchDescription = RPCErrorDescription(
        .uploadChecksumMismatch, "Upload does not match",
        data: "{field, expected, actual}: the bytes' sha256 or size is not the one given to files.upload.begin; nothing was kept")
    static let importUnauthorizedDescription = RPCErrorDescription(
        .unauthorized, "Unauthorized",
        data: "{reason}: no principal on this connection, or the caller's peer uid is not the daemon's own (files.import reads as the daemon's user)")
    static let tooManyUploadsDescription = RPCErrorDescription(
        .tooManyUploads, "Too many uploads in progress", data: "{limit, setting}: commit or let expire one of the caller's uploads first")
}
