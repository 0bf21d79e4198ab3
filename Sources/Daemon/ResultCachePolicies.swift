import Foundation
import NIOCore
import RPC
import Services

/// What the result cache (`RPCCacheMiddleware`) keeps and what drops it: the hot reads of one item
/// (a module, a prompt, a rendered prompt), each filed under the id it shows, and the events that
/// change those ids. The services know nothing of it.
enum ResultCachePolicies {
    private struct IDParams: Decodable {
        var id: String
    }

    /// Files a call's result under `prefix:` + its `id` param; nil (not cached) when params are not
    /// an object with a string `id` (by-position params go through uncached).
    private static func byID(_ prefix: String) -> RPCCachePolicy {
        RPCCachePolicy { params in
            guard let params, let value = try? JSONDecoder().decode(IDParams.self, from: Data(params.readableBytesView)) else { return nil }
            return ["\(prefix):\(value.id)"]
        }
    }

    static let policies: [String: RPCCachePolicy] = [
        "modules.get": byID("module"),
        "prompts.get": byID("prompt"),
        "prompts.render": byID("prompt"),
    ]

    private struct PromptData: Decodable {
        var promptId: String
    }

    /// The tags a committed event makes stale.
    static func staleTags(_ event: Event) -> [String] {
        switch event.topic {
        case ModulesEvents.ModuleUpdated.topic, ModulesEvents.ModuleDeleted.topic:
            return event.moduleID.map { ["module:\($0)"] } ?? []
        case PromptsEvents.PromptUpdated.topic, PromptsEvents.PromptDeleted.topic:
            guard let data = try? JSONDecoder().decode(PromptData.self, from: Data(event.data.text.utf8)) else { return [] }
            return ["prompt:\(data.promptId)"]
        default:
            return []
        }
    }
}
