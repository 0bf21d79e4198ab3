// Reply-size estimates (`ReplyBudget`): the text fields escaped, the rest a fixed allowance.

extension Chat: ReplySized {
    public var replySize: Int {
        ReplySize.itemOverhead + ReplySize.text(title) + (lastMessage?.replySize ?? 0)
    }
}

extension ChatListItem: ReplySized {
    public var replySize: Int {
        ReplySize.itemOverhead + ReplySize.text(title) + ReplySize.text(module?.title) + (lastMessage?.replySize ?? 0)
    }
}

extension MessagePreview: ReplySized {
    public var replySize: Int { ReplySize.itemOverhead + ReplySize.text(text) }
}

extension Message: ReplySized {
    public var replySize: Int { ReplySize.itemOverhead + ReplySize.text(content) }
}
