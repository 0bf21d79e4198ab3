// Reply-size estimate (`ReplyBudget`): the text fields escaped, `data` as stored (already JSON).

extension AuditRecord: ReplySized {
    public var replySize: Int {
        ReplySize.itemOverhead + ReplySize.text(action) + ReplySize.text(outcome) + data.text.utf8.count
    }
}
