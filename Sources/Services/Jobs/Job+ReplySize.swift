// Reply-size estimate (`ReplyBudget`): the text fields escaped (the payload and result as if they
// were strings: about what their JSON takes), the rest a fixed allowance.

extension Job: ReplySized {
    public var replySize: Int {
        2 * ReplySize.itemOverhead + ReplySize.text(kind) + ReplySize.text(payload.text) + ReplySize.text(idempotencyKey)
            + ReplySize.text(result?.text) + ReplySize.text(error?.kind) + ReplySize.text(error?.message) + ReplySize.text(workerId)
    }
}
