// Reply-size estimate (`ReplyBudget`): the name and media type escaped, the rest a fixed allowance.

extension FileMetadata: ReplySized {
    public var replySize: Int {
        ReplySize.itemOverhead + ReplySize.text(name) + ReplySize.text(mediaType) + 64
    }
}
