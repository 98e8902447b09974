#!/usr/bin/env python3
"""Writes the event decoder's key tables: Sources/TokenmeterCore/Decode/EventKeyTables.swift.

The decoder classifies every JSON key it reads (an event's fields, a usage block's, a detail object's)
with a switch on the key's length, then byte comparisons against the few keys of that length: no hashing,
no allocation. Before that, it tries to recognise the key where it stands, without first scanning for its
closing quote: a tree of switches on single bytes (at the offsets that best split the remaining keys)
ends in at most three candidates, each compared whole and required to be followed by `":`. Written by
hand, such switches drift (a key under the wrong length or byte is silently never matched), so they are
generated from the lists below.

Usage (from the repository root):

    python3 scripts/generate-key-tables.py > Sources/TokenmeterCore/Decode/EventKeyTables.swift

A test (EventKeyTablesTests) runs this script and fails when the checked-in file differs from its output.

Each table: the Swift enum, the classifying function, a one-line doc, and the (case, JSON key) pairs in enum
order. Within one length the comparisons follow that order, so put the keys most messages carry first.
Cases are compared as raw values only while a message is decoded (never stored), so reordering is safe.
"""

import sys

TABLES = [
    ("EventKey", "classifyEventKey", "A key of the event object (or of its `attributes`, or of a CloudEvent's `data`).", [
        ("id", "id"),
        ("ts", "ts"),
        ("type", "type"),
        ("time", "time"),
        ("tags", "tags"),
        ("data", "data"),
        ("model", "model"),
        ("usage", "usage"),
        ("owner", "owner"),
        ("count", "count"),
        ("status", "status"),
        ("outcome", "outcome"),
        ("subject", "subject"),
        ("workflow", "workflow"),
        ("provider", "provider"),
        ("costUSD", "cost_usd"),
        ("timestamp", "timestamp"),
        ("valueUSD", "value_usd"),
        ("attributes", "attributes"),
        ("specversion", "specversion"),
        ("serviceTier", "service_tier"),
        ("inputTokens", "input_tokens"),
        ("outputTokens", "output_tokens"),
        ("reasoningTokens", "reasoning_tokens"),
        ("cacheReadTokens", "cache_read_tokens"),
        ("cacheWriteTokens", "cache_write_tokens"),
        ("otelInput", "gen_ai.usage.input_tokens"),
        ("otelOutput", "gen_ai.usage.output_tokens"),
        ("otelCacheRead", "gen_ai.usage.cache_read.input_tokens"),
        ("otelCacheWrite", "gen_ai.usage.cache_creation.input_tokens"),
        ("otelReasoning", "gen_ai.usage.reasoning.output_tokens"),
        ("otelCacheReadAlt", "gen_ai.usage.cache_read_input_tokens"),
        ("otelCacheWriteAlt", "gen_ai.usage.cache_creation_input_tokens"),
        ("otelReasoningAlt", "gen_ai.usage.reasoning_tokens"),
        ("otelRequestModel", "gen_ai.request.model"),
        ("otelResponseModel", "gen_ai.response.model"),
        ("otelProviderName", "gen_ai.provider.name"),
        ("otelSystem", "gen_ai.system"),
        ("otelWorkflow", "gen_ai.workflow.name"),
        ("otelPromptTokens", "gen_ai.usage.prompt_tokens"),
        ("otelCompletionTokens", "gen_ai.usage.completion_tokens"),
    ]),
    ("UsageKey", "classifyUsageKey", "A key of a provider usage block (or of one of its `iterations`).", [
        ("promptTokens", "prompt_tokens"),
        ("completionTokens", "completion_tokens"),
        ("totalTokens", "total_tokens"),
        ("promptTokensDetails", "prompt_tokens_details"),
        ("completionTokensDetails", "completion_tokens_details"),
        ("inputTokens", "input_tokens"),
        ("outputTokens", "output_tokens"),
        ("cacheCreationInputTokens", "cache_creation_input_tokens"),
        ("cacheReadInputTokens", "cache_read_input_tokens"),
        ("cacheCreation", "cache_creation"),
        ("outputTokensDetails", "output_tokens_details"),
        ("inputTokensDetails", "input_tokens_details"),
        ("promptTokenCount", "promptTokenCount"),
        ("toolUsePromptTokenCount", "toolUsePromptTokenCount"),
        ("cachedContentTokenCount", "cachedContentTokenCount"),
        ("candidatesTokenCount", "candidatesTokenCount"),
        ("thoughtsTokenCount", "thoughtsTokenCount"),
        ("serviceTier", "service_tier"),
        ("serviceTierCamel", "serviceTier"),
        ("iterations", "iterations"),
        ("model", "model"),
        ("converseInput", "inputTokens"),
        ("converseOutput", "outputTokens"),
        ("converseCacheRead", "cacheReadInputTokens"),
        ("converseCacheWrite", "cacheWriteInputTokens"),
        ("billedUnits", "billed_units"),
        ("totalInputTokens", "total_input_tokens"),
        ("totalOutputTokens", "total_output_tokens"),
        ("totalCachedTokens", "total_cached_tokens"),
        ("totalToolUseTokens", "total_tool_use_tokens"),
        ("totalThoughtTokens", "total_thought_tokens"),
    ]),
    ("DetailKey", "classifyDetailKey", "A key of a detail object inside a usage block (`*_tokens_details`, "
     "`cache_creation`, `billed_units`).", [
        ("cachedTokens", "cached_tokens"),
        ("cacheWriteTokens", "cache_write_tokens"),
        ("reasoningTokens", "reasoning_tokens"),
        ("thinkingTokens", "thinking_tokens"),
        ("ephemeral1h", "ephemeral_1h_input_tokens"),
        ("ephemeral5m", "ephemeral_5m_input_tokens"),
        ("inputTokens", "input_tokens"),
        ("outputTokens", "output_tokens"),
    ]),
]

WIDTH = 120


def check(table):
    name, _, _, pairs = table
    cases = [c for c, _ in pairs]
    keys = [k for _, k in pairs]
    for what, values in (("case", cases), ("key", keys)):
        seen = set()
        for v in values:
            if v in seen:
                sys.exit(f"{name}: {what} {v!r} is listed twice")
            seen.add(v)
    for k in keys:
        if not k or not k.isascii() or '"' in k or "\\" in k:
            sys.exit(f"{name}: key {k!r} must be printable ASCII without quotes or backslashes")
    if "unknown" in cases:
        sys.exit(f"{name}: `unknown` is the case of every key not listed; it cannot be listed")


def enum_lines(name, doc, cases):
    lines = [f"/// {doc}", f"enum {name}: UInt8, CaseIterable {{"]
    line = "    case"
    words = ["unknown"] + cases
    for i, word in enumerate(words):
        piece = " " + word + ("," if i < len(words) - 1 else "")
        if len(line) + len(piece) > WIDTH:
            lines.append(line)
            line = "        " + piece
        else:
            line += piece
    lines.append(line)
    lines.append("}")
    return lines


def function_lines(name, function, pairs):
    lines = [
        "    @inline(__always)",
        f"    static func {function}(_ k: UnsafeRawBufferPointer) -> {name} {{",
        "        switch k.count {",
    ]
    for length in sorted({len(k.encode()) for _, k in pairs}):
        lines.append(f"        case {length}:")
        for case, key in pairs:
            if len(key.encode()) == length:
                lines.append(f"            if keyEquals(k, \"{key}\") {{ return .{case} }}")
    lines += [
        "        default: break",
        "        }",
        "        return .unknown",
        "    }",
    ]
    return lines


def match_name(function):
    return "match" + function[len("classify"):]


def swift_byte(b):
    return f'UInt8(ascii: "{chr(b)}")'


def tree_lines(cands, indent, used):
    """Tests for `cands` ((case, key bytes) pairs) at this depth: a switch on the byte that best splits them,
    or, for three or fewer (or keys no byte splits), each compared whole."""
    pad = " " * indent
    shortest = min(len(k) for _, k in cands)
    best = None
    if len(cands) > 3:
        for o in range(shortest):
            if o in used:
                continue
            groups = {}
            for c in cands:
                groups.setdefault(c[1][o], []).append(c)
            if len(groups) == 1:
                continue
            score = (max(len(g) for g in groups.values()), -len(groups), o)
            if best is None or score < best[0]:
                best = (score, o, groups)
    if best is None:
        return [f'{pad}if knownKey(p, avail, "{k.decode()}") {{ return (.{c}, {len(k)}) }}' for c, k in cands]
    _, o, groups = best
    lines = []
    # Every key under this switch is longer than `o` and needs `":` after it, so a shorter rest cannot match.
    if o >= 4:
        lines.append(f"{pad}guard avail > {o} else {{ return nil }}")
    lines.append(f"{pad}switch p[{o}] {{")
    for b in sorted(groups):
        lines.append(f"{pad}case {swift_byte(b)}:")
        lines += tree_lines(groups[b], indent + 4, used | {o})
    lines += [f"{pad}default: break", f"{pad}}}"]
    return lines


def match_lines(name, function, pairs):
    cands = [(c, k.encode()) for c, k in pairs]
    lines = [
        "    @inline(__always)",
        f"    static func {match_name(function)}(_ p: UnsafePointer<UInt8>, _ avail: Int) -> ({name}, Int)? {{",
        "        // The shortest key and its `\":` take 4 bytes.",
        "        guard avail >= 4 else { return nil }",
    ]
    lines += tree_lines(cands, 8, frozenset())
    lines += ["        return nil", "    }"]
    return lines


def render():
    out = [
        "// Generated by scripts/generate-key-tables.py: do not edit. Change the key lists there, then run",
        "//     python3 scripts/generate-key-tables.py > Sources/TokenmeterCore/Decode/EventKeyTables.swift",
        "// (EventKeyTablesTests fails when this file is not the script's output.)",
        "",
    ]
    for table in TABLES:
        check(table)
    for name, _, doc, pairs in TABLES:
        out += enum_lines(name, doc, [c for c, _ in pairs])
        out.append("")
    out.append("/// Key classification: a switch on the key's length, then byte comparisons (`keyEquals`); and")
    out.append("/// recognition in place (`match...`: the key and its length, when the bytes at `p` are a known key")
    out.append("/// followed by `\":`; `avail` bytes can be read from `p`).")
    out.append("extension EventDecoder {")
    for i, (name, function, _, pairs) in enumerate(TABLES):
        if i > 0:
            out.append("")
        out += function_lines(name, function, pairs)
        out.append("")
        out += match_lines(name, function, pairs)
    out.append("}")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
