#!/usr/bin/env python3
"""Summarises bench/profile.sh's callgrind reports: instructions per request, the top inclusive and
exclusive functions, and exclusive cost grouped by kind of work.

    bench/callgrind_summary.py OUT_DIR REQUESTS [TOP]

Reads OUT_DIR/callgrind-inclusive.txt and OUT_DIR/callgrind-exclusive.txt (callgrind_annotate
output, already demangled) and prints Markdown. Functions that were on the stack when the counters
were zeroed (thread entry, event-loop run) show their whole inclusive cost in callgrind's exclusive
listing; they are left out of the exclusive tables (the rest then sums to 100%).
"""
import re
import sys

LINE = re.compile(r"^\s*([\d,]+) \(\s*([\d.]+)%\)\s+(?:\S*?:)?(.*?)(?: \[(.*)\])?$")

# Exclusive cost by kind of work: first matching rule wins (name regex, object regex).
BUCKETS = [
    ("Swift exclusivity checks (swift_beginAccess & co.)",
     r"^(swift_beginAccess|swift_endAccess|swift::runtime::AccessSet|swift::runtime::SwiftTLSContext|__tls_get_addr)", None),
    ("Swift retain/release", r"^(swift_retain|swift_release|swift_bridgeObjectRe|swift_nonatomic_re|bool swift::RefCounts|swift_isUniquelyReferenced)", None),
    ("malloc/free and Swift object alloc/dealloc",
     r"^(malloc|free|_int_free|_int_malloc|cfree|malloc_consolidate|tcache|swift_slowAlloc|swift_slowDealloc|swift_allocObject|swift_deallocObject|swift_deallocClassInstance|_swift_release_dealloc|swift_deallocPartialClassInstance|pthread_mutex_init|pthread_mutex_destroy)", None),
    ("Swift runtime casts, generic metadata, witness lookups",
     r"^(swift_dynamicCast|tryCast|swift_getGenericMetadata|_swift_getGenericMetadata|__swift_instantiateGenericMetadata|getCache|std::pair<swift::|swift::MetadataCache|swift::AtomicWaitQueue|swift_getAssociatedTypeWitness|swift_conformsToProtocol|swift_once|swift::ConcurrentReadableHashMap|swift::StableAddressConcurrentReadableHashMap|swift_checkMetadataState|type metadata accessor)", None),
    ("hashing and dictionary lookups", r"(Hasher|__RawDictionaryStorage|String\.hash|_stringCompare)", None),
    ("JSON scanning and envelope parsing (JSONScanner, RPCMessageParser, String decoding)",
     r"(JSONScanner|RPCMessageParser|_uncheckedFromUTF8|_fromUTF8Repairing|_allASCII|String\.init)", None),
    ("framing (RPCFrameDecoder, ByteToMessageHandler)", r"(RPCFrameDecoder|ByteToMessageHandler|B2MDBuffer|ByteToMessageDecoder)", None),
    ("reply building (JSONWriter, ByteBuffer writes, memcpy)",
     r"(JSONWriter|ByteBuffer|RPCResultEncoder|dropFirst|__memcpy|__memmove|RandomAccessCollection<>\.distance|setStaticString|writeStaticString)", None),
    ("clock and Duration arithmetic (metrics/logging timers)", r"(ContinuousClock|swift_get_time|Duration|_Int128|clock_gettime)", None),
    ("RPC dispatch and middleware (RPCDispatcher, router, middleware, context, cancellation)",
     r"(RPCDispatcher|RPCRouter|RPCParamsCodec|Middleware|RPCContext|RPCCancellation|RPCReply|RPCOutcome|RPCRequest|RPCID|RPCMessage|RPCNext|Logger|LogHandler|Metrics|Counter|Timer)", None),
    ("connection handler (RPCConnectionHandler)", r"RPCConnectionHandler", None),
    ("NIO channel pipeline, writes and flush", r".", r"agentd"),
    ("other (libc, Swift runtime)", r".", None),
]


def parse(path):
    rows = []
    with open(path, errors="replace") as f:
        seen_header = False
        for line in f:
            if "file:function" in line:
                seen_header = True
                continue
            if not seen_header:
                continue
            m = LINE.match(line.rstrip("\n"))
            if not m:
                continue
            ir = int(m.group(1).replace(",", ""))
            rows.append((ir, float(m.group(2)), m.group(3).strip(), (m.group(4) or "").split("/")[-1]))
    return rows


def total(path):
    with open(path, errors="replace") as f:
        for line in f:
            if "PROGRAM TOTALS" in line:
                return int(line.split()[0].replace(",", ""))
    raise SystemExit(f"no PROGRAM TOTALS in {path}")


def normalise(name):
    name = re.sub(r"'\d+$", "", name)
    name = re.sub(r"^(partial apply for |specialized |@objc |merged )+", "", name)
    # "protocol witness for P.m(...) in conformance T<A>" is T.m(...)
    m = re.match(r"^protocol witness for (?:[\w.]+\.)?(\w+\(.*?\)) in conformance (\w+)", name)
    if m:
        name = f"{m.group(2)}.{m.group(1)}"
    name = re.sub(r"^(partial apply for |specialized |@objc |merged )+", "", name)
    return name


def short(name, width=110):
    name = re.sub(r"\s+", " ", name)
    return name if len(name) <= width else name[: width - 1] + "…"


def main():
    out, requests = sys.argv[1], int(sys.argv[2])
    top = int(sys.argv[3]) if len(sys.argv) > 3 else 25
    inclusive = parse(f"{out}/callgrind-inclusive.txt")
    exclusive = parse(f"{out}/callgrind-exclusive.txt")
    grand = total(f"{out}/callgrind-exclusive.txt")
    # Functions active when the counters were zeroed report (almost) everything as self cost.
    exclusive = [r for r in exclusive if r[0] < 0.99 * grand]

    print(f"{grand:,} instructions for {requests:,} requests: **{grand / requests:,.0f} instructions per request** (agentd, user space)\n")

    print(f"### Top {top} inclusive (below the event-loop scaffolding; one row per function: its thunks, witnesses and specialisations repeat its cost)\n")
    print("| % | instr/req | function | object |\n|---:|---:|---|---|")
    shown = 0
    seen = set()
    for ir, pct, name, obj in inclusive:
        if pct >= 99.0:
            continue
        # One row per function: thunks, witnesses, specialisations and recursion levels of the same
        # function repeat its cost.
        key = normalise(name)
        if key in seen:
            continue
        seen.add(key)
        print(f"| {pct:.1f} | {ir / requests:,.0f} | `{short(name)}` | {obj} |")
        shown += 1
        if shown == top:
            break

    print(f"\n### Top {top} exclusive (self cost)\n")
    print("| % | instr/req | function | object |\n|---:|---:|---|---|")
    for ir, pct, name, obj in exclusive[:top]:
        print(f"| {100 * ir / grand:.1f} | {ir / requests:,.0f} | `{short(name)}` | {obj} |")

    sums = {label: 0 for label, _, _ in BUCKETS}
    for ir, _, name, obj in exclusive:
        for label, pattern, obj_pattern in BUCKETS:
            if re.search(pattern, name) and (obj_pattern is None or re.search(obj_pattern, obj)):
                sums[label] += ir
                break
    print("\n### Exclusive cost by kind of work\n")
    print("| % | instr/req | kind |\n|---:|---:|---|")
    for label, ir in sorted(sums.items(), key=lambda kv: -kv[1]):
        print(f"| {100 * ir / grand:.1f} | {ir / requests:,.0f} | {label} |")


if __name__ == "__main__":
    main()
