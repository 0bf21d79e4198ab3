import Foundation

/// One request as the fake server received it.
public struct FakeRecordedRequest: Sendable {
    /// 0-based, in arrival order (the order `requests` lists them).
    public var index: Int
    /// Which TCP connection it came on (1-based, in accept order).
    public var connection: Int
    public var method: String
    /// The request target as sent: a path, or an absolute URI when sent to a proxy.
    public var uri: String
    public var path: String
    public var query: String?
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]

    /// The first value of `name`, compared without case.
    public func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    /// The value of query parameter `name` (not percent-decoded).
    public func queryItem(_ name: String) -> String? {
        guard let query else { return nil }
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            if parts.first.map(String.init) == name { return parts.count > 1 ? String(parts[1]) : "" }
        }
        return nil
    }

    public var bodyText: String { String(decoding: body, as: UTF8.self) }

    /// The body parsed as a JSON object, nil when it is not one.
    public func jsonObject() -> [String: Any]? {
        (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any]
    }

    /// A chat request's messages as the server read them: role, text (a string `content`, or its
    /// `text` parts joined) and the `image_url` parts' URLs, in order (a data URL arrives whole).
    public var chatParts: [(role: String, text: String?, imageURLs: [String])] {
        let messages = (jsonObject()?["messages"] as? [[String: Any]]) ?? []
        return messages.map { message in
            let role = (message["role"] as? String) ?? "?"
            if let content = message["content"] as? String { return (role, content, []) }
            guard let parts = message["content"] as? [[String: Any]] else { return (role, nil, []) }
            let texts = parts.compactMap { $0["type"] as? String == "text" ? $0["text"] as? String : nil }
            let urls = parts.compactMap { part -> String? in
                guard part["type"] as? String == "image_url" else { return nil }
                return (part["image_url"] as? [String: Any])?["url"] as? String
            }
            return (role, texts.isEmpty ? nil : texts.joined(), urls)
        }
    }

    /// Every image URL of a chat request, in order.
    public var chatImageURLs: [String] { chatParts.flatMap(\.imageURLs) }

    init(index: Int, connection: Int, method: String, uri: String, headers: [(name: String, value: String)], body: [UInt8]) {
        self.index = index
        self.connection = connection
        self.method = method
        self.uri = uri
        self.headers = headers
        self.body = body
        var target = Substring(uri)
        // An absolute URI (proxy form): keep the path and query.
        if let scheme = target.range(of: "://") {
            let rest = target[scheme.upperBound...]
            target = rest.firstIndex(of: "/").map { rest[$0...] } ?? "/"
        }
        if let mark = target.firstIndex(of: "?") {
            path = String(target[..<mark])
            query = String(target[target.index(after: mark)...])
        } else {
            path = String(target)
            query = nil
        }
    }
}
