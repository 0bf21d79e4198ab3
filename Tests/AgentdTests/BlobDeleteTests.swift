import AgentdTesting
import BlobStoreTesting
import Foundation
import RPC
import Services
import Testing

/// `files.delete` and the blob behind it, in process: the last file of some content enqueues
/// `files.blob_delete`, whose run (driven here by hand: the workers are off) deletes the blob;
/// content another user still has stays, and no job is enqueued for it.
@Suite("Blob deletion (in process)", .timeLimit(.minutes(1)))
struct BlobDeleteTests {
    /// Claims every queued `files.blob_delete` job and runs it with the graph's own handler.
    static func runBlobDeleteJobs(_ daemon: InProcessDaemon) async throws -> [String] {
        let handler = try #require(daemon.dependencies.jobHandlers.first { $0.policy.kind == BlobDeleteJob.kind })
        // Due `files.blob_delete_delay_seconds` after the release (an hour): claimed as then.
        let claimed = try await daemon.dependencies.jobQueue.claim(
            kinds: [BlobDeleteJob.kind], workerID: "test", limit: 10, lease: .seconds(60), now: daemon.clock.now().addingTimeInterval(3600))
        var results: [String] = []
        for job in claimed {
            #expect(job.job.ownerID == nil)
            results.append(try await handler.run(job)?.text ?? "")
        }
        return results
    }

    @Test("the last file of some content going enqueues files.blob_delete, which deletes the blob; a shared blob stays while another user has it")
    func deleteReleasesTheBlob() async throws {
        try await withInProcessDaemon(runJobs: false) { daemon in
            let alice = try await daemon.connect()
            let bob = try await daemon.registerAndLogin(username: "bob")
            let content = Data("the same bytes, twice".utf8)
            let digest = InMemoryBlobStore.digest(of: content)
            let mine = try await FilesTests.upload(alice, content, name: "a.txt")
            let his = try await FilesTests.upload(bob, content, name: "b.txt")
            #expect(mine.id != his.id)
            #expect(try daemon.dependencies.blobStore.digests() == [digest])

            // Alice's goes: Bob still has the content, so no job, and his bytes read back.
            #expect(try await alice.send(Files.Delete.self, .init(id: mine.id)).deleted)
            #expect(try await Self.runBlobDeleteJobs(daemon).isEmpty)
            #expect(try await FilesTests.readAll(bob, his.id) == content)

            // Bob's goes: the last reference; the job deletes the blob, an hour later (a backup
            // copying the blob folder after the database meanwhile still finds it).
            #expect(try await bob.send(Files.Delete.self, .init(id: his.id)).deleted)
            #expect(try daemon.dependencies.blobStore.stat(digest) != nil)
            let early = try await daemon.dependencies.jobQueue.claim(
                kinds: [BlobDeleteJob.kind], workerID: "test", limit: 10, lease: .seconds(60), now: daemon.clock.now().addingTimeInterval(3599))
            #expect(early.isEmpty, "due only after files.blob_delete_delay_seconds")
            #expect(try await Self.runBlobDeleteJobs(daemon) == [#"{"deleted":true}"#])
            #expect(try daemon.dependencies.blobStore.digests().isEmpty)

            // Stored again and deleted again: a job of its own (the first one's key was that file's).
            let again = try await FilesTests.upload(alice, content, name: "c.txt")
            #expect(try daemon.dependencies.blobStore.digests() == [digest])
            #expect(try await alice.send(Files.Delete.self, .init(id: again.id)).deleted)
            #expect(try await Self.runBlobDeleteJobs(daemon) == [#"{"deleted":true}"#])
            #expect(try daemon.dependencies.blobStore.digests().isEmpty)
        }
    }

    @Test("content stored again between the delete and the job keeps its blob: the job finds it referenced")
    func storedAgainBeforeTheJob() async throws {
        try await withInProcessDaemon(runJobs: false) { daemon in
            let alice = try await daemon.connect()
            let content = Data("kept".utf8)
            let first = try await FilesTests.upload(alice, content)
            #expect(try await alice.send(Files.Delete.self, .init(id: first.id)).deleted)
            let second = try await FilesTests.upload(alice, content)
            #expect(try await Self.runBlobDeleteJobs(daemon) == [#"{"deleted":false}"#])
            #expect(try await FilesTests.readAll(alice, second.id) == content)
        }
    }
}
