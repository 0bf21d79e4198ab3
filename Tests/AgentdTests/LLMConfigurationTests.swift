import Foundation
import Services
import Testing

@testable import Daemon

/// The `[llm]` and `[search]` keys: file, environment, fallbacks between variables, validation,
/// and what the composition root gets (`configuration.llm`, `configuration.search`).
@Suite("LLM configuration", .timeLimit(.minutes(1)))
struct LLMConfigurationTests {
    static func load(_ toml: String? = nil, environment: [String: String] = [:]) throws -> ConfigurationLoader.Loaded {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        var file: String?
        if let toml {
            file = "\(directory.path)/agentd.toml"
            try toml.write(toFile: file!, atomically: true, encoding: .utf8)
        }
        var environment = environment
        environment["XDG_CONFIG_HOME"] = "\(directory.path)/none"
        let loader = ConfigurationLoader(flags: [:], explicitFile: file, environment: environment)
        return try loader.load(base: DaemonConfiguration(socketPath: "/tmp/unused.sock", databasePath: "/tmp/unused.sqlite"))
    }

    @Test("every [llm] and [search] key from the file, fallbacks as inline tables and strings")
    func fromFile() throws {
        let loaded = try Self.load(
            """
            [llm]
            provider = "azure"
            base_url = "https://myres.openai.azure.com"
            api_key = "test-key-not-secret"
            model = "gpt-4o"
            azure_deployment = "gpt4o-prod"
            azure_api_version = "2024-10-21"
            timeout_seconds = 30
            max_retries = 4
            context_window = 64000
            fallbacks = [
                {model = "gpt4o-mini-deployment"},
                {provider = "openai-compatible", base_url = "http://localhost:11434/v1", model = "llama3.1"},
                "openai:gpt-4o-mini",  # a trailing comma, as TOML allows
            ]
            [search]
            tavily_api_key = "tvly-test-key-not-secret"
            tavily_base_url = "http://127.0.0.1:9/"
            """)
        let llm = loaded.configuration.llm
        #expect(
            llm
                == LLMConfiguration(
                    provider: .azure, baseURL: "https://myres.openai.azure.com", apiKey: "test-key-not-secret", model: "gpt-4o",
                    azureDeployment: "gpt4o-prod",
                    azureAPIVersion: "2024-10-21", timeoutSeconds: 30, maxRetries: 4,
                    fallbacks: [
                        .init(model: "gpt4o-mini-deployment"),
                        .init(provider: .openAICompatible, baseURL: "http://localhost:11434/v1", model: "llama3.1"),
                        .init(provider: .openai, model: "gpt-4o-mini"),
                    ], contextWindow: 64000))
        #expect(loaded.configuration.search == WebSearchConfiguration(tavilyAPIKey: "tvly-test-key-not-secret", tavilyBaseURL: "http://127.0.0.1:9/"))
        let described = ConfigurationLoader.describe(loaded)
        #expect(!described.contains("test-key-not-secret"))
        #expect(described.contains("llm.fallbacks"))
        #expect(described.contains("openai-compatible:llama3.1@http://localhost:11434/v1"))
    }

    @Test("environment: AGENTD_* variables, then OPENAI_API_KEY — or AZURE_OPENAI_API_KEY first for azure — and TAVILY_API_KEY")
    func environment() throws {
        let both = ["OPENAI_API_KEY": "openai-test-key", "AZURE_OPENAI_API_KEY": "azure-test-key", "TAVILY_API_KEY": "tvly-test"]
        let openAI = try Self.load(environment: both)
        #expect(openAI.configuration.llm.apiKey == "openai-test-key")
        #expect(openAI.sources["llm.api_key"] == .environment("OPENAI_API_KEY"))
        #expect(openAI.configuration.search.tavilyAPIKey == "tvly-test")

        let azure = try Self.load(environment: both.merging(["AGENTD_LLM_PROVIDER": "azure"]) { $1 })
        #expect(azure.configuration.llm.provider == .azure)
        #expect(azure.configuration.llm.apiKey == "azure-test-key")
        let fileAzure = try Self.load("[llm]\nprovider = \"azure\"\n", environment: both)
        #expect(fileAzure.sources["llm.api_key"] == .environment("AZURE_OPENAI_API_KEY"))

        let own = try Self.load(
            environment: both.merging([
                "AGENTD_LLM_API_KEY": "agentd-test-key", "AGENTD_TAVILY_API_KEY": "tvly-agentd", "AGENTD_LLM_MODEL": "gpt-4o",
                "AGENTD_LLM_BASE_URL": "http://127.0.0.1:1/v1", "AGENTD_TAVILY_BASE_URL": "http://127.0.0.1:2", "AGENTD_LLM_CONTEXT_WINDOW": "4096",
                "AGENTD_LLM_FALLBACKS": "gpt-4o-mini, openai-compatible:llama3.1@http://localhost:11434/v1",
            ]) { $1 })
        #expect(own.configuration.llm.apiKey == "agentd-test-key")
        #expect(own.configuration.search.tavilyAPIKey == "tvly-agentd")
        #expect(own.configuration.llm.model == "gpt-4o")
        #expect(own.configuration.llm.baseURL == "http://127.0.0.1:1/v1")
        #expect(own.configuration.search.tavilyBaseURL == "http://127.0.0.1:2")
        #expect(own.configuration.llm.contextWindow == 4096)
        #expect(
            own.configuration.llm.fallbacks == [
                .init(model: "gpt-4o-mini"), .init(provider: .openAICompatible, baseURL: "http://localhost:11434/v1", model: "llama3.1"),
            ])
    }

    @Test("defaults: openai without a key; the factory's provider then names exactly what is missing")
    func defaults() async throws {
        let loaded = try Self.load()
        #expect(loaded.configuration.llm == LLMConfiguration())
        #expect(loaded.configuration.search.tavilyBaseURL == "https://api.tavily.com")
        #expect(loaded.configuration.llm.missingSettings == ["llm.api_key (AGENTD_LLM_API_KEY or OPENAI_API_KEY)"])
        #expect(loaded.configuration.search.missingSettings == ["search.tavily_api_key (AGENTD_TAVILY_API_KEY or TAVILY_API_KEY)"])
    }

    @Test("bad fallbacks and providers are refused with the key and the reason")
    func refusals() throws {
        let cases: [(String, String)] = [
            ("[llm]\nfallbacks = [{modle = \"x\"}]\n", "llm.fallbacks fallback has an unknown key modle"),
            ("[llm]\nfallbacks = [{provider = \"anthropic\", model = \"x\"}]\n", "fallback provider must be one of openai, azure, openai-compatible"),
            ("[llm]\nfallbacks = [{base_url = \"http://x\", model = \"m\"}]\n", "fallback with a base_url needs a provider"),
            ("[llm]\nfallbacks = [{provider = \"azure\"}]\n", "fallback needs a model"),
            ("[llm]\nfallbacks = 3\n", "llm.fallbacks must be an array"),
            ("[llm]\nprovider = \"anthropic\"\n", "llm.provider must be one of openai, azure, openai-compatible"),
            ("[llm]\ncontext_window = 10\n", "llm.context_window must be at least 256"),
            ("[llm]\nfallbacks = [{model = \"x\"\n", "expected , or } in inline table"),
        ]
        for (text, message) in cases {
            let error = #expect(throws: (any Error).self, "\(text)") { try Self.load(text) }
            #expect(error.map { "\($0)".contains(message) } == true, "\(String(describing: error)) for \(text)")
        }
    }

    @Test("llm.image_models: the default list, a TOML array or the environment's comma list; a * inside a name is refused")
    func imageModels() throws {
        #expect(try Self.load().configuration.llm.imageModels == LLMImageModels.defaultPatterns)
        let file = try Self.load("[llm]\nimage_models = [\"gpt-4o*\", \"local-vl\"]\n")
        #expect(file.configuration.llm.imageModels == ["gpt-4o*", "local-vl"])
        let environment = try Self.load(environment: ["AGENTD_LLM_IMAGE_MODELS": "llava*, qwen2.5vl"])
        #expect(environment.configuration.llm.imageModels == ["llava*", "qwen2.5vl"])
        #expect(environment.sources["llm.image_models"] == .environment("AGENTD_LLM_IMAGE_MODELS"))
        let error = #expect(throws: (any Error).self) { try Self.load("[llm]\nimage_models = [\"gpt-*-mini\"]\n") }
        #expect("\(error.map(String.init(describing:)) ?? "")".contains("image_models"), "\(String(describing: error))")
    }
}
