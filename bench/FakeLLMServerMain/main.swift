// fake-llm-server [--port N] [--api-key K] [--tavily-key K]
// Runs FakeLLMServer on 127.0.0.1 until killed; prints "listening on 127.0.0.1:PORT" (the bound
// port when given 0) on stdout first. Scenarios by model name: see Tests/FakeLLMServer/FakeLLMServer.swift.
import FakeLLMServer

#if canImport(Glibc)
import Glibc
#endif

var port = 0
var configuration = FakeLLMServer.Configuration()
var arguments = CommandLine.arguments.dropFirst().makeIterator()
while let argument = arguments.next() {
    switch argument {
    case "--port": port = arguments.next().flatMap { Int($0) } ?? 0
    case "--api-key": configuration.apiKey = arguments.next()
    case "--tavily-key": configuration.tavilyKey = arguments.next()
    default:
        print("usage: fake-llm-server [--port N] [--api-key KEY] [--tavily-key KEY]")
        exit(2)
    }
}
let server = try await FakeLLMServer.start(port: port, configuration: configuration)
print("listening on 127.0.0.1:\(server.port)")
fflush(nil)  // all streams: stdout may be a pipe
while true { try await Task.sleep(for: .seconds(3600)) }
