import Foundation
import Testing

/// Background runs across a `kill -9`: only the real binary shows a process dying mid-stream and
/// a restart finding its jobs in the database file.
@Suite("Agent background runs across kill -9 (real daemon, fake provider)", .blockingIO, .serialized, .timeLimit(.minutes(3)))
struct AgentBackgroundCrashTests {
    @Test(
        "20 background runs streaming from a slow provider, kill -9 mid-stream, restart: each ends completed with exactly one answer or failed with a reason; none stays running"
    )
    func killNineMidStream() async throws {
        try await withFakeProvider { fake in
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let arguments = ["--database", "\(directory.path)/agentd.sqlite"]
            let socket = "\(directory.path)/agentd.sock"
            let environment = fake.openAIEnvironment()
            // Ten words: "Echo: " and ten deltas, 100 ms apart (`fake-slow`).
            let words = "one two three four five six seven eight nine ten"

            var runs: [(runID: String, chatID: String, index: Int)] = []
            do {
                let daemon = try DaemonProcess(socketPath: socket, arguments: arguments, environment: environment)
                defer { daemon.kill() }
                let client = try ClientConnection(daemon.connect())
                for index in 0..<20 {
                    let started = try client.result("v2.agent.act", #"{"message":"Run \#(index) \#(words)","model":"fake-slow","background":true}"#)
                    let runID = try #require(started["runId"]?.stringValue, "\(started)")
                    let chatID = try #require(started["chatId"]?.stringValue, "\(started)")
                    #expect(started["jobId"]?.stringValue != nil && started["messageId"]?.stringValue != nil, "\(started)")
                    runs.append((runID, chatID, index))
                }
                // Mid-stream: the first attempt has sent part of its answer, and its connection is
                // still open, when the process dies.
                #expect(fake.waitForChunksSent(requestIndex: 0, count: 3), "a run was streaming")
                daemon.signal(SIGKILL)
                _ = try daemon.waitForExit(timeout: .seconds(20))
            }
            let streamedBeforeKill = fake.chatRequests.count

            let restarted = try DaemonProcess(socketPath: socket, arguments: arguments, environment: environment)
            defer { restarted.kill() }
            let client = try ClientConnection(restarted.connect())
            // Every run's end, stored before the subscription or after it (since: 0 replays them).
            _ = try client.subscribe(#"{"topics":["agent.run.completed","agent.run.failed","agent.run.cancelled"],"since":0}"#)
            let ids = Set(runs.map(\.runID))
            var ended = Set<String>()
            _ = try client.events(
                until: { params in
                    if let id = params["data"]?["runId"]?.stringValue, ids.contains(id) { ended.insert(id) }
                    return ended == ids
                }, timeout: .seconds(120))

            var rerun = 0
            for run in runs {
                let got = try client.result("v2.agent.runs.get", #"{"runId":"\#(run.runID)"}"#)
                let status = got["status"]?.stringValue
                let messages = try client.result("v2.chats.messages.list", #"{"chatId":"\#(run.chatID)"}"#)
                let answers = messages["items"]?.arrayValue?.filter { $0["role"]?.stringValue == "assistant" } ?? []
                switch status {
                case "completed":
                    #expect(answers.count == 1, "run \(run.index): one answer, got \(answers)")
                    #expect(answers.first?["content"]?.stringValue == "Echo: Run \(run.index) \(words)", "\(answers)")
                    #expect(answers.first?["id"] == got["assistantMessageId"], "\(got)")
                case "failed":
                    #expect(answers.isEmpty && got["error"]?["kind"]?.stringValue?.isEmpty == false, "run \(run.index): \(got)")
                default:
                    Issue.record("run \(run.index) ended \(String(describing: status)): \(got)")
                }
                if (got["attempt"]?.intValue ?? 0) > 1 { rerun += 1 }
            }
            #expect(rerun > 0, "at least the run that was streaming ran again after the restart")
            #expect(fake.chatRequests.count > streamedBeforeKill, "the restarted daemon asked the provider again")
        }
    }
}
