// Reply-size estimate (`ReplyBudget`): the text fields escaped, the rest a fixed allowance.

extension SearchHit: ReplySized {
    public var replySize: Int {
        ReplySize.itemOverhead + ReplySize.text(title) + ReplySize.text(snippet)
    }
}
