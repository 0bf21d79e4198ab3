/// The in-process consumer that writes the audit log: accounts created, and what was deleted or
/// changed that a user may later ask about.
public struct AuditConsumer: EventConsumer {
    public static let audited: Set<String> = [
        AuthEvents.UserRegistered.topic, ModulesEvents.ModuleDeleted.topic, ChatsEvents.ChatDeleted.topic,
        PromptsEvents.PromptUpdated.topic, PromptsEvents.PromptDeleted.topic,
    ]

    public let name = "audit"
    public let topics = AuditConsumer.audited
    private let store: any AuditStore

    public init(store: any AuditStore) {
        self.store = store
    }

    public func handle(_ event: Event) async throws {
        try await store.record(event)
    }
}
