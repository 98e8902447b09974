#!/usr/bin/env bash
# Checks the links of README.md and docs/*.md: every relative link must name a file of the repository,
# and every `#anchor` a heading of its target (GitHub's anchors: the heading in lower case, punctuation
# removed, spaces as hyphens, a repeated heading numbered -1, -2, ...). Links to other sites are not
# followed. Prints each broken link as FILE:LINE: ...; exit 0, or 1 when any is broken.
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 - README.md docs/*.md <<'PY'
import os, re, sys

def anchors(path):
    out, seen, fenced = set(), {}, False
    for line in open(path, encoding="utf-8"):
        if line.startswith("```"):
            fenced = not fenced
        m = None if fenced else re.match(r"^(#{1,6})\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        slug = re.sub(r"[^\w\- ]", "", m.group(2).lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out

broken = 0
link = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
for doc in sys.argv[1:]:
    fenced = False
    for no, line in enumerate(open(doc, encoding="utf-8"), 1):
        if line.startswith("```"):
            fenced = not fenced
        if fenced:
            continue
        for target in link.findall(line):
            if re.match(r"^[a-z]+:", target):
                continue
            path, _, frag = target.partition("#")
            full = os.path.normpath(os.path.join(os.path.dirname(doc), path)) if path else doc
            if not os.path.exists(full):
                print(f"{doc}:{no}: {target}: no such file {full}")
                broken += 1
            elif frag and full.endswith(".md") and frag not in anchors(full):
                print(f"{doc}:{no}: {target}: no heading #{frag} in {full}")
                broken += 1
print(f"doc-links: {len(sys.argv) - 1} files checked, {broken} broken links")
sys.exit(1 if broken else 0)
PY
