/// Which models take image input (`llm.image_models`): exact names, or prefixes ending in `*`,
/// compared without case. A model the list does not name is given no images: the agent refuses
/// a run with an image attachment for it before calling it (`FilesError.attachmentUnsupported`).
///
/// ```swift
/// LLMImageModels(patterns: ["gpt-4o*", "my-vision-model"]).accepts("gpt-4o-mini")   // true
/// ```
public struct LLMImageModels: Sendable, Equatable {
    /// The OpenAI families that take images (dated snapshots included), and common local vision
    /// models. `o1-mini` and `o3-mini` take none, hence the narrower `o1`/`o3` entries.
    public static let defaultPatterns = [
        "gpt-4o*", "chatgpt-4o*", "gpt-4.1*", "gpt-4.5*", "gpt-5*", "gpt-4-turbo*", "gpt-4-vision*",
        "o1", "o1-20*", "o1-pro*", "o3", "o3-20*", "o3-pro*", "o4-mini*",
        "llava*", "bakllava*", "llama3.2-vision*", "llama4*", "gemma3*", "qwen2.5vl*", "qwen2.5-vl*", "qwen2-vl*", "pixtral*", "minicpm-v*",
    ]

    public static let `default` = LLMImageModels(patterns: defaultPatterns)

    public let patterns: [String]

    public init(patterns: [String]) {
        self.patterns = patterns
    }

    public func accepts(_ model: String) -> Bool {
        let name = model.lowercased()
        return patterns.contains { pattern in
            let pattern = pattern.lowercased()
            return pattern.hasSuffix("*") ? name.hasPrefix(pattern.dropLast()) : name == pattern
        }
    }

    /// Why `pattern` is not one, nil when it is: a `*` anywhere but at the end, or an empty name.
    public static func problem(in pattern: String) -> String? {
        if pattern.isEmpty { return "an empty model name" }
        if pattern.dropLast().contains("*") { return "\"\(pattern)\": `*` may only end a name (a prefix)" }
        return nil
    }
}
