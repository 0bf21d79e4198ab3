// Reply-size estimate (`ReplyBudget`): the text fields escaped, the rest a fixed allowance.

extension Module: ReplySized {
    public var replySize: Int {
        ReplySize.itemOverhead + ReplySize.text(title) + ReplySize.text(description) + ReplySize.text(content) + ReplySize.texts(tags)
            + (files?.replySize ?? 0)
    }
}
