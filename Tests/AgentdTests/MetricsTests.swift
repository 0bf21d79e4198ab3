import AgentdTesting
import Foundation
import RPC
import Testing

@testable import Daemon
@testable import Services

#if canImport(Glibc)
import Glibc
#endif

/// Metrics: the `--metrics-listen` HTTP listener and its settings over the real binary (a TCP
/// listener, flags, startup failures and SIGTERM only a process shows), its text parsed as
/// Prometheus exposition. `system.metrics`, the backend and the listen address are in
/// `SystemMetricsTests`, in process.
@Suite("Metrics (the HTTP listener, on the binary)", .blockingIO, .timeLimit(.minutes(1)))
struct MetricsTests {
    /// Scrapes `/metrics` on `port` until `condition` holds (each scrape is a new request).
    static func waitForScrape(port: Int, _ what: String, timeout: Duration = .seconds(10), until condition: (PrometheusExposition) -> Bool) throws {
        let deadline = Deadline(timeout)
        while true {
            if condition(try PrometheusExposition(parsing: HTTPTestClient.request(port: port, "GET", "/metrics").body)) { return }
            guard !deadline.hasPassed else { throw HarnessError("/metrics never showed \(what) in \(timeout)") }
        }
    }

    @Test("--metrics-listen 127.0.0.1:0 logs its port; GET /metrics is the exposition, other paths 404, other methods 405; it closes on SIGTERM")
    func listener() throws {
        try withDaemon(["--metrics-listen", "127.0.0.1:0"]) { daemon in
            try daemon.waitForLog(containing: "metrics listening")
            let port = try #require(Self.loggedPort(daemon.stderr), "stderr: \(daemon.stderr)")
            let client = try daemon.connect()
            for id in 1...3 { _ = try client.ping(id: id) }
            // The connections gauge is the socket server's (in-process connections have no socket):
            // it counts open connections and follows them as they close.
            let second = try daemon.connect()
            let third = try daemon.connect()
            _ = try second.ping(id: 1)
            _ = try third.ping(id: 1)
            let three = try PrometheusExposition(parsing: HTTPTestClient.request(port: port, "GET", "/metrics").body)
            #expect(three.types["rpc_connections_open"] == "gauge")
            #expect(three.help["rpc_connections_open"]?.isEmpty == false)
            #expect(three.value("rpc_connections_open", [:]) == 3)
            second.close()
            third.close()
            try Self.waitForScrape(port: port, "the other connections gone") { $0.value("rpc_connections_open", [:]) == 1 }

            let scrape = try HTTPTestClient.request(port: port, "GET", "/metrics")
            #expect(scrape.status == 200, "\(scrape)")
            #expect(scrape.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8")
            #expect(scrape.headers["content-length"] == String(scrape.body.utf8.count))
            let exposition = try PrometheusExposition(parsing: scrape.body)
            #expect(try #require(exposition.value("rpc_requests_total", ["method": "system.ping"])) >= 3)
            #expect(exposition.value("rpc_connections_open", [:]) == 1)
            #expect(exposition.samples.contains { $0.name == "rpc_request_duration_seconds_bucket" && $0.labels["method"] == "system.ping" })

            let query = try HTTPTestClient.request(port: port, "GET", "/metrics?name[]=up")
            #expect(query.status == 200)
            let elsewhere = try HTTPTestClient.request(port: port, "GET", "/")
            #expect(elsewhere.status == 404, "\(elsewhere)")
            let post = try HTTPTestClient.request(port: port, "POST", "/metrics")
            #expect(post.status == 405, "\(post)")
            #expect(post.headers["allow"] == "GET, HEAD")

            daemon.terminate()
            #expect(try daemon.waitForExit() == .exited(0))
            #expect(daemon.stderr.contains("metrics listener stopped"))
            #expect(throws: (any Error).self) { try HTTPTestClient.request(port: port, "GET", "/metrics") }
        }
    }

    @Test("server.metrics_listen: off by default, set by flag or environment, a malformed value stops startup")
    func setting() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let defaults = try ConfigurationTests.printConfig([], in: directory)
        #expect(
            ConfigurationTests.line("server.metrics_listen", in: defaults.stdout)?.contains("= (unset)    # default") == true, "\(defaults.stdout)")
        let environment = try ConfigurationTests.printConfig([], environment: ["AGENTD_METRICS_LISTEN": "[::1]:9464"], in: directory)
        #expect(
            ConfigurationTests.line("server.metrics_listen", in: environment.stdout)?.contains("= [::1]:9464    # environment AGENTD_METRICS_LISTEN")
                == true,
            "\(environment.stdout)\(environment.stderr)")
        for bad in ["9464", "127.0.0.1", "127.0.0.1:99999", "127.0.0.1:http", ":9464", "::1:9464", "host name:1"] {
            let run = try ConfigurationTests.printConfig(["--metrics-listen", bad], in: directory)
            #expect(run.termination == .exited(1), "accepted \(bad)")
            #expect(run.stderr.contains("flag --metrics-listen: server.metrics_listen must be HOST:PORT"), "for \(bad): \(run.stderr)")
        }
    }

    @Test("a metrics address that cannot be bound stops startup before the socket listens")
    func addressInUse() throws {
        let (fd, port) = try HTTPTestClient.occupyPort()
        defer { Glibc.close(fd) }
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let daemon = try DaemonProcess(socketPath: "\(directory.path)/agentd.sock", arguments: ["--metrics-listen", "127.0.0.1:\(port)"])
        defer { daemon.kill() }
        #expect(try daemon.waitForExit() == .exited(1))
        #expect(daemon.stderr.contains("agentd: cannot listen for metrics on 127.0.0.1:\(port)"), "\(daemon.stderr)")
        #expect(!FileManager.default.fileExists(atPath: "\(directory.path)/agentd.sock"))
    }

    /// The port of the `metrics listening address=HOST:PORT` log line.
    static func loggedPort(_ stderr: String) -> Int? {
        guard let line = stderr.split(separator: "\n").first(where: { $0.contains("metrics listening") }),
            let range = line.range(of: "address=")
        else { return nil }
        let address = line[range.upperBound...].prefix { !$0.isWhitespace }
        return address.split(separator: ":").last.flatMap { Int($0) }
    }
}

/// `system.metrics` through the daemon's router and middleware, in process (`InProcessDaemon`); the
/// Prometheus backend and the listen address parser.
@Suite("Metrics (system.metrics, in process)", .timeLimit(.minutes(1)))
struct SystemMetricsTests {
    /// The exposition `v2.system.metrics` answers on `client`, parsed.
    static func metrics(_ client: InProcessClient, sourceLocation: SourceLocation = #_sourceLocation) async throws -> PrometheusExposition {
        let reply = try await client.call("v2.system.metrics").decode(JSONValue.self)
        #expect(reply["contentType"]?.stringValue == "text/plain; version=0.0.4", "reply: \(reply)", sourceLocation: sourceLocation)
        let text = try #require(reply["text"]?.stringValue, "reply: \(reply)", sourceLocation: sourceLocation)
        return try PrometheusExposition(parsing: text)
    }

    /// Asks for the metrics until `condition` holds (each ask is a new call).
    static func waitForMetrics(
        _ client: InProcessClient, _ what: String, timeout: Duration = .seconds(10), until condition: (PrometheusExposition) -> Bool
    ) async throws {
        let deadline = ContinuousClock.now + timeout
        while true {
            if condition(try await metrics(client)) { return }
            guard ContinuousClock.now < deadline else { throw HarnessError("metrics never showed \(what) in \(timeout)") }
            await Task.yield()
        }
    }

    @Test("system.metrics: calls, errors with their code, latency histograms per method and the gauges, as Prometheus text")
    func systemMetrics() async throws {
        try await withInProcessDaemon { daemon in
            let client = try await daemon.connect()
            let pings = 5
            for _ in 1...pings { #expect(try await client.call("system.ping").decode(JSONValue.self) == .string("pong")) }
            // Errors: params system.ping does not take (a known method), and an unknown method.
            let refused = await #expect(throws: RPCError.self) { try await client.call("system.ping", #"{"unexpected":1}"#) }
            #expect(refused?.code.rawValue == -32602, "\(String(describing: refused))")
            let unknown = await #expect(throws: RPCError.self) { try await client.call("no.such.method") }
            #expect(unknown?.code.rawValue == -32601, "\(String(describing: unknown))")
            // A live subscription on another connection, and a call still running on a third.
            let subscriber = try await daemon.connect()
            let subscribed = try await subscriber.call("events.subscribe", #"{"topics":["*"]}"#).decode(JSONValue.self)
            #expect(subscribed["subscription"]?.stringValue != nil, "reply: \(subscribed)")
            let sleeper = try await daemon.connect()
            try await sleeper.write(#"{"jsonrpc":"2.0","id":1,"method":"test.sleep","params":{"ms":60000}}"# + "\n")
            // system.metrics is itself in flight while it renders (it checks its caller first, so it
            // is not an inline method): the sleep makes it 2.
            try await Self.waitForMetrics(client, "a call in flight") { $0.value("rpc_calls_in_flight", [:]) == 2 }

            let exposition = try await Self.metrics(client)
            #expect(exposition.types["rpc_requests_total"] == "counter")
            #expect(exposition.types["rpc_errors_total"] == "counter")
            #expect(exposition.types["rpc_request_duration_seconds"] == "histogram")
            #expect(try #require(exposition.value("rpc_requests_total", ["method": "system.ping"])) >= Double(pings + 1))
            #expect(exposition.value("rpc_errors_total", ["method": "system.ping", "code": "-32602"]) == 1)
            #expect(try #require(exposition.value("rpc_errors_total", ["method": "unknown", "code": "-32601"])) >= 1)
            #expect(try #require(exposition.value("rpc_requests_total", ["method": "system.metrics"])) >= 2)

            // The histogram of system.ping: cumulative buckets from 0.1 ms to 10 s, then +Inf = _count.
            let buckets = exposition.samples.filter { $0.name == "rpc_request_duration_seconds_bucket" && $0.labels["method"] == "system.ping" }
            let bounds = buckets.compactMap { $0.labels["le"] }
            #expect(bounds.first.flatMap(Double.init) == 0.0001 && bounds.contains("10.0") && bounds.last == "+Inf", "bounds: \(bounds)")
            #expect(buckets.map(\.value) == buckets.map(\.value).sorted(), "buckets are cumulative: \(buckets)")
            let count = try #require(exposition.value("rpc_request_duration_seconds_count", ["method": "system.ping"]))
            #expect(count >= Double(pings + 1) && buckets.last?.value == count)
            #expect(try #require(exposition.value("rpc_request_duration_seconds_sum", ["method": "system.ping"])) > 0)

            // Gauges, read when the text is rendered. (`rpc_connections_open` is the socket
            // server's: MetricsTests.listener checks it on the binary.)
            #expect(exposition.types["rpc_calls_in_flight"] == "gauge")
            #expect(exposition.help["rpc_calls_in_flight"]?.isEmpty == false)
            #expect(exposition.value("events_subscriptions_active", [:]) == 1)
            #expect(exposition.value("storage_write_queue_depth", [:]) != nil)

            // The other connections leave (the sleep is cancelled): the gauges follow.
            await subscriber.close()
            await sleeper.close()
            try await Self.waitForMetrics(client, "the other connections gone") {
                $0.value("events_subscriptions_active", [:]) == 0 && $0.value("rpc_calls_in_flight", [:]) == 1
            }
        }
    }

    @Test("system.metrics needs an authenticated caller: a stranger's uid gets -32020, the daemon's own uid its text")
    func metricsNeedAuthentication() async throws {
        try await withInProcessDaemon { daemon in
            // A uid the daemon does not trust (over the socket: uid 65534 through --socket-mode 0666).
            let stranger = try await daemon.connect(uid: 65534)
            let metrics = await #expect(throws: RPCError.self) { try await stranger.call("v2.system.metrics") }
            #expect(metrics?.code.rawValue == -32020, "\(String(describing: metrics))")
            #expect(try await stranger.call("system.ping").decode(JSONValue.self) == .string("pong"))
            let own = try await daemon.connect().call("v2.system.metrics").decode(JSONValue.self)
            #expect(own["text"]?.stringValue?.contains("rpc_requests_total") == true, "\(own)")
        }
    }

    @Test("listen addresses: HOST:PORT and [IPv6]:PORT")
    func listenAddresses() {
        #expect(ListenAddress(parsing: "127.0.0.1:9464") == ListenAddress(host: "127.0.0.1", port: 9464))
        #expect(ListenAddress(parsing: "localhost:0") == ListenAddress(host: "localhost", port: 0))
        #expect(ListenAddress(parsing: "[::1]:9464") == ListenAddress(host: "::1", port: 9464))
        #expect(ListenAddress(parsing: "[::1]:9464")?.description == "[::1]:9464")
        for bad in ["", "9464", "[::1]", "[::1]9464", "[]:1", "a:-1", "a:65536", "a:１２"] {
            #expect(ListenAddress(parsing: bad) == nil, "accepted \(bad)")
        }
    }

    @Test("each graph has its own registry; LLM provider metrics render with their own buckets")
    func backend() async throws {
        let first = PrometheusMetrics()
        let second = PrometheusMetrics()
        let llm = LLMMetrics(factory: first.factory)
        llm.request(provider: "openai", model: "m1", duration: .milliseconds(1500), succeeded: true)
        llm.tokens(provider: "openai", model: "m1", input: 12, output: 30)
        llm.tokens(provider: "openai", model: "m1", input: 3, output: 0)

        let exposition = try PrometheusExposition(parsing: first.render())
        #expect(exposition.types["llm_request_duration_seconds"] == "histogram")
        let labels = ["provider": "openai", "model": "m1", "outcome": "ok"]
        #expect(exposition.value("llm_request_duration_seconds_count", labels) == 1)
        #expect(exposition.value("llm_request_duration_seconds_bucket", labels.merging(["le": "1.0"]) { $1 }) == 0)
        #expect(exposition.value("llm_request_duration_seconds_bucket", labels.merging(["le": "2.5"]) { $1 }) == 1)
        #expect(exposition.value("llm_request_duration_seconds_bucket", labels.merging(["le": "300.0"]) { $1 }) == 1)
        #expect(exposition.value("llm_tokens_total", ["provider": "openai", "model": "m1", "kind": "input"]) == 15)
        #expect(exposition.value("llm_tokens_total", ["provider": "openai", "model": "m1", "kind": "output"]) == 30)
        #expect(try PrometheusExposition(parsing: second.render()).samples.isEmpty)

        // Sampled gauges follow their source at each render.
        let source = GaugeSource()
        first.gauge("test_items", help: "Items.") { source.value }
        source.value = 3
        #expect(try PrometheusExposition(parsing: first.render()).value("test_items", [:]) == 3)
        source.value = 1
        let again = try PrometheusExposition(parsing: first.render())
        #expect(again.value("test_items", [:]) == 1)
        #expect(again.help["test_items"] == "Items.")
    }

    final class GaugeSource: @unchecked Sendable {
        // Set and read by the test's one task only.
        var value = 0
    }

}

/// A Prometheus text exposition (format 0.0.4), parsed strictly: `# HELP` and `# TYPE` lines, then
/// `name{label="value",…} value` samples; a sample whose metric has no `# TYPE` line, or any line
/// that is neither, fails the parse.
struct PrometheusExposition {
    struct Sample: CustomStringConvertible {
        var name: String
        var labels: [String: String]
        var value: Double
        var description: String { "\(name)\(labels.sorted { $0.key < $1.key }) \(value)" }
    }

    struct ParseError: Error, CustomStringConvertible {
        let description: String
    }

    var types: [String: String] = [:]
    var help: [String: String] = [:]
    var samples: [Sample] = []

    /// The value of the one sample with exactly these labels.
    func value(_ name: String, _ labels: [String: String]) -> Double? {
        samples.first { $0.name == name && $0.labels == labels }?.value
    }

    init(parsing text: String) throws {
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() where !line.isEmpty {
            func fail(_ reason: String) -> ParseError { ParseError(description: "line \(number + 1): \(reason): \(line)") }
            if line.hasPrefix("#") {
                let words = line.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: false)
                guard words.count >= 3, words[0] == "#" else { continue }  // a plain comment
                let name = String(words[2])
                guard Self.isMetricName(name) else { throw fail("bad metric name") }
                switch words[1] {
                case "TYPE":
                    guard words.count == 4, ["counter", "gauge", "histogram", "summary", "untyped"].contains(words[3]) else { throw fail("bad type") }
                    guard types[name] == nil else { throw fail("second TYPE line") }
                    types[name] = String(words[3])
                case "HELP": help[name] = words.count == 4 ? String(words[3]) : ""
                default: continue
                }
                continue
            }
            var rest = line[...]
            let name = String(rest.prefix { $0.isLetter || $0.isNumber || $0 == "_" || $0 == ":" })
            guard Self.isMetricName(name) else { throw fail("bad metric name") }
            rest = rest.dropFirst(name.count)
            var labels: [String: String] = [:]
            if rest.first == "{" {
                rest = rest.dropFirst()
                while rest.first != "}" {
                    let key = String(rest.prefix { $0.isLetter || $0.isNumber || $0 == "_" })
                    guard !key.isEmpty, !key.first!.isNumber else { throw fail("bad label name") }
                    rest = rest.dropFirst(key.count)
                    guard rest.hasPrefix("=\"") else { throw fail("expected =\" after \(key)") }
                    rest = rest.dropFirst(2)
                    var value = ""
                    while true {
                        guard let character = rest.popFirst() else { throw fail("unterminated label value") }
                        if character == "\"" { break }
                        if character == "\\" {
                            switch rest.popFirst() {
                            case "\\": value.append("\\")
                            case "\"": value.append("\"")
                            case "n": value.append("\n")
                            default: throw fail("bad escape in a label value")
                            }
                        } else {
                            value.append(character)
                        }
                    }
                    guard labels.updateValue(value, forKey: key) == nil else { throw fail("label \(key) twice") }
                    if rest.first == "," { rest = rest.dropFirst() } else if rest.first != "}" { throw fail("expected , or }") }
                }
                rest = rest.dropFirst()
            }
            let fields = rest.split(separator: " ")
            guard rest.first == " ", (1...2).contains(fields.count) else { throw fail("expected one value (and a timestamp)") }
            let value: Double
            switch fields[0] {
            case "+Inf": value = .infinity
            case "-Inf": value = -.infinity
            case "NaN": value = .nan
            default:
                guard let number = Double(fields[0]) else { throw fail("bad value") }
                value = number
            }
            if fields.count == 2, Int64(fields[1]) == nil { throw fail("bad timestamp") }
            // A histogram's samples are its name plus _bucket (with le), _sum and _count.
            let family =
                types[name] != nil
                ? name
                : ["_bucket", "_sum", "_count"].lazy.compactMap { suffix in
                    name.hasSuffix(suffix) ? String(name.dropLast(suffix.count)) : nil
                }.first { types[$0] == "histogram" || types[$0] == "summary" }
            guard let family else { throw fail("no TYPE line for \(name) before its sample") }
            if types[family] == "histogram", name.hasSuffix("_bucket"), labels["le"] == nil { throw fail("bucket without le") }
            samples.append(Sample(name: name, labels: labels, value: value))
        }
    }

    static func isMetricName(_ name: String) -> Bool {
        guard let first = name.first, first.isASCII, first.isLetter || first == "_" || first == ":" else { return false }
        return name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == ":") }
    }
}

/// One HTTP/1.1 request over a plain TCP socket to 127.0.0.1 (`Connection: close`), read to the
/// end: what a scraper sees on the wire.
enum HTTPTestClient {
    struct Response: CustomStringConvertible {
        var status: Int
        /// Header names in lower case.
        var headers: [String: String]
        var body: String
        var description: String { "HTTP \(status) \(headers)\n\(body.prefix(500))" }
    }

    /// A socket listening on a free loopback port, so that nothing else can bind it.
    static func occupyPort() throws -> (fd: Int32, port: Int) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw HarnessError("socket(): \(String(cString: strerror(errno)))") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                Glibc.bind(fd, pointer, length) == 0 && listen(fd, 1) == 0 && getsockname(fd, pointer, &length) == 0
            }
        }
        guard bound else {
            Glibc.close(fd)
            throw HarnessError("cannot listen on a loopback port: \(String(cString: strerror(errno)))")
        }
        return (fd, Int(UInt16(bigEndian: address.sin_port)))
    }

    /// A TCP connection to the loopback `port` (the caller closes it).
    static func connectLoopback(port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw HarnessError("socket(): \(String(cString: strerror(errno)))") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            let reason = String(cString: strerror(errno))
            Glibc.close(fd)
            throw HarnessError("connect(127.0.0.1:\(port)): \(reason)")
        }
        return fd
    }

    static func request(port: Int, _ method: String, _ path: String, timeout: Duration = .seconds(10)) throws -> Response {
        let fd = try connectLoopback(port: port)
        defer { Glibc.close(fd) }
        let request = Array("\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\nContent-Length: 0\r\n\r\n".utf8)
        var sent = 0
        while sent < request.count {
            let count = request[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard count > 0 else { throw HarnessError("send(): \(String(cString: strerror(errno)))") }
            sent += count
        }
        var received: [UInt8] = []
        let deadline = Deadline(timeout)
        while true {
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard !deadline.hasPassed else {
                throw HarnessError("no complete HTTP response in \(timeout): \(String(decoding: received, as: UTF8.self))")
            }
            guard poll(&poller, 1, 100) >= 0 else { throw HarnessError("poll(): \(String(cString: strerror(errno)))") }
            guard poller.revents != 0 else { continue }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard count >= 0 else { throw HarnessError("recv(): \(String(cString: strerror(errno)))") }
            if count == 0 { break }
            received += chunk[..<count]
        }
        let text = String(decoding: received, as: UTF8.self)
        guard let split = text.range(of: "\r\n\r\n") else { throw HarnessError("not an HTTP response: \(text.debugDescription)") }
        let lines = text[..<split.lowerBound].components(separatedBy: "\r\n")
        let statusLine = lines[0].split(separator: " ")
        guard statusLine.count >= 2, statusLine[0] == "HTTP/1.1", let status = Int(statusLine[1]) else {
            throw HarnessError("bad status line: \(lines[0])")
        }
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { throw HarnessError("bad header: \(line)") }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return Response(status: status, headers: headers, body: String(text[split.upperBound...]))
    }
}
