/// Context windows of well-known models, in tokens, matched by the longest prefix of the model
/// name (dated snapshots such as `gpt-4o-2024-08-06` match `gpt-4o`). What the agent budgets the
/// history against when `llm.context_window` is not set; unknown models get `fallback`.
public enum LLMContextWindows {
    /// A conservative window for a model this table does not know (a small local model's default).
    public static let fallback = 8_192

    static let table: [(prefix: String, tokens: Int)] = [
        ("gpt-5", 400_000),
        ("gpt-4.1", 1_047_576),
        ("gpt-4o", 128_000),
        ("gpt-4-turbo", 128_000),
        ("gpt-4-32k", 32_768),
        ("gpt-4", 8_192),
        ("gpt-3.5-turbo", 16_385),
        ("o1-mini", 128_000),
        ("o1", 200_000),
        ("o3", 200_000),
        ("o4-mini", 200_000),
        ("llama3.1", 131_072),
        ("llama3.2", 131_072),
        ("llama3", 8_192),
        ("mistral", 32_768),
        ("qwen2.5", 32_768),
    ]

    /// The window of `model`, else `fallback`.
    public static func window(for model: String) -> Int {
        let name = model.lowercased()
        var best: (length: Int, tokens: Int)?
        for entry in table where name.hasPrefix(entry.prefix) && entry.prefix.count > (best?.length ?? 0) {
            best = (entry.prefix.count, entry.tokens)
        }
        return best?.tokens ?? fallback
    }
}
