import Foundation

/// Runs a fuzz target's body over files, without libFuzzer: what the fuzz executables do when built
/// normally (`swift build`), so a crash input can be replayed under the debugger, and so the targets
/// keep compiling with the rest of the package. Built with `-DFUZZING` (fuzz/run.sh), the targets
/// have no `main` and libFuzzer drives the same body.
public enum CorpusReplay {
    /// Each argument is a file or a folder of files; every file is one input.
    public static func main(_ body: (UnsafeRawBufferPointer) -> Void) {
        var inputs = 0
        for argument in CommandLine.arguments.dropFirst() {
            var isFolder: ObjCBool = false
            guard FileManager.default.fileExists(atPath: argument, isDirectory: &isFolder) else {
                FileHandle.standardError.write(Data("no such file: \(argument)\n".utf8))
                exit(2)
            }
            let files =
                isFolder.boolValue
                ? ((try? FileManager.default.contentsOfDirectory(atPath: argument)) ?? []).sorted().map { "\(argument)/\($0)" }
                : [argument]
            for file in files {
                guard let data = FileManager.default.contents(atPath: file) else { continue }
                data.withUnsafeBytes(body)
                inputs += 1
            }
        }
        print("replayed \(inputs) inputs")
    }
}
