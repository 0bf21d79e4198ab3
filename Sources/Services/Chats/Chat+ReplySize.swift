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
    public var replySize: Int { ReplySize.itemOverhead + ReplySize.text(content) + (attachments?.replySize ?? 0) }
}

extension MessageDetail: ReplySized {
    public var replySize: Int {
        ReplySize.itemOverhead + ReplySize.text(content) + (attachments?.replySize ?? 0) + (generation?.replySize ?? 0)
    }
}

extension MessageGeneration: ReplySized {
    /// The searches' queries and results and the tool calls' arguments are the model's and the
    /// web's text: counted in full.
    public var replySize: Int {
        var size = ReplySize.itemOverhead + ReplySize.text(provider) + ReplySize.text(model)
        for search in searches {
            size += ReplySize.itemOverhead + ReplySize.text(search.query) + ReplySize.text(search.requestId) + ReplySize.text(search.error?.message)
            for result in search.results {
                size += ReplySize.itemOverhead + ReplySize.text(result.title) + ReplySize.text(result.url) + ReplySize.text(result.content)
            }
        }
        for call in toolCalls {
            size += ReplySize.itemOverhead + ReplySize.text(call.id) + ReplySize.text(call.name) + ReplySize.text(call.arguments)
        }
        return size
    }
}
