// Reply-size estimates (`ReplyBudget`): the text fields escaped, the rest a fixed allowance.

extension Prompt: ReplySized {
    public var replySize: Int {
        ReplySize.itemOverhead + ReplySize.text(name) + ReplySize.text(description) + ReplySize.text(body) + ReplySize.texts(variables)
    }
}

extension PromptVersionSummary: ReplySized {
    public var replySize: Int { ReplySize.itemOverhead + ReplySize.texts(variables) }
}

extension PromptsService.VersionList: ReplySized {
    public var replySize: Int { versions.reduce(ReplySize.itemOverhead) { $0 + $1.replySize + 1 } }
}

extension PromptsService.Rendered: ReplySized {
    public var replySize: Int { ReplySize.itemOverhead + ReplySize.text(text) + ReplySize.texts(unused) }
}
