// Reply-size estimate (`ReplyBudget`): `data` as stored (already JSON), the rest a fixed allowance.

extension EventItem: ReplySized {
    public var replySize: Int { ReplySize.itemOverhead + ReplySize.text(topic) + data.text.utf8.count }
}
