/// Which proxy each request goes through, resolved once from an environment at client init.
///
/// libcurl would read the same variables itself on every transfer, but only from the process
/// environment; resolving them here makes the choice explicit, testable (a test passes its own
/// dictionary instead of mutating a process-wide `setenv` that other tests share) and logged once.
///
/// The rules follow curl's: `http_proxy` for `http://` URLs, `https_proxy`/`HTTPS_PROXY` for
/// `https://` URLs, `all_proxy`/`ALL_PROXY` for either when the scheme's own variable is unset, and
/// `no_proxy`/`NO_PROXY` (comma-separated host names, domains, IPs or CIDRs, or `*`) for the
/// exceptions, matched by libcurl (`CURLOPT_NOPROXY`). Unlike curl, the upper-case `HTTP_PROXY` is
/// honoured too (curl ignores it because of CGI's `HTTP_` header variables; a daemon is no CGI).
public struct CurlProxySettings: Sendable, Equatable {
    /// Proxy URL for `http://` requests; nil for none.
    public var http: String?
    /// Proxy URL for `https://` requests (tunnelled with CONNECT through an `http://` proxy).
    public var https: String?
    /// Hosts that bypass the proxy, in curl's `NO_PROXY` syntax.
    public var noProxy: String?

    public init(http: String? = nil, https: String? = nil, noProxy: String? = nil) {
        self.http = http
        self.https = https
        self.noProxy = noProxy
    }

    /// No proxy at all, whatever the environment says.
    public static let none = CurlProxySettings()

    /// The proxies the usual variables of `environment` name (lower case first, as curl does).
    public static func environment(_ environment: [String: String]) -> CurlProxySettings {
        func value(_ names: String...) -> String? {
            for name in names {
                if let value = environment[name]?.trimmingWhitespace, !value.isEmpty { return value }
            }
            return nil
        }
        let all = value("all_proxy", "ALL_PROXY")
        return CurlProxySettings(
            http: value("http_proxy", "HTTP_PROXY") ?? all,
            https: value("https_proxy", "HTTPS_PROXY") ?? all,
            noProxy: value("no_proxy", "NO_PROXY")
        )
    }

    /// The proxy for `url` ("" means none: libcurl then ignores its own environment lookup).
    func proxy(for url: String) -> String {
        let lower = url.prefix(8).lowercased()
        if lower.hasPrefix("https://") { return https ?? "" }
        if lower.hasPrefix("http://") { return http ?? "" }
        return ""
    }
}

extension String {
    fileprivate var trimmingWhitespace: String {
        var slice = Substring(self)
        while let first = slice.first, first.isWhitespace { slice.removeFirst() }
        while let last = slice.last, last.isWhitespace { slice.removeLast() }
        return String(slice)
    }
}
