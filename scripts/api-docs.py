#!/usr/bin/env python3
"""Writes docs/API.md, the method reference, from the OpenRPC documents schema/openrpc-v*.json.

Usage: scripts/api-docs.py            # prints the page on stdout
       scripts/api-docs.py FILE       # writes it to FILE (what `make schema` does)

The documents are generated from the method types (`make schema`), so this page is derived twice
removed from the code and never edited by hand; a test (APIDocsTests) fails when it is stale.
Standard library only, and deterministic: the same documents give the same bytes.
"""

import glob
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_documents():
    """{version: document} for every schema/openrpc-vN.json, oldest version first."""
    documents = {}
    for path in glob.glob(os.path.join(ROOT, "schema", "openrpc-v*.json")):
        match = re.fullmatch(r"openrpc-v(\d+)\.json", os.path.basename(path))
        if match:
            with open(path, encoding="utf-8") as file:
                documents[match.group(1)] = json.load(file)
    return dict(sorted(documents.items(), key=lambda item: int(item[0])))


def union(documents, member, key):
    """The entries of `member` across every version, by `key`; the newest version's wording wins."""
    entries = {}
    for document in documents.values():
        for entry in document.get(member, []):
            entries[entry[key]] = entry
    return entries


def canonical(value):
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


# A compact JSON-schema-to-text rendering: `{name: string, tags?: [string]}`, `"a" | "b"`, `any`.
def render(schema, indent=0, multiline=True):
    if not isinstance(schema, dict) or not schema:
        return "any"
    for combinator in ("oneOf", "anyOf"):
        if combinator in schema:
            return " | ".join(render(s, indent, multiline) for s in schema[combinator])
    if "const" in schema:
        return json.dumps(schema["const"], ensure_ascii=False)
    if "enum" in schema:
        return " | ".join(json.dumps(v, ensure_ascii=False) for v in schema["enum"])
    kind = schema.get("type")
    if isinstance(kind, list):
        return " | ".join(render(dict(schema, type=k), indent, multiline) for k in kind)
    if kind == "array" or "items" in schema:
        return "[" + render(schema.get("items", {}), indent, multiline) + "]"
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties", {})
        required = set(schema.get("required", []))
        extra = schema.get("additionalProperties")
        members = [
            (name + ("" if name in required else "?"), properties[name]) for name in properties
        ]
        if isinstance(extra, dict):
            members.append(("[key: string]", extra))
        if not members:
            return "{}" if extra is False else "object"
        if not multiline or all(is_leaf(s) for _, s in members) and len(members) <= 3:
            return "{" + ", ".join(f"{n}: {render(s, 0, False)}" for n, s in members) + "}"
        pad = "  " * (indent + 1)
        lines = [f"{pad}{n}: {render(s, indent + 1, True)}" for n, s in members]
        return "{\n" + ",\n".join(lines) + "\n" + "  " * indent + "}"
    text = kind or "any"
    if "format" in schema:
        text += f" ({schema['format']})"
    return text


def is_leaf(schema):
    return isinstance(schema, dict) and not any(k in schema for k in ("properties", "items", "oneOf", "anyOf"))


def cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def anchor(name):
    """GitHub's heading id for "### `name`"."""
    return re.sub(r"[^a-z0-9_ -]", "", name.lower()).replace(" ", "-")


def versions_text(versions):
    return ", ".join(versions)


def render_method(entry, versions, out):
    summary = entry.get("summary", "")
    description = entry.get("description", "")
    if summary:
        out.append(summary)
        out.append("")
    if description and description != summary:
        out.append(description)
        out.append("")
    facts = [("Version" if len(versions) == 1 else "Versions") + " " + versions_text(versions)]
    structure = entry.get("paramStructure", "either")
    if structure != "either":
        facts.append(f"params {structure} only")
    if "x-timeout-ms" in entry:
        facts.append(f"timeout {entry['x-timeout-ms']} ms")
    rate_class = entry.get("x-rate-class")
    if rate_class == "exempt":
        facts.append("never rate limited")
    elif rate_class:
        facts.append(f"rate class `{rate_class}`")
    out.append(" · ".join(facts))
    out.append("")
    if entry.get("deprecated"):
        reason = entry.get("x-deprecation", "")
        out.append("**Deprecated**" + (f": {reason}" if reason else "") + ".")
        out.append("")
    params = entry.get("params", [])
    if params:
        described = [p.get("description") or p.get("schema", {}).get("description", "") for p in params]
        # The description column only when some param has one (today the types carry none).
        with_description = any(described)
        out.append("| param | type | required |" + (" description |" if with_description else ""))
        out.append("|---|---|---|" + ("---|" if with_description else ""))
        for param, description in zip(params, described):
            schema = param.get("schema", {})
            out.append(
                f"| `{param['name']}` | `{cell(render(schema, multiline=False))}` | "
                f"{'yes' if param.get('required') else 'no'} |" + (f" {cell(description)} |" if with_description else "")
            )
    else:
        out.append("No params.")
    out.append("")
    result = entry.get("result", {}).get("schema", {})
    out.append("Result:")
    out.append("")
    out.append("```text")
    out.append(render(result))
    out.append("```")
    out.append("")
    errors = entry.get("errors", [])
    if errors:
        out.append("| error | message | data |")
        out.append("|---|---|---|")
        for error in errors:
            out.append(f"| `{error['code']}` | {cell(error.get('message', ''))} | {cell(error.get('data', ''))} |")
        out.append("")
    for example in entry.get("examples", []):
        out.append(f"Example{': ' + example['name'] if example.get('name') else ''}")
        out.append("")
        out.append("```json")
        params_example = {p["name"]: p.get("value") for p in example.get("params", [])}
        out.append(canonical({"params": params_example, "result": example.get("result", {}).get("value")}))
        out.append("```")
        out.append("")


def main():
    documents = load_documents()
    if not documents:
        sys.exit("api-docs.py: no schema/openrpc-v*.json found")
    all_versions = list(documents)
    # name -> [(version, entry)], in version order.
    methods = {}
    for version, document in documents.items():
        for entry in document.get("methods", []):
            methods.setdefault(entry["name"], []).append((version, entry))

    out = [
        "# API reference",
        "",
        "<!-- Generated by scripts/api-docs.py from schema/openrpc-v*.json (`make schema`): do not edit. -->",
        "",
        f"Every method agentd serves, in API versions {versions_text(all_versions)}. Without `session.hello` a",
        "connection is served by version 1; a `vN.` prefix reaches version N (`v2.chats.list`). A method added",
        "later is in every version: versions differ only where a contract changed (each variant is shown) or",
        "a method is deprecated. Params may be given by name (an object) or by position (an array, in the",
        "order shown). An optional member is",
        "written `name?`. Errors every method may answer (parse errors, limits, timeouts, rate limits,",
        "`Unauthorized`) are listed once under [Errors](#errors) and in [ERRORS.md](ERRORS.md); each method lists",
        "the ones of its own. A deprecated method still works; its reply carries a `deprecation` member",
        "next to `result`. Each method's rate class (`x-rate-class`) is the budget its calls spend",
        "([OPERATIONS.md](OPERATIONS.md#rate-limits)). The same documents are served by `rpc.discover {version?}`.",
        "",
        "| method | versions | summary |",
        "|---|---|---|",
    ]
    for name in sorted(methods):
        entries = methods[name]
        versions = [v for v, _ in entries]
        summary = entries[-1][1].get("summary", "")
        first_sentence = re.split(r"(?<=[.:;])\s+(?=[A-Z])", summary)[0]
        deprecated = " (deprecated)" if entries[-1][1].get("deprecated") else ""
        out.append(f"| [`{name}`](#{anchor(name)}){deprecated} | {versions_text(versions)} | {cell(first_sentence)} |")
    out.append("")

    namespace = None
    for name in sorted(methods):
        top = name.split(".")[0]
        if top != namespace:
            namespace = top
            out.append(f"## {top}")
            out.append("")
        out.append(f"### `{name}`")
        out.append("")
        # Versions whose entries are identical are shown once; a changed contract once per variant.
        variants = []
        for version, entry in methods[name]:
            for variant in variants:
                if canonical(variant[1]) == canonical(entry):
                    variant[0].append(version)
                    break
            else:
                variants.append(([version], entry))
        if len(variants) == 1:
            render_method(variants[0][1], variants[0][0], out)
        else:
            for versions, entry in variants:
                out.append(f"#### In version{'s' if len(versions) > 1 else ''} {versions_text(versions)}")
                out.append("")
                render_method(entry, versions, out)

    out.append("## Notifications")
    out.append("")
    out.append("What the server sends without being asked (JSON-RPC notifications, no `id`).")
    out.append("")
    for note in sorted(union(documents, "x-notifications", "name").values(), key=lambda n: n["name"]):
        out.append(f"### `{note['name']}`")
        out.append("")
        if note.get("summary"):
            out.append(note["summary"])
            out.append("")
        out.append("```text")
        out.append(render(note.get("params", {})))
        out.append("```")
        out.append("")

    out.append("## Errors")
    out.append("")
    out.append("Every error code the server answers; [ERRORS.md](ERRORS.md) says how to handle each.")
    out.append("")
    out.append("| code | message | data |")
    out.append("|---|---|---|")
    for error in union(documents, "x-errors", "code").values():
        out.append(f"| `{error['code']}` | {cell(error.get('message', ''))} | {cell(error.get('data', ''))} |")
    out.append("")

    text = "\n".join(out).rstrip("\n") + "\n"
    if len(sys.argv) > 1:
        with open(sys.argv[1], "w", encoding="utf-8") as file:
            file.write(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
