/// Rebuilds complete tool calls from a stream's `.toolCall` pieces: pieces are joined per `index`
/// (parallel calls may interleave), `id` and `name` are kept from the first piece that has them,
/// arguments are concatenated in arrival order.
///
/// ```swift
/// var calls = LLMToolCallAccumulator()
/// for try await event in provider.stream(request) {
///     if case .toolCall(let index, let id, let name, let arguments) = event {
///         calls.add(index: index, id: id, name: name, arguments: arguments)
///     }
/// }
/// let toolCalls = calls.calls   // [LLMToolCall], by index
/// ```
public struct LLMToolCallAccumulator: Sendable, Equatable {
    private var pieces: [Int: (id: String?, name: String?, arguments: String)] = [:]

    public init() {}

    public var isEmpty: Bool { pieces.isEmpty }

    public mutating func add(index: Int, id: String?, name: String?, arguments: String) {
        var call = pieces[index] ?? (nil, nil, "")
        if call.id == nil, let id, !id.isEmpty { call.id = id }
        if call.name == nil, let name, !name.isEmpty { call.name = name }
        call.arguments += arguments
        pieces[index] = call
    }

    /// Adds `event` when it is a `.toolCall` piece; other events are ignored.
    public mutating func add(_ event: LLMStreamEvent) {
        if case .toolCall(let index, let id, let name, let arguments) = event {
            add(index: index, id: id, name: name, arguments: arguments)
        }
    }

    /// The calls so far, ordered by index. A call whose id never arrived gets `call_<index>` (the
    /// agent normalises ids anyway); one whose name never arrived has an empty name.
    public var calls: [LLMToolCall] {
        pieces.keys.sorted().map { index in
            let call = pieces[index]!
            return LLMToolCall(id: call.id ?? "call_\(index)", name: call.name ?? "", arguments: call.arguments)
        }
    }

    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.calls == rhs.calls }
}
