// Reply-size estimate (`ReplyBudget`): the text fields escaped, the rest a fixed allowance.

extension FileMetadata: ReplySized {
    /// The name and type escaped; the id, size, hash and time within the allowance.
    public var replySize: Int { ReplySize.itemOverhead + ReplySize.text(name) + ReplySize.text(mediaType) }
}

extension [FileMetadata] {
    /// A message's attachments, a module's files.
    var replySize: Int { reduce(0) { $0 + $1.replySize } }
}
