/// What a published API version's clients rely on, compared between its frozen document
/// (schema/published/openrpc-vN.json) and the one the code generates now (DiscoveryTests).
///
/// A published version may gain methods, notifications and error codes; it may never change or
/// lose one. What it had must still be there unchanged: a method's name and paramStructure; its
/// params (names, order, required, schemas), which may be followed by new optional ones; its
/// result, whose objects may gain optional members (a client reads the members it knows); its
/// errors' codes and messages, to which more may be added; a notification's params; the common
/// errors' codes and messages. An object in a param or result may gain a member only when it is not
/// required. Free to change: prose (summaries, descriptions, examples, the `data` notes of errors),
/// a deprecation notice (the calls still work as before; the reply gains a `deprecation` member
/// beside `result`), a method's timeout and its rate class (server limits).
enum APICompatibility {
    /// Members of a method entry that may change in a published version.
    static let freeMethodMembers: Set<String> = ["summary", "description", "examples", "deprecated", "x-deprecation", "x-timeout-ms", "x-rate-class"]

    /// Each way `current` breaks a client of `published`, readable ("method modules.get: its params
    /// changed"); empty when it only grew.
    static func breaks(published: JSON, current: JSON) -> [String] {
        var breaks: [String] = []
        let methods = byKey(current["methods"], "name")
        for method in published["methods"]?.arrayValue ?? [] {
            let name = method["name"]?.stringValue ?? "?"
            guard let now = methods[name] else {
                breaks.append("method \(name) was removed")
                continue
            }
            let members = Set(method.objectValue?.keys.map { $0 } ?? []).union(now.objectValue?.keys.map { $0 } ?? []).subtracting(freeMethodMembers)
            for member in members.sorted() where !grows(contract(of: method[member], member), into: contract(of: now[member], member), member) {
                breaks.append("method \(name): its \(member) changed")
            }
        }
        let notifications = byKey(current["x-notifications"], "name")
        for notification in published["x-notifications"]?.arrayValue ?? [] {
            let name = notification["name"]?.stringValue ?? "?"
            guard let now = notifications[name] else {
                breaks.append("notification \(name) was removed")
                continue
            }
            if notification["params"] != now["params"] { breaks.append("notification \(name): its params changed") }
        }
        let errors = byKey(current["x-errors"], "code")
        for error in published["x-errors"]?.arrayValue ?? [] {
            let code = error["code"]?.intValue.map(String.init) ?? "?"
            guard let now = errors[code] else {
                breaks.append("error \(code) was removed")
                continue
            }
            if error["message"] != now["message"] { breaks.append("error \(code): its message changed") }
        }
        return breaks
    }

    /// Whether a method's member `member` as published is still what its clients rely on in `current`:
    /// equal, or (params, result, errors) grown as the type's comment allows.
    private static func grows(_ published: JSON?, into current: JSON?, _ member: String) -> Bool {
        guard let published, let current else { return published == current }
        switch member {
        case "params":
            guard let old = published.arrayValue, let new = current.arrayValue, new.count >= old.count else { return false }
            let kept = zip(old, new).allSatisfy { old, new in
                old["name"] == new["name"] && old["required"] == new["required"] && schemaGrows(old["schema"], into: new["schema"])
            }
            return kept && new.dropFirst(old.count).allSatisfy { $0["required"] != .bool(true) }
        case "result":
            return published["name"] == current["name"] && schemaGrows(published["schema"], into: current["schema"])
        case "errors":
            let now = current.arrayValue ?? []
            return (published.arrayValue ?? []).allSatisfy { now.contains($0) }
        default:
            return published == current
        }
    }

    /// Equal, or an object that gained optional members (at any depth: array items, `oneOf` branches).
    private static func schemaGrows(_ published: JSON?, into current: JSON?) -> Bool {
        guard case .object(let old) = published, case .object(let new) = current else { return published == current }
        for key in Set(old.keys).union(new.keys) {
            switch key {
            case "properties":
                guard let oldProperties = old[key]?.objectValue, let newProperties = new[key]?.objectValue else { return false }
                for (name, schema) in oldProperties where !schemaGrows(schema, into: newProperties[name]) { return false }
                let required = Set((new["required"]?.arrayValue ?? []).compactMap(\.stringValue))
                if newProperties.keys.contains(where: { oldProperties[$0] == nil && required.contains($0) }) { return false }
            case "items", "additionalProperties":
                if !schemaGrows(old[key], into: new[key]) { return false }
            case "oneOf":
                guard let oldBranches = old[key]?.arrayValue, let newBranches = new[key]?.arrayValue, oldBranches.count == newBranches.count,
                    zip(oldBranches, newBranches).allSatisfy({ schemaGrows($0, into: $1) })
                else { return false }
            default:
                if old[key] != new[key] { return false }
            }
        }
        return true
    }

    /// A member as far as clients rely on it: an error list without its prose `data` notes.
    private static func contract(of value: JSON?, _ member: String) -> JSON? {
        guard member == "errors", let errors = value?.arrayValue else { return value }
        return .array(errors.map { .object(["code": $0["code"] ?? .null, "message": $0["message"] ?? .null]) })
    }

    /// The entries of an array of objects by one member (rendered as text: a name, or a code).
    private static func byKey(_ array: JSON?, _ key: String) -> [String: JSON] {
        var entries: [String: JSON] = [:]
        for entry in array?.arrayValue ?? [] {
            guard let value = entry[key] else { continue }
            entries[value.stringValue ?? value.intValue.map(String.init) ?? "\(value)"] = entry
        }
        return entries
    }
}

extension JSON {
    /// Sets an object's member (nothing for another value): for building variants of a document.
    mutating func set(_ key: String, _ value: JSON) {
        guard case .object(var members) = self else { return }
        members[key] = value
        self = .object(members)
    }

    /// Appends to an object's array member.
    mutating func append(_ key: String, _ value: JSON) {
        set(key, .array((self[key]?.arrayValue ?? []) + [value]))
    }

    /// Changes the entry of `methods` named `name` in an OpenRPC document.
    mutating func update(method name: String, _ change: (inout JSON) throws -> Void) rethrows {
        var methods = self["methods"]?.arrayValue ?? []
        for index in methods.indices where methods[index]["name"] == .string(name) { try change(&methods[index]) }
        set("methods", .array(methods))
    }
}
