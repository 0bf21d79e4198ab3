import RPC

// Job events by hand (`DomainEvent.json`): up to three per job, each encoded inside the queue's
// write transaction on the single writer, where the generic encoder would be paid thousands of
// times a second at the queue's target rate. Keys sorted, as `RPCJSONEncoder` writes them
// (DomainEventJSONTests compares the two).

extension JobsEvents {
    /// `{"attempt":…,["errorKind":…,]"jobId":…,"kind":…}`.
    static func json(attempt: Int, errorKind: String? = nil, jobId: String, kind: String) -> String {
        var text = #"{"attempt":"#
        text += String(attempt)
        if let errorKind {
            text += #","errorKind":"#
            JSONText.appendQuoted(errorKind, to: &text)
        }
        text += #","jobId":"#
        JSONText.appendQuoted(jobId, to: &text)
        text += #","kind":"#
        JSONText.appendQuoted(kind, to: &text)
        text += "}"
        return text
    }
}

extension JobsEvents.StateChanged {
    public var json: String? { JobsEvents.json(attempt: attempt, jobId: jobId, kind: kind) }
}

extension JobsEvents.Failed {
    public var json: String? { JobsEvents.json(attempt: attempt, errorKind: errorKind, jobId: jobId, kind: kind) }
}
