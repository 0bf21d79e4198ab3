import Foundation
import Testing

/// The real binary's start-up sweep of the blob folder (`BlobSweeper`, run before the socket
/// listens): what a crash left that no row owns is gone by the time a client can connect.
@Suite("Blob sweep at start", .blockingIO, .timeLimit(.minutes(2)))
struct BlobSweepProcessTests {
    static let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

    /// Leaves in `folder` what a killed daemon could: a blob no file references and a staging
    /// area no upload owns.
    static func plantOrphans(in folder: String) throws {
        try FileManager.default.createDirectory(atPath: folder + "/ba/78", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: folder + "/staging", withIntermediateDirectories: true)
        try Data("abc".utf8).write(to: URL(fileURLWithPath: folder + "/ba/78/" + abc))
        try Data("half an upload".utf8).write(to: URL(fileURLWithPath: folder + "/staging/upl_orphan"))
    }

    @Test("orphans beside the database are removed before the socket listens; a daemon that stores nothing makes no blob folder")
    func sweepBesideTheDatabase() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let blobs = directory.path + "/blobs"
        try Self.plantOrphans(in: blobs)
        let daemon = try DaemonProcess(socketPath: directory.path + "/agentd.sock", arguments: ["--database", directory.path + "/agentd.sqlite"])
        defer { daemon.kill() }
        try daemon.waitUntilConnectable()
        #expect(!FileManager.default.fileExists(atPath: blobs + "/ba/78/" + Self.abc))
        #expect(!FileManager.default.fileExists(atPath: blobs + "/staging/upl_orphan"))
        // Counts, never names: a digest says what content someone stored.
        #expect(daemon.stderr.contains("swept the blob store"))
        #expect(!daemon.stderr.contains(Self.abc))
        #expect(!daemon.stderr.contains("upl_orphan"))

        let fresh = try TemporaryDirectory()
        defer { fresh.remove() }
        let quiet = try DaemonProcess(socketPath: fresh.path + "/agentd.sock", arguments: ["--database", fresh.path + "/agentd.sqlite"])
        defer { quiet.kill() }
        try quiet.waitUntilConnectable()
        #expect(!FileManager.default.fileExists(atPath: fresh.path + "/blobs"))
    }

    @Test("files.blob_dir moves the blob folder: the sweep looks there, and leaves the default place alone")
    func sweepConfiguredFolder() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let elsewhere = directory.path + "/elsewhere"
        try Self.plantOrphans(in: elsewhere)
        try Self.plantOrphans(in: directory.path + "/blobs")
        let daemon = try DaemonProcess(
            socketPath: directory.path + "/agentd.sock", arguments: ["--database", directory.path + "/agentd.sqlite"],
            environment: ["AGENTD_FILES_BLOB_DIR": elsewhere])
        defer { daemon.kill() }
        try daemon.waitUntilConnectable()
        #expect(!FileManager.default.fileExists(atPath: elsewhere + "/ba/78/" + Self.abc))
        #expect(!FileManager.default.fileExists(atPath: elsewhere + "/staging/upl_orphan"))
        #expect(FileManager.default.fileExists(atPath: directory.path + "/blobs/ba/78/" + Self.abc))
    }
}
