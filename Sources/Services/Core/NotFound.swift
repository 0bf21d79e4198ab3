import RPC

extension RPCError.Code {
    /// No such resource for the caller (another user's answers the same): shared by every domain
    /// (`data: {kind, id}`), docs/ERRORS.md.
    public static let notFound = RPCError.Code(-32030)
}
