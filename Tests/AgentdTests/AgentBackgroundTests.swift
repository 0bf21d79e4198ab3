import AgentdTesting
import Foundation
import RPC
import Services
import Testing

/// `background: true` through the daemon's router (in process): the reply's shape, the run and its
/// job as clients see them, and both ways of cancelling a run whose job is still queued.
@Suite("Agent background runs (in process)", .timeLimit(.minutes(2)))
struct AgentBackgroundTests {
    @Test("agent.act background: true answers {runId, jobId, chatId, messageId} at once; the run and its agent.run job are visible")
    func reply() async throws {
        try await withInProcessDaemon { daemon in
            let client = try await daemon.connect()
            let reply = try await client.call("v2.agent.act", #"{"message":"In the background","background":true}"#).decode(JSONValue.self)
            guard case .object(let members) = reply else { throw RPCError(.internalError, "reply: \(reply)") }
            #expect(Set(members.keys) == ["runId", "jobId", "chatId", "messageId"], "reply: \(reply)")
            let typed = try await client.send(Agent.Act.self, .init(message: "Typed", background: true))
            let started = try #require(typed.background, "\(typed)")
            #expect(typed.answer == nil)

            let messages = try await client.call("v2.chats.messages.list", #"{"chatId":"\#(started.chatId)"}"#).decode(JSONValue.self)
            #expect(messages["items"]?.arrayValue?.map { $0["id"]?.stringValue } == [started.messageId], "the question is stored: \(messages)")
            let run = try await client.send(Agent.Runs.Get.self, .init(runId: started.runId))
            #expect(run.jobId == started.jobId && run.attempt == 1 && run.partial == nil, "\(run)")
            let job = try await client.send(Jobs.Get.self, .init(id: started.jobId))
            #expect(job.kind == "agent.run" && job.idempotencyKey == started.runId && job.maxAttempts == AgentRunJob.maxAttempts, "\(job)")
            #expect(try job.payload.decode(AgentRunJob.Payload.self).runId == started.runId)

            // agent.regenerate too; messageId is the question it answers again.
            let again = try await client.send(Agent.Regenerate.self, .init(messageId: started.messageId, background: true))
            #expect(again.background?.messageId == started.messageId && again.background?.chatId == started.chatId, "\(again)")
        }
    }

    @Test("agent.cancel of a background run whose job is queued ends both cancelled; jobs.cancel of the queued job ends the run cancelled too")
    func cancelQueued() async throws {
        try await withInProcessDaemon { daemon in
            let client = try await daemon.connect()
            let first = try #require(try await client.send(Agent.Act.self, .init(message: "One", background: true)).background)
            let cancelled = try await client.send(Agent.Cancel.self, .init(runId: first.runId))
            #expect(cancelled.status == .cancelled && cancelled.assistantMessageId == nil, "\(cancelled)")
            #expect(try await client.send(Jobs.Get.self, .init(id: first.jobId)).state == .cancelled)

            let watcher = try await daemon.connect()
            _ = try await watcher.send(Events.Subscribe.self, .init(topics: ["agent.run.cancelled"]))
            let second = try #require(try await client.send(Agent.Act.self, .init(chatId: first.chatId, message: "Two", background: true)).background)
            #expect(try await client.send(Jobs.Cancel.self, .init(id: second.jobId)).state == .cancelled)
            let event = try await watcher.nextNotification(of: EventsNotifications.Event.self)
            let data = try event.data.decode(JSONValue.self)
            #expect(event.topic == "agent.run.cancelled" && data["runId"] == .string(second.runId), "\(event)")
            #expect(try await client.send(Agent.Runs.Get.self, .init(runId: second.runId)).status == .cancelled)
        }
    }
}
