/// Where a new message goes in its chat's tree.
public enum MessagePlacement: Sendable, Equatable {
    /// After the active branch's leaf (first message when the chat is empty).
    case afterActiveLeaf
    /// After this message, which must be in the same chat.
    case after(messageID: String)
    /// Next to this message (same parent): an edit or a regeneration of it.
    case siblingOf(messageID: String)

    /// The placement a call's `parentId` and `siblingOf` ask for (`chats.messages.append`,
    /// `agent.act`): after `parentId`, next to `siblingOf`, else after the active branch's leaf.
    ///
    /// - Throws: `Failure.invalid` (`siblingOf`) when both are given.
    init<Failure: InvalidParamsError>(parentId: String?, siblingOf: String?, invalid _: Failure.Type) throws(Failure) {
        switch (parentId, siblingOf) {
        case (nil, nil): self = .afterActiveLeaf
        case (let parent?, nil): self = .after(messageID: parent)
        case (nil, let sibling?): self = .siblingOf(messageID: sibling)
        case (.some, .some): throw Failure.invalid(field: "siblingOf", reason: "give parentId or siblingOf, not both")
        }
    }

    /// The message the new one is placed against, if any.
    var anchorID: String? {
        switch self {
        case .afterActiveLeaf: nil
        case .after(let id), .siblingOf(let id): id
        }
    }
}
