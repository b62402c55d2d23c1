#!/usr/bin/env python3
"""Fail if a comment or page cites a docs file or section that does not exist.

Checks, in every *.c *.h *.cu *.py *.sh *.md file, Makefile and configure of the repository:
  - `docs/PATH.md` citations (repository-relative): the file must exist; each section that
    follows (`§3`, `§1.2`, `§2-§4`, `§0, §2-§6, §9`, continued over comment line breaks)
    must be a numbered heading of that page ("## 3. ...", "### 1.2 ...") or, for §N.k
    where §N has no numbered subsections, item k of a numbered list in §N; a quoted
    name that follows (`docs/determinism.md "Canonical orders"`) must occur in the page
    (case aside);
  - markdown links `[text](path.md)` in .md files: the target must exist (relative to the
    linking file), and any `§N` in the link text must exist in the target.

Usage: tests/check_doc_refs.py [ROOT]      exit 0: all good; 1: bad citations (listed)
       tests/check_doc_refs.py --self-test  checks that bad citations are caught
Python 3, standard library only.
"""

import os
import re
import sys
import tempfile

EXTS = (".c", ".h", ".cu", ".py", ".sh", ".md")
NAMES = ("Makefile", "configure")
SKIP_DIRS = {".git", "build", "node_modules", "__pycache__", ".venv-peers"}

NUM = r"\d+(?:\.\d+)*"
BRK = r"(?:[ \t]*\n[ \t]*(?:\*|#|//)?[ \t]*)"
ITEM = re.compile(r"§ ?(?P<a>" + NUM + r")(?:[-–]§?(?P<b>" + NUM + r"))?"
                  r"(?:[ \t]+(?:(?:item|quirk)[ \t]+\d+|tier[ \t]+T\d|table\b|row[ \t]+\"[^\"\n]*\")"
                  r"|[ \t]+\"[^\"\n]*\")?")
FIRST_SEP = re.compile(r"[ \t]+|" + BRK)
NEXT_SEP = re.compile(r",(?:[ \t]+|" + BRK + r")")
DOC_PATH = re.compile(r"(?<![\w./-])(?P<q>`?)(?P<path>docs/[\w./-]*?\.md)(?P=q)")
# a quoted name after the path: `docs/x.md "Name"`, `docs/x.md ("Name`, `docs/x.md §"Name"`
QUOTED = re.compile(r"(?:[ \t]+\(?|\()§?\"(?P<t>[^\"\n]+)")
LINK = re.compile(r"\[(?P<text>[^\]\n]*)\]\((?P<path>[^)\s#]+\.md)(?:#[^)\s]*)?\)")
HEADING = re.compile(r"^(#{1,6})[ \t]+(?:§[ \t]*)?(?P<n>\d+(?:\.\d+)*)(?:\.|[ \t])", re.M)
ANY_HEADING = re.compile(r"^#{1,6}[ \t]", re.M)
LIST_ITEM = re.compile(r"^[ \t]*(\d+)\.[ \t]", re.M)


def page_sections(text):
    """The section numbers a page defines: its numbered headings, plus N.k for item k of a
    numbered list directly under heading N when N has no numbered subsections."""
    heads = [(m.group("n"), m.end()) for m in HEADING.finditer(text)]
    secs = {n for n, _ in heads}
    for n, end in heads:
        if any(s.startswith(n + ".") for s in secs):
            continue
        nxt = ANY_HEADING.search(text, end)
        body = text[end:nxt.start() if nxt else len(text)]
        secs.update(n + "." + k for k in LIST_ITEM.findall(body))
    return secs


class Pages:
    def __init__(self, root):
        self.root, self.cache = root, {}

    def get(self, path):
        """(text, sections) of a page by absolute path, or None if it does not exist."""
        if path not in self.cache:
            try:
                with open(path, encoding="utf-8") as fh:
                    t = fh.read()
                self.cache[path] = (t, page_sections(t))
            except OSError:
                self.cache[path] = None
        return self.cache[path]


def items_after(text, pos):
    """The §-items right after pos: list of (a, b)."""
    out = []
    m = FIRST_SEP.match(text, pos)
    p = m.end() if m else pos
    while True:
        it = ITEM.match(text, p)
        if not it:
            break
        out.append((it.group("a"), it.group("b")))
        s = NEXT_SEP.match(text, it.end())
        if not s or not ITEM.match(text, s.end()):
            break
        p = s.end()
    return out


def check_target(pages, target, shown, secs, quote, where, bad):
    page = pages.get(target)
    if page is None:
        bad.append(f"{where}: cites {shown}, which does not exist")
        return
    text, have = page
    for a, b in secs:
        for s in (a, b):
            if s and s not in have:
                bad.append(f"{where}: cites {shown} §{s}, which has no section §{s}")
    if quote:
        q = " ".join(quote.split())
        if q and q.lower() not in " ".join(text.split()).lower():
            bad.append(f"{where}: cites {shown} \"{quote}\", which does not occur in it")


def files(root):
    for d, dirs, fs in os.walk(root):
        dirs[:] = sorted(x for x in dirs if x not in SKIP_DIRS)
        for f in sorted(fs):
            if f.endswith(EXTS) or f in NAMES:
                yield os.path.join(d, f)


def line_of(text, i):
    return text.count("\n", 0, i) + 1


def check(root):
    """Returns (number of citations checked, list of problems)."""
    pages, bad, n = Pages(root), [], 0
    for full in files(root):
        rel = os.path.relpath(full, root).replace(os.sep, "/")
        if rel == "tests/check_doc_refs.py":
            continue  # its own examples
        try:
            with open(full, encoding="utf-8") as fh:
                text = fh.read()
        except (UnicodeDecodeError, OSError):
            continue
        for m in DOC_PATH.finditer(text):
            if rel.endswith(".md") and text[max(0, m.start() - 2):m.start()].endswith("]("):
                continue  # the target of a markdown link: checked below, relative to rel
            n += 1
            secs = items_after(text, m.end())
            # a path that is itself in quotes ("docs/x.md") has no quoted name after it
            inq = m.start() > 0 and text[m.start() - 1] == '"'
            qm = None if secs or inq else QUOTED.match(text, m.end())
            check_target(pages, os.path.join(root, m.group("path")), m.group("path"), secs,
                         qm.group("t").strip() if qm else None,
                         f"{rel}:{line_of(text, m.start())}", bad)
        if not rel.endswith(".md"):
            continue
        for m in LINK.finditer(text):
            tgt = m.group("path")
            if re.match(r"[a-z]+://", tgt):
                continue
            n += 1
            secs = [(it.group("a"), it.group("b")) for it in ITEM.finditer(m.group("text"))]
            check_target(pages, os.path.normpath(os.path.join(os.path.dirname(full), tgt)), tgt,
                         secs, None, f"{rel}:{line_of(text, m.start())}", bad)
    return n, bad


def self_test():
    """A tree with one good and five bad citations: all five must be reported."""
    with tempfile.TemporaryDirectory() as root:
        os.makedirs(os.path.join(root, "docs", "algorithms"))
        os.makedirs(os.path.join(root, "core"))
        with open(os.path.join(root, "docs", "algorithms", "a.md"), "w", encoding="utf-8") as fh:
            fh.write("# A\n\n## 1. One\n\n### 1.1 Sub\n\n## 2. Two\n\n1. first\n2. second\n\nWords here.\n")
        with open(os.path.join(root, "docs", "b.md"), "w", encoding="utf-8") as fh:
            fh.write("# B\n\n[ok](algorithms/a.md) [a.md §1.1](algorithms/a.md) "
                     "[gone](algorithms/none.md) [a.md §3](algorithms/a.md)\n")
        with open(os.path.join(root, "core", "x.c"), "w", encoding="utf-8") as fh:
            fh.write("/* docs/algorithms/a.md §1, §1.1, §2.2; docs/algorithms/a.md §2-§4,\n"
                     " * §9 docs/algorithms/a.md \"Words here\" docs/algorithms/a.md \"No such\" */\n")
        n, bad = check(root)
    want = ["none.md", "§3", "§4", "§9", "No such"]
    missing = [w for w in want if not any(w in b for b in bad)]
    if len(bad) != len(want) or missing:
        print(f"check_doc_refs self-test FAILED: {n} checked, problems {bad}, expected {want}")
        return 1
    print(f"check_doc_refs self-test: ok ({n} citations, the {len(want)} bad ones caught)")
    return 0


def main(argv):
    if argv == ["--self-test"]:
        return self_test()
    if len(argv) > 1 or (argv and argv[0].startswith("-")):
        print("usage: tests/check_doc_refs.py [ROOT] | --self-test", file=sys.stderr)
        return 2
    root = argv[0] if argv else os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    n, bad = check(root)
    for b in bad:
        print(b)
    print(f"check_doc_refs: {n} citations checked, {len(bad)} bad")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
