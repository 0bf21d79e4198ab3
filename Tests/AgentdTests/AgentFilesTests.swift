import AgentdTesting
import FakeLLMServer
import Foundation
import RPC
import Services
import Testing

/// The agent reads attached files, end to end in process: files uploaded through `files.upload.*`,
/// attached with `agent.act`, read from the blob store into the request that the fake provider
/// (over the real provider stack) records.
@Suite("Agent reads attached files (in process, real provider stack, fake provider)", .timeLimit(.minutes(2)))
struct AgentFilesTests {
    /// Uploads `data` in one chunk and returns the file's id.
    static func upload(_ client: InProcessConnection, name: String, mediaType: String? = nil, _ data: Data) async throws -> String {
        let type = mediaType.map { #","mediaType":"\#($0)""# } ?? ""
        let begun = try await client.result("files.upload.begin", #"{"name":"\#(name)"\#(type),"size":\#(data.count)}"#)
        let upload = try #require(begun["uploadId"]?.stringValue, "\(begun)")
        _ = try await client.result("files.upload.chunk", #"{"uploadId":"\#(upload)","offset":0,"data":"\#(data.base64EncodedString())"}"#)
        let file = try await client.result("files.upload.commit", #"{"uploadId":"\#(upload)"}"#)
        return try #require(file["id"]?.stringValue, "\(file)")
    }

    /// A 1×1 PNG.
    static let png = Data(
        base64Encoded: "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")!

    @Test("a text file goes into the question as text; a second question still sees it with the first message; the reply's context has no cut")
    func textFile() async throws {
        try await withFakeProviderInProcess { fake in
            try await withAgentDaemon(environment: fake.openAIEnvironment()) { daemon in
                let client = InProcessConnection(try await daemon.connect())
                let id = try await Self.upload(client, name: "notes.txt", Data("The launch code is 4417.\nKeep it safe.".utf8))
                let (reply, _) = try await client.act(#"{"message":"What is the code?","attachments":["\#(id)"]}"#)
                let result = try #require(reply["result"], "\(reply)")
                #expect(result["context"]?["cutFiles"] == nil, "\(result)")
                let sent = try #require(fake.chatRequests.first?.chatParts.last)
                #expect(sent.role == "user" && sent.imageURLs.isEmpty)
                let text = try #require(sent.text)
                #expect(text.hasPrefix("What is the code?\n\nThe user attached a file"), "\(text)")
                #expect(
                    text.contains("<file name=\"notes.txt\" id=\"\(id)\" type=\"text/plain\">\nThe launch code is 4417.\nKeep it safe.\n</file>"),
                    "\(text)")

                let chatID = try #require(result["chatId"]?.stringValue)
                _ = try await client.act(#"{"chatId":"\#(chatID)","message":"And again?"}"#)
                let second = try #require(fake.chatRequests.last?.chatParts)
                #expect(second.first?.text?.contains("The launch code is 4417.") == true, "\(second)")
                #expect(second.last?.text == "And again?")
            }
        }
    }

    @Test("a text file too long for the window is cut with a visible note; the reply's context lists the cut")
    func cutFile() async throws {
        try await withFakeProviderInProcess { fake in
            try await withAgentDaemon(environment: fake.openAIEnvironment(maxRetries: 1, ["AGENTD_LLM_CONTEXT_WINDOW": "2000"])) { daemon in
                let client = InProcessConnection(try await daemon.connect())
                let long = Data(String(repeating: "all work and no play\n", count: 2_000).utf8)
                let id = try await Self.upload(client, name: "long.log", mediaType: "text/plain", long)
                let (reply, _) = try await client.act(#"{"message":"Summarise","attachments":["\#(id)"]}"#)
                let cut = try #require(reply["result"]?["context"]?["cutFiles"]?[0], "\(reply)")
                #expect(cut["fileId"]?.stringValue == id && cut["name"]?.stringValue == "long.log" && cut["size"]?.intValue == long.count, "\(cut)")
                let kept = try #require(cut["keptBytes"]?.intValue)
                #expect(kept > 1_000 && kept < long.count, "\(cut)")
                let text = try #require(fake.chatRequests.first?.chatParts.last?.text)
                #expect(text.contains("[cut: the first \(kept) of \(long.count) bytes of long.log are shown"), "\(text.suffix(300))")
            }
        }
    }

    @Test("an image reaches the provider as a data URL content part, for a model that takes images")
    func image() async throws {
        try await withFakeProviderInProcess { fake in
            try await withAgentDaemon(environment: fake.openAIEnvironment()) { daemon in
                let client = InProcessConnection(try await daemon.connect())
                let id = try await Self.upload(client, name: "dot.png", Self.png)
                let (reply, _) = try await client.act(#"{"message":"What colour?","attachments":["\#(id)"]}"#)
                #expect(reply["result"] != nil, "\(reply)")
                let request = try #require(fake.chatRequests.first)
                #expect(request.chatImageURLs == ["data:image/png;base64," + Self.png.base64EncodedString()])
                #expect(request.chatParts.last?.text?.hasPrefix("What colour?") == true)
            }
        }
    }

    @Test("an image for a model without images is refused with -32073 naming the file and the reason; the model is never called, nothing stored")
    func refusedImage() async throws {
        try await withFakeProviderInProcess { fake in
            try await withAgentDaemon(environment: fake.openAIEnvironment(maxRetries: 1, ["AGENTD_LLM_IMAGE_MODELS": "vision-only"])) { daemon in
                let client = InProcessConnection(try await daemon.connect())
                let id = try await Self.upload(client, name: "dot.png", Self.png)
                let reply = try await client.call("v2.agent.act", #"{"message":"What colour?","attachments":["\#(id)"]}"#)
                let error = try #require(reply["error"], "\(reply)")
                #expect(error["code"]?.intValue == -32073, "\(error)")
                #expect(error["data"]?["fileId"]?.stringValue == id && error["data"]?["name"]?.stringValue == "dot.png", "\(error)")
                #expect(error["data"]?["reason"]?.stringValue?.contains("gpt-4o-mini takes no images") == true, "\(error)")
                #expect(fake.chatRequests.isEmpty)
                let chats = try await client.result("v2.chats.list")
                #expect(chats["items"]?.arrayValue?.isEmpty == true, "\(chats)")

                // A binary file is refused the same way, whatever the model.
                let zip = try await Self.upload(client, name: "a.zip", mediaType: "application/zip", Data([0x50, 0x4B, 0x03, 0x04, 0, 0]))
                let binary = try await client.call("v2.agent.act", #"{"message":"Open it","attachments":["\#(zip)"]}"#)
                #expect(binary["error"]?["code"]?.intValue == -32073, "\(binary)")
                #expect(binary["error"]?["data"]?["reason"]?.stringValue?.hasPrefix("binary content is not read") == true, "\(binary)")
                #expect(fake.chatRequests.isEmpty)

                // agent.regenerate with the image: refused the same way, before the model.
                let (answered, _) = try await client.act(#"{"message":"Hello"}"#)
                let answerID = try #require(answered["result"]?["message"]?["id"]?.stringValue, "\(answered)")
                #expect(fake.chatRequests.count == 1)
                let again = try await client.call("v2.agent.regenerate", #"{"messageId":"\#(answerID)","attachments":["\#(id)"]}"#)
                #expect(again["error"]?["code"]?.intValue == -32073 && again["error"]?["data"]?["fileId"]?.stringValue == id, "\(again)")
                #expect(fake.chatRequests.count == 1)
            }
        }
    }

    @Test("a PDF: a note while its text is pending (the run goes on); once extracted by the real pdftotext, its text reaches the prompt")
    func pdf() async throws {
        try await withFakeProviderInProcess { fake in
            try await withAgentDaemon(environment: fake.openAIEnvironment(), runJobs: false) { daemon in
                let client = InProcessConnection(try await daemon.connect())
                let id = try await Self.upload(client, name: "report.pdf", MinimalPDF.make(pages: ["Quarterly zebra figures"]))
                let (first, _) = try await client.act(#"{"message":"What does it say?","attachments":["\#(id)"]}"#)
                let chatID = try #require(first["result"]?["chatId"]?.stringValue, "\(first)")
                let pending = try #require(fake.chatRequests.first?.chatParts.last?.text)
                #expect(
                    pending.contains("<file name=\"report.pdf\" id=\"\(id)\" type=\"application/pdf\">\n[its text is still being extracted"),
                    "\(pending)")

                // The extraction job, run here as a worker would.
                let handler = try #require(daemon.dependencies.jobHandlers.first(where: { $0.policy.kind == FileTextJob.kind }))
                let now = Date()
                let job = Job(
                    id: "job_pdf", kind: FileTextJob.kind, ownerID: nil, state: .running,
                    payload: try JSONFragment(encoding: FileTexts.Payload(fileId: id)),
                    attempt: 1, runAfter: now, createdAt: now, updatedAt: now)
                _ = try await handler.run(ClaimedJob(job: job, lease: JobLease(jobID: job.id, workerID: "test", attempt: 1), recovered: false))

                _ = try await client.act(#"{"chatId":"\#(chatID)","message":"And now?"}"#)
                let parts = try #require(fake.chatRequests.last?.chatParts)
                let asked = try #require(parts.first { $0.role == "user" }?.text)
                #expect(asked.contains("Quarterly zebra figures") && !asked.contains("still being extracted"), "\(asked)")
            }
        }
    }

    @Test(
        "a module's files: its text with the module in the system message, its image with the question; an image refused for a model without images")
    func moduleFiles() async throws {
        try await withFakeProviderInProcess { fake in
            try await withAgentDaemon(environment: fake.openAIEnvironment()) { daemon in
                let client = InProcessConnection(try await daemon.connect())
                let module = try await client.result("modules.create", #"{"title":"Project","content":"The project notes."}"#)
                let moduleID = try #require(module["id"]?.stringValue, "\(module)")
                let text = try await Self.upload(client, name: "glossary.md", mediaType: "text/markdown", Data("frobnicate: to tweak".utf8))
                let image = try await Self.upload(client, name: "dot.png", Self.png)
                for id in [text, image] { _ = try await client.result("modules.files.add", #"{"moduleId":"\#(moduleID)","fileId":"\#(id)"}"#) }

                let (reply, _) = try await client.act(#"{"moduleId":"\#(moduleID)","message":"Define frobnicate"}"#)
                #expect(reply["result"] != nil, "\(reply)")
                let parts = try #require(fake.chatRequests.first?.chatParts)
                let system = try #require(parts.first { $0.role == "system" }?.text)
                #expect(system.contains("The project notes.") && system.contains("The module's files follow."), "\(system)")
                #expect(
                    system.contains("<file name=\"glossary.md\" id=\"\(text)\" type=\"text/markdown\">\nfrobnicate: to tweak\n</file>"), "\(system)")
                #expect(parts.last?.role == "user" && parts.last?.imageURLs == ["data:image/png;base64," + Self.png.base64EncodedString()])

                let refused = try await client.call("v2.agent.act", #"{"moduleId":"\#(moduleID)","message":"Again","model":"gpt-3.5-turbo"}"#)
                #expect(refused["error"]?["code"]?.intValue == -32073 && refused["error"]?["data"]?["fileId"]?.stringValue == image, "\(refused)")
                #expect(fake.chatRequests.count == 1)
            }
        }
    }
}
