/// Chat Completions answers: the normal stream and body, and one builder per quirk that real
/// providers and compatible servers send (the wire-format notes, A3–A6).
extension FakeResponse {
    static let sseHeaders: [(name: String, value: String)] = [
        ("Content-Type", "text/event-stream; charset=utf-8"), ("Cache-Control", "no-cache"), ("x-request-id", "req_fake"),
    ]

    /// A normal OpenAI stream: a role chunk, one chunk per piece, a finish chunk, the usage chunk
    /// (`choices: []`) when `includeUsage`, then `[DONE]`.
    public static func chatStream(
        _ pieces: [String], model: String = "gpt-4o-mini", finishReason: String = "stop", includeUsage: Bool = true,
        promptTokens: Int = 10, id: String = "chatcmpl-fake", delay: Duration? = nil
    ) -> FakeResponse {
        let usageKey: String? = includeUsage ? "null" : nil
        var events = [SSE.event(SSE.chunk(id: id, model: model, choices: SSE.choice(delta: SSE.roleDelta), usage: usageKey))]
        for piece in pieces {
            events.append(SSE.event(SSE.chunk(id: id, model: model, choices: SSE.choice(delta: SSE.contentDelta(piece)), usage: usageKey)))
        }
        events.append(SSE.event(SSE.chunk(id: id, model: model, choices: SSE.choice(delta: "{}", finishReason: finishReason), usage: usageKey)))
        if includeUsage {
            events.append(SSE.event(SSE.chunk(id: id, model: model, choices: "[]", usage: SSE.usage(prompt: promptTokens, completion: pieces.count))))
        }
        events.append(SSE.done)
        let response = chunks(headers: sseHeaders, events.map { Chunk($0) })
        return delay.map { response.spaced(by: $0) } ?? response
    }

    /// A non-streaming `chat.completion` body.
    public static func chatCompletion(
        _ text: String, model: String = "gpt-4o-mini", promptTokens: Int = 10, completionTokens: Int = 5, finishReason: String = "stop"
    )
        -> FakeResponse
    {
        json(
            headers: [("x-request-id", "req_fake")],
            "{\"id\":\"chatcmpl-fake\",\"object\":\"chat.completion\",\"created\":\(SSE.created),\"model\":\(SSE.quote(model)),"
                + "\"service_tier\":\"default\",\"system_fingerprint\":\"fp_fake\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
                + "\"content\":\(SSE.quote(text)),\"refusal\":null,\"annotations\":[]},\"logprobs\":null,\"finish_reason\":\(SSE.quote(finishReason))}],"
                + "\"usage\":\(SSE.usage(prompt: promptTokens, completion: completionTokens))}"
        )
    }

    // MARK: Stream quirks (each answers "Hello world")

    static let helloPieces = ["Hel", "lo", " world"]

    /// Comment lines and keep-alives between events (`: keep-alive`, a bare `:`).
    public static func chatStreamWithComments() -> FakeResponse {
        let base = chatStream(helloPieces)
        guard case .stream(let chunks, let end) = base.body else { return base }
        var out: [Chunk] = [Chunk(": connected\n\n")]
        for chunk in chunks {
            out.append(chunk)
            out.append(Chunk(": keep-alive\n\n"))
        }
        out.insert(Chunk(":\n"), at: 2)
        return FakeResponse(status: 200, headers: sseHeaders, body: .stream(out, end: end))
    }

    /// `event:`, `id:` and `retry:` fields around the `data:` lines (also `data:` without a space).
    public static func chatStreamWithFields() -> FakeResponse {
        let events = [
            "retry: 3000\n\n",
            "event: message\nid: 1\ndata: " + SSE.chunk(choices: SSE.choice(delta: SSE.roleDelta)) + "\n\n",
            "id: 2\ndata:" + SSE.chunk(choices: SSE.choice(delta: SSE.contentDelta("Hel"))) + "\n\n",
            "event: message\ndata: " + SSE.chunk(choices: SSE.choice(delta: SSE.contentDelta("lo world"))) + "\nid: 3\n\n",
            "data: " + SSE.chunk(choices: SSE.choice(delta: "{}", finishReason: "stop")) + "\n\n",
            SSE.done,
        ]
        return chunks(headers: sseHeaders, events.map { Chunk($0) })
    }

    /// One event whose JSON spans three `data:` lines (joined with `\n`, which JSON reads as space).
    public static func chatStreamMultilineData() -> FakeResponse {
        let split =
            "data: {\"id\":\"chatcmpl-fake\",\"object\":\"chat.completion.chunk\",\n"
            + "data: \"created\":\(SSE.created),\"model\":\"gpt-4o-mini\",\n"
            + "data: \"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello world\"},\"finish_reason\":null}]}\n\n"
        let events = [
            SSE.event(SSE.chunk(choices: SSE.choice(delta: SSE.roleDelta))), split,
            SSE.event(SSE.chunk(choices: SSE.choice(delta: "{}", finishReason: "stop"))), SSE.done,
        ]
        return chunks(headers: sseHeaders, events.map { Chunk($0) })
    }

    /// OpenAI's padding: every chunk carries an `obfuscation` string of varying length.
    public static func chatStreamWithObfuscation() -> FakeResponse {
        let pads = ["a", "8618FsxJD2gV", "Qz", "x9LmP", "kk3"]
        var events = [SSE.event(SSE.chunk(choices: SSE.choice(delta: SSE.roleDelta), usage: "null", extra: ",\"obfuscation\":\"\(pads[0])\""))]
        for (index, piece) in helloPieces.enumerated() {
            events.append(
                SSE.event(
                    SSE.chunk(choices: SSE.choice(delta: SSE.contentDelta(piece)), usage: "null", extra: ",\"obfuscation\":\"\(pads[index + 1])\"")))
        }
        events.append(
            SSE.event(SSE.chunk(choices: SSE.choice(delta: "{}", finishReason: "stop"), usage: "null", extra: ",\"obfuscation\":\"\(pads[4])\"")))
        events.append(SSE.event(SSE.chunk(choices: "[]", usage: SSE.usage(prompt: 10, completion: 3), extra: ",\"obfuscation\":\"8618FsxJD2gV\"")))
        events.append(SSE.done)
        return chunks(headers: sseHeaders, events.map { Chunk($0) })
    }

    public enum UsageChoices: Sendable { case emptyArray, null, missing }

    /// A stream whose final usage chunk has `choices: []`, `choices: null` or no `choices` at all.
    public static func chatStreamUsage(_ choices: UsageChoices, prompt: Int = 10, completion: Int = 3) -> FakeResponse {
        let usage = SSE.usage(prompt: prompt, completion: completion)
        let last: String
        switch choices {
        case .emptyArray: last = SSE.chunk(choices: "[]", usage: usage)
        case .null: last = SSE.chunk(choices: "null", usage: usage)
        case .missing:
            last =
                "{\"id\":\"chatcmpl-fake\",\"object\":\"chat.completion.chunk\",\"created\":\(SSE.created),\"model\":\"gpt-4o-mini\",\"usage\":\(usage)}"
        }
        var events = [SSE.event(SSE.chunk(choices: SSE.choice(delta: SSE.roleDelta)))]
        events += helloPieces.map { SSE.event(SSE.chunk(choices: SSE.choice(delta: SSE.contentDelta($0)))) }
        events.append(SSE.event(SSE.chunk(choices: SSE.choice(delta: "{}", finishReason: "stop"))))
        events.append(SSE.event(last))
        events.append(SSE.done)
        return chunks(headers: sseHeaders, events.map { Chunk($0) })
    }

    /// Azure: a first chunk with empty `choices`, `id`, `model`, `created: 0` and
    /// `prompt_filter_results`; content chunks with `content_filter_results`; an empty-delta
    /// annotation chunk; no usage (older api-versions).
    public static func azureChatStream(model: String = "gpt-4o-2024-08-06") -> FakeResponse {
        let first =
            "{\"id\":\"\",\"choices\":[],\"created\":0,\"model\":\"\",\"object\":\"\",\"system_fingerprint\":null,\"prompt_filter_results\":\(SSE.promptFilterResults)}"
        let filter = ",\"content_filter_results\":" + SSE.contentFilterResults()
        var events = [SSE.event(first)]
        events.append(
            SSE.event(
                SSE.chunk(id: "chatcmpl-azure", model: model, choices: SSE.choice(delta: SSE.roleDelta, extra: ",\"content_filter_results\":{}"))))
        for piece in helloPieces {
            events.append(
                SSE.event(SSE.chunk(id: "chatcmpl-azure", model: model, choices: SSE.choice(delta: SSE.contentDelta(piece), extra: filter))))
        }
        events.append(SSE.event(SSE.chunk(id: "chatcmpl-azure", model: model, choices: SSE.choice(delta: "{}", extra: filter))))
        events.append(
            SSE.event(
                SSE.chunk(
                    id: "chatcmpl-azure", model: model,
                    choices: SSE.choice(delta: "{}", finishReason: "stop", extra: ",\"content_filter_results\":{}"))))
        events.append(SSE.done)
        return chunks(headers: sseHeaders + [("apim-request-id", "fake-apim")], events.map { Chunk($0) })
    }

    /// Output filtered mid-answer: `finish_reason: "content_filter"` with the categories marked.
    public static func chatStreamContentFilter(categories: Set<String> = ["violence"]) -> FakeResponse {
        let events = [
            SSE.event(SSE.chunk(choices: SSE.choice(delta: SSE.roleDelta))),
            SSE.event(
                SSE.chunk(
                    choices: SSE.choice(delta: SSE.contentDelta("Once upon"), extra: ",\"content_filter_results\":" + SSE.contentFilterResults()))),
            SSE.event(
                SSE.chunk(
                    choices: SSE.choice(
                        delta: "{}", finishReason: "content_filter",
                        extra: ",\"content_filter_results\":" + SSE.contentFilterResults(filtered: categories)))),
            SSE.done,
        ]
        return chunks(headers: sseHeaders, events.map { Chunk($0) })
    }

    /// Text, then `data: {"error": …}` inside the 200 stream (no `[DONE]`).
    public static func chatStreamErrorEvent(message: String = "The server had an error while processing your request. Sorry about that!")
        -> FakeResponse
    {
        let events = [
            SSE.event(SSE.chunk(choices: SSE.choice(delta: SSE.roleDelta))),
            SSE.event(SSE.chunk(choices: SSE.choice(delta: SSE.contentDelta("Hel")))),
            SSE.event("{\"error\":{\"message\":\(SSE.quote(message)),\"type\":\"server_error\",\"param\":null,\"code\":null}}"),
        ]
        return chunks(headers: sseHeaders, events.map { Chunk($0) })
    }

    /// llama.cpp (2025): a bare `error:` field at HTTP 200, then `data: [DONE]`.
    public static func llamaCppErrorLine() -> FakeResponse {
        let events = [
            SSE.event(SSE.chunk(model: "", choices: "[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":null},\"finish_reason\":null}]")),
            "error: {\"code\":400,\"message\":\"the request exceeds the available context size, try increasing it\",\"type\":\"invalid_request_error\"}\n\n",
            SSE.done,
        ]
        return chunks(headers: [("Content-Type", "text/event-stream")], events.map { Chunk($0) })
    }

    /// Two parallel tool calls whose argument fragments interleave by `index`.
    public static func chatStreamParallelToolCalls() -> FakeResponse {
        func call(_ fragment: String) -> String {
            SSE.event(
                SSE.chunk(
                    model: "gpt-4o", choices: "[{\"index\":0,\"delta\":{\"tool_calls\":[\(fragment)]},\"logprobs\":null,\"finish_reason\":null}]"))
        }
        let events = [
            SSE.event(
                SSE.chunk(
                    model: "gpt-4o",
                    choices:
                        "[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"index\":0,\"id\":\"call_A\",\"type\":\"function\",\"function\":{\"name\":\"web_search\",\"arguments\":\"\"}}]},\"logprobs\":null,\"finish_reason\":null}]"
                )),
            call("{\"index\":0,\"function\":{\"arguments\":\"{\\\"query\\\":\"}}"),
            call("{\"index\":1,\"id\":\"call_B\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"\"}}"),
            call("{\"index\":1,\"function\":{\"arguments\":\"{\\\"city\\\":\"}}"),
            call("{\"index\":0,\"function\":{\"arguments\":\"\\\"swift\\\"}\"}}"),
            call("{\"index\":1,\"function\":{\"arguments\":\"\\\"Paris\\\"}\"}}"),
            SSE.event(SSE.chunk(model: "gpt-4o", choices: SSE.choice(delta: "{}", finishReason: "tool_calls"))),
            SSE.event(SSE.chunk(model: "gpt-4o", choices: "[]", usage: "{\"prompt_tokens\":7,\"completion_tokens\":4,\"total_tokens\":11}")),
            SSE.done,
        ]
        return chunks(headers: sseHeaders, events.map { Chunk($0) })
    }

    /// One tool call complete in a single chunk (Ollama's way).
    public static func chatStreamWholeToolCall(name: String = "web_search", arguments: String = "{\"query\":\"swift\"}") -> FakeResponse {
        let call =
            "{\"index\":0,\"id\":\"call_whole\",\"type\":\"function\",\"function\":{\"name\":\(SSE.quote(name)),\"arguments\":\(SSE.quote(arguments))}}"
        let events = [
            SSE.event(
                SSE.chunk(
                    model: "llama3.1",
                    choices: "[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[\(call)]},\"finish_reason\":null}]")),
            SSE.event(SSE.chunk(model: "llama3.1", choices: SSE.choice(delta: "{}", finishReason: "tool_calls"))),
            SSE.done,
        ]
        return chunks(headers: sseHeaders, events.map { Chunk($0) })
    }
}
