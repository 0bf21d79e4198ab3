// Reply-size estimate (`ReplyBudget`): the text fields escaped, the rest a fixed allowance.

extension AgentRun: ReplySized {
    public var replySize: Int {
        2 * ReplySize.itemOverhead + ReplySize.text(provider) + ReplySize.text(model) + ReplySize.text(error?.kind) + ReplySize.text(error?.message)
    }
}
