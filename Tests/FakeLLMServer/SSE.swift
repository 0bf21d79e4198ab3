/// Byte-exact builders for OpenAI-style Chat Completions stream events (the `chat.completion.chunk`
/// objects of OpenAI's streaming API, as OpenAI, Azure OpenAI and compatible servers send them).
public enum SSE {
    public static let created = 1_761_564_674
    public static let done = "data: [DONE]\n\n"

    /// `data: <json>\n\n`
    public static func event(_ json: String) -> String { "data: \(json)\n\n" }

    /// A `chat.completion.chunk` object. `choices` and `usage` are raw JSON (`usage: nil` leaves the
    /// key out, as a stream without `include_usage` does); `extra` is appended raw (`,"k":v`).
    public static func chunk(id: String = "chatcmpl-fake", model: String = "gpt-4o-mini", choices: String, usage: String? = nil, extra: String = "")
        -> String
    {
        var json = "{\"id\":\(quote(id)),\"object\":\"chat.completion.chunk\",\"created\":\(created),\"model\":\(quote(model)),"
        json += "\"service_tier\":\"default\",\"system_fingerprint\":null,\"choices\":\(choices)"
        if let usage { json += ",\"usage\":\(usage)" }
        return json + extra + "}"
    }

    /// One choice with a delta (raw JSON) and a finish reason.
    public static func choice(delta: String, finishReason: String? = nil, extra: String = "") -> String {
        "[{\"index\":0,\"delta\":\(delta),\"logprobs\":null,\"finish_reason\":\(finishReason.map(quote) ?? "null")\(extra)}]"
    }

    public static func contentDelta(_ text: String) -> String { "{\"content\":\(quote(text))}" }
    public static let roleDelta = "{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null}"

    public static func usage(prompt: Int, completion: Int) -> String {
        "{\"prompt_tokens\":\(prompt),\"completion_tokens\":\(completion),\"total_tokens\":\(prompt + completion),"
            + "\"prompt_tokens_details\":{\"cached_tokens\":0,\"audio_tokens\":0},"
            + "\"completion_tokens_details\":{\"reasoning_tokens\":0,\"audio_tokens\":0,\"accepted_prediction_tokens\":0,\"rejected_prediction_tokens\":0}}"
    }

    /// Azure's per-prompt annotations, all categories safe.
    public static let promptFilterResults =
        "[{\"prompt_index\":0,\"content_filter_results\":{\"hate\":{\"filtered\":false,\"severity\":\"safe\"},\"jailbreak\":{\"filtered\":false,\"detected\":false},\"self_harm\":{\"filtered\":false,\"severity\":\"safe\"},\"sexual\":{\"filtered\":false,\"severity\":\"safe\"},\"violence\":{\"filtered\":false,\"severity\":\"safe\"}}}]"

    /// Per-choice content filter results; `filtered` names the categories marked filtered (severity high).
    public static func contentFilterResults(filtered: Set<String> = []) -> String {
        let categories = ["hate", "self_harm", "sexual", "violence"].map { name in
            filtered.contains(name)
                ? "\"\(name)\":{\"filtered\":true,\"severity\":\"high\"}" : "\"\(name)\":{\"filtered\":false,\"severity\":\"safe\"}"
        }
        return "{" + categories.joined(separator: ",") + ",\"protected_material_text\":{\"filtered\":false,\"detected\":false}}"
    }

    /// A JSON string literal.
    public static func quote(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
