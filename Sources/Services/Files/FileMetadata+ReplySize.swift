// Reply-size estimate (`ReplyBudget`): the name and media type escaped, the rest a fixed allowance.

extension FileMetadata: ReplySized {
    public var replySize: Int {
        ReplySize.itemOverhead + ReplySize.text(name) + ReplySize.text(mediaType) + 64
    }
}

extension [FileMetadata] {
    /// A message's attachments, a module's files.
    var replySize: Int { reduce(0) { $0 + $1.replySize } }
}
