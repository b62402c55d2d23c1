#!/usr/bin/env python3
"""Repoint comment references from the out-of-tree spec to the docs in the repository.

Until December 2026 flowrl's comments cited files that lived beside the repository, not in
it: spec/samplers.md, spec/objectives.md, spec/numerics.md, spec/README.md, DESIGN.md and
STYLE.md. Their content now lives in docs/design.md and docs/algorithms/*.md. This script
rewrites every such citation to the docs section that holds the content:

    spec/objectives.md §1.1, §2-§4, §22   ->  docs/algorithms/advantages.md §1.1;
                                              docs/algorithms/flow-grpo.md §2-§4, §11
    DESIGN.md §1 (2)                      ->  docs/design.md §1.2
    STYLE.md "Tests"                      ->  docs/design.md §8.4 "Tests"
    spec §3  (samplers-era shorthand)     ->  docs/algorithms/samplers.md §3

The section maps are below (MAPS). docs/algorithms/samplers.md, numerics.md and the
objective pages keep the numbering of the sections they replace where they can, so most
numbers stay and the bare "§N" citations inside a file that cites one page stay valid.

Usage:  tools/respec.py [--dry-run] [ROOT]
        tools/respec.py --self-test      (the rewrite rules on the forms in use)
Scans *.c *.h *.cu *.py *.sh *.md, Makefile and configure under ROOT (default: the
repository holding this script), except the docs pages that are the new home of the text
(docs/design.md, docs/algorithms/) and this script and its checker. Prints every change as
"path:line: old -> new". Idempotent: a second run changes nothing. Exit status 1 if any
reference to the old files remains that it could not map (each is printed), else 0.
Python 3, standard library only.
"""

import os
import re
import sys

EXTS = (".c", ".h", ".cu", ".py", ".sh", ".md")
NAMES = ("Makefile", "configure")
SKIP_DIRS = {".git", "build", "node_modules", "__pycache__", ".venv-peers"}
# Paths (relative, '/'-separated) never rewritten: the new home of the text, and the tools
# that must name the old forms.
SKIP_PATHS = ("docs/design.md", "docs/algorithms/", "tools/respec.py", "tests/check_doc_refs.py")

D = "docs/design.md"
A = "docs/algorithms/"


def top(sec):
    return int(sec.split(".")[0])


def map_samplers(sec):
    return A + "samplers.md", sec  # same numbering, §0-§16


def map_numerics(sec):
    return A + "numerics.md", sec  # same numbering, §0-§9


def map_objectives(sec):
    t = top(sec)
    if t == 1:
        return A + "advantages.md", sec  # §1.1-§1.6 kept
    if 0 <= t <= 8:
        return A + "flow-grpo.md", sec  # §0, §2-§8: the trajectory-PPO family, numbers kept
    if t == 9:
        return A + "awm.md", None  # the whole page
    if t == 10:
        return A + "forward-process.md", "3" + sec[2:]  # DGPO
    if t == 11:
        return A + "forward-process.md", "4" + sec[2:]  # DiffusionNFT
    if t == 21:
        return A + "flow-grpo.md", "10" + sec[2:]
    if t == 22:
        return A + "flow-grpo.md", "11" + sec[2:]
    return None  # §12-§20 (FPO, ReinFlow, DPPO, preference losses): no docs page yet


def map_design(sec):
    return (D, sec) if 1 <= top(sec) <= 6 else None


MAPS = {
    "samplers": map_samplers,
    "numerics": map_numerics,
    "objectives": map_objectives,
    "DESIGN": map_design,
}

# STYLE.md has no sections: the words after it choose the subsection of design.md §8.
STYLE_HINTS = (
    ("Tests", "8.4"),
    ("Nothing half-written", "8.3"),
    ("backend, threads", "8.5"),
    ("logged at the top", "8.5"),
)

# Bare "§N" citations whose meaning changes because the page they lean on was split: fixed
# by exact text, file by file, before the general rewrite (which then maps the file names).
CONTEXT_FIXES = (
    ("tests/test_objectives.c", '(§2 "Check", §22)', '(§2 "Check", §11)'),
    ("include/flowrl/grpo_elem.h", "/* cps (§4):", "/* cps (samplers.md §4):"),
    ("include/flowrl/grpo_elem.h", "/* dance (§5):", "/* dance (samplers.md §5):"),
    ("include/flowrl/grpo_elem.h", "/* ddim without x̂0 clipping (§6):", "/* ddim without x̂0 clipping (samplers.md §6):"),
    ("include/flowrl/grpo.h", "], §4 quirk 1): dlogp", "], samplers.md §4 quirk 1): dlogp"),
    # README.md's "Where each algorithm lives" table: rows that leaned on the row above
    ("README.md", "| what | spec | code |", "| what | docs | code |"),
    ("README.md", "| §0, §2–§6, §9 |", "| `samplers.md` §0, §2–§6, §9 |"),
    ("README.md", "| §0, §15 |", "| `samplers.md` §0, §15 |"),
    ("README.md", "| §10; `objectives.md` §2 |", "| `samplers.md` §10; `objectives.md` §2 |"),
)

# String literals of these files are copied into the golden files' metadata (a case's
# description): rewriting them would change golden bytes, so they are left alone, and
# their old citations are not reported (they change only when the golden set is
# regenerated on purpose).
PROTECT_STRINGS = re.compile(r"^core/golden[\w]*\.c$")
C_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"')

# A line break inside a comment: newline, indentation, an optional comment leader.
BRK = r"(?:[ \t]*\n[ \t]*(?:\*|#|//)?[ \t]*)"
NUM = r"\d+(?:\.\d+)*"
ITEM = re.compile(
    r"(?P<sig>§ ?)?(?P<a>" + NUM + r")"
    r"(?:(?P<dash>[-–])(?P<sig2>§)?(?P<b>" + NUM + r"))?"
    r"(?P<paren>[ \t]+\((?P<k>\d)\))?"
    r"(?P<suf>[ \t]+(?:(?:item|quirk)[ \t]+\d+|tier[ \t]+T\d|table\b|row[ \t]+\"[^\"\n]*\")|[ \t]+\"[^\"\n]*\")?"
)
FIRST_SEP = re.compile(r"[ \t]+|" + BRK)
NEXT_SEP = re.compile(r",(?:[ \t]+|" + BRK + r")")

# The file token: optional ../shared/ and spec/ prefixes, not part of a longer path.
TOKEN = re.compile(
    r"(?<![\w./-])(?P<q>`?)(?P<path>(?:\.\./shared/)?(?:spec/)?"
    r"(?P<name>samplers|objectives|numerics|gflownets|more|DESIGN|STYLE)\.md"
    r"|(?:\.\./shared/)?spec/README\.md|spec(?= §))(?P=q)"
)
README_QUOTE = re.compile(r"[ \t]+\"(?P<t>[^\"\n]*)\"")

# What must not remain afterwards.
RESIDUAL = re.compile(
    r"(?<![\w./-])(?:(?:\.\./shared/)?spec/\w*|(?:samplers|objectives|numerics|gflownets|more)\.md"
    r"|DESIGN\.md|STYLE\.md|spec §)"
)


def parse_items(text, pos):
    """The items of a section list starting at pos (after a file token): [] if none.
    Each item is a dict with its ITEM match and span."""
    items = []
    m = FIRST_SEP.match(text, pos)
    p = m.end() if m else pos
    while True:
        it = ITEM.match(text, p)
        if not it:
            break
        items.append({"m": it, "start": it.start(), "end": it.end()})
        s = NEXT_SEP.match(text, it.end())
        if not s or not ITEM.match(text, s.end()):
            break
        p = s.end()
    return items, (items[-1]["end"] if items else pos)


def fmt_item(it, mapper):
    """[(page, text), ...] of one item mapped (one entry, or several for a range that
    spans pages), or None."""
    g = it["m"].group
    a = g("a")
    if g("paren"):
        a = a + "." + g("k")
    ra = mapper(a)
    if ra is None:
        return None
    page, sa = ra
    out = "" if sa is None else "§" + sa
    suf = g("suf") or ""
    if g("b"):
        rb = mapper(g("b"))
        if rb is None:
            return None
        if rb[0] != page or sa is None or rb[1] is None:
            return expand_range(a, g("b"), mapper, suf)
        out += g("dash") + "§" + rb[1]
    return [(page, (out + suf) if out else suf.strip())]


def expand_range(a, b, mapper, suf):
    """A range whose ends land on different pages (objectives §9-§11): one item per top-level
    section, or None if a section in it has no page."""
    if "." in a or "." in b or int(b) < int(a):
        return None
    out = []
    for t in range(int(a), int(b) + 1):
        r = mapper(str(t))
        if r is None:
            return None
        out.append((r[0], "" if r[1] is None else "§" + r[1]))
    if suf:
        out[-1] = (out[-1][0], out[-1][1] + suf)
    return out


def rewrite_ref(text, tm):
    """Replacement for the reference whose file token matched at tm: (start, end, new) or
    None when it cannot be mapped."""
    q, path, name = tm.group("q"), tm.group("path"), tm.group("name")
    start, end = tm.start(), tm.end()
    if path.endswith("README.md"):
        rq = README_QUOTE.match(text, end)
        sec_page = (A + "pretraining.md", "1")
        if rq:
            if rq.group("t").startswith("Log-probs"):
                sec_page = (A + "samplers.md", "0")
            end = rq.end()
        return start, end, q + sec_page[0] + q + " §" + sec_page[1]
    if name == "STYLE":
        after = text[end:end + 40].lstrip(' \t:"')
        sec = "8"
        for hint, s in STYLE_HINTS:
            if after.startswith(hint):
                sec = s
                break
        return start, end, q + D + q + " §" + sec
    mapper = MAPS["samplers" if path == "spec" else name] if (path == "spec" or name in MAPS) else None
    if mapper is None:
        return None
    items, lend = parse_items(text, end)
    if not items:
        if path == "spec":
            return None
        page = {"samplers": A + "samplers.md", "numerics": A + "numerics.md", "DESIGN": D,
                "objectives": None}[name]
        if page is None:
            return None  # which objectives page? cannot tell
        return start, end, q + page + q
    per_item = [fmt_item(it, mapper) for it in items]
    if any(x is None for x in per_item):
        return None
    mapped = [pair for lst in per_item for pair in lst]
    pages = []
    for page, _ in mapped:
        if page not in pages:
            pages.append(page)
    if len(pages) == 1 and all(len(lst) == 1 for lst in per_item):
        # in place: keep the separators (and line breaks) of the original list
        out = [q + pages[0] + q]
        p = end
        for it, ((_, s),) in zip(items, per_item):
            gap = text[p:it["start"]]
            if not s:  # a page-only item (objectives §9): drop it and its separator
                p = it["end"]
                continue
            if p == end and not gap.strip(" \t"):
                gap = " " if "\n" not in gap else gap
            out.append(gap + s)
            p = it["end"]
        return start, lend, "".join(out)
    groups = []
    for page in pages:
        secs = [s for pg, s in mapped if pg == page and s]
        groups.append(q + page + q + (" " + ", ".join(secs) if secs else ""))
    span = text[end:lend]
    brk = re.search(BRK, span)
    if brk and "\n" in brk.group(0):
        return start, lend, (";" + brk.group(0)).join(groups)
    return start, lend, "; ".join(groups)


def rewrite(text):
    out, pos, changes = [], 0, []
    for tm in TOKEN.finditer(text):
        if tm.start() < pos:
            continue
        r = rewrite_ref(text, tm)
        if r is None:
            continue
        s, e, new = r
        if text[s:e] == new:
            continue
        out.append(text[pos:s])
        out.append(new)
        changes.append((s, text[s:e], new))
        pos = e
    out.append(text[pos:])
    return "".join(out), changes


def files(root):
    for d, dirs, fs in os.walk(root):
        dirs[:] = sorted(x for x in dirs if x not in SKIP_DIRS)
        for f in sorted(fs):
            if f.endswith(EXTS) or f in NAMES:
                full = os.path.join(d, f)
                rel = os.path.relpath(full, root).replace(os.sep, "/")
                if any(rel == s or (s.endswith("/") and rel.startswith(s)) for s in SKIP_PATHS):
                    continue
                yield full, rel


def line_of(text, i):
    return text.count("\n", 0, i) + 1


SELF_TEST = (
    # (input, expected output) of rewrite(), file forms seen in the tree
    ("/* spec/samplers.md §0, §2-§6, §9 */", "/* docs/algorithms/samplers.md §0, §2-§6, §9 */"),
    ("(DESIGN.md §1 (2)).", "(docs/design.md §1.2)."),
    ("(objectives.md §2 \"Check\", §22)", "(docs/algorithms/flow-grpo.md §2 \"Check\", §11)"),
    ("(spec/objectives.md §1.1,\n * §2, §3, §22; x)",
     "(docs/algorithms/advantages.md §1.1;\n * docs/algorithms/flow-grpo.md §2, §3, §11; x)"),
    ("spec/numerics.md\n * §6, §7.3: y", "docs/algorithms/numerics.md\n * §6, §7.3: y"),
    ("| `objectives.md` §1.1, §1.4 |", "| `docs/algorithms/advantages.md` §1.1, §1.4 |"),
    ("(spec/objectives.md 1.1, 2, 3)", "(docs/algorithms/advantages.md §1.1; docs/algorithms/flow-grpo.md §2, §3)"),
    ("(spec/README.md \"Rectified flow\")", "(docs/algorithms/pretraining.md §1)"),
    ("/* STYLE.md: backend, threads */", "/* docs/design.md §8.5: backend, threads */"),
    ("spec §3 quirk 1, §16.2", "docs/algorithms/samplers.md §3 quirk 1, §16.2"),
    ("(AWM, DGPO: spec/objectives.md §9-§11)", "(AWM, DGPO: docs/algorithms/awm.md; docs/algorithms/forward-process.md §3, §4)"),
    ("docs/algorithms/samplers.md §3 and golden/README.md", "docs/algorithms/samplers.md §3 and golden/README.md"),
)


def self_test():
    bad = 0
    for src, want in SELF_TEST:
        got, _ = rewrite(src)
        again, ch = rewrite(got)
        if got != want or ch:
            print(f"respec self-test FAILED: {src!r}\n  got  {got!r}\n  want {want!r}")
            bad += 1
    for src in ("spec/objectives.md §14", "spec/gflownets.md §3"):  # no page: must remain
        got, _ = rewrite(src)
        if not RESIDUAL.search(got):
            print(f"respec self-test FAILED: {src!r} was mapped to {got!r}")
            bad += 1
    print(f"respec self-test: {'ok' if not bad else 'FAILED'} ({len(SELF_TEST) + 2} cases)")
    return 1 if bad else 0


def main(argv):
    if argv == ["--self-test"]:
        return self_test()
    dry = "--dry-run" in argv
    args = [a for a in argv if a != "--dry-run"]
    if len(args) > 1 or (args and args[0].startswith("-")):
        print("usage: tools/respec.py [--dry-run] [ROOT]", file=sys.stderr)
        return 2
    root = args[0] if args else os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    n_changed, left = 0, []
    for full, rel in files(root):
        try:
            with open(full, encoding="utf-8") as fh:
                text = fh.read()
        except (UnicodeDecodeError, OSError):
            continue
        orig = text
        for path, old, new in CONTEXT_FIXES:
            if rel == path and old in text:
                print(f"{rel}:{line_of(text, text.index(old))}: {old} -> {new}")
                text = text.replace(old, new)
                n_changed += 1
        kept = []
        if PROTECT_STRINGS.match(rel):
            def hide(m):
                kept.append(m.group(0))
                return "\x00%d\x00" % (len(kept) - 1)
            text = C_STRING.sub(hide, text)
        pre = text
        text, changes = rewrite(pre)
        for s, old, new in changes:
            print(f"{rel}:{line_of(pre, s)}: {old.replace(chr(10), ' ')} -> {new.replace(chr(10), ' ')}")
        n_changed += len(changes)
        scan = text  # residual references are looked for outside the protected strings
        if kept:
            text = re.sub("\x00(\\d+)\x00", lambda m: kept[int(m.group(1))], text)
            pre = re.sub("\x00(\\d+)\x00", lambda m: kept[int(m.group(1))], pre)
        if text != orig and not dry:
            tmp = full + ".respec.tmp"
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.chmod(tmp, os.stat(full).st_mode & 0o7777)  # keep the mode (configure is executable)
            os.replace(tmp, full)
        lines = text.splitlines()
        for m in RESIDUAL.finditer(scan):
            ln = line_of(scan, m.start())
            left.append(f"{rel}:{ln}: {lines[ln - 1].strip()}")
    print(f"respec: {n_changed} reference(s) rewritten{' (dry run)' if dry else ''}")
    if left:
        print(f"respec: {len(left)} reference(s) could not be mapped:", file=sys.stderr)
        for x in left:
            print("  " + x, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
