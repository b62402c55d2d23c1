#!/usr/bin/env python3
"""The mirror shortcut on shapes: does an RL run's gain on the training prompts carry over to the held-out
position prompts, or does the policy learn "colour pair -> layout" and lose them?

Every held-out position prompt "a A object REL a B object" has its mirror image among the training
prompts: "a B object REL a A object" and "a A object OPPOSITE-REL a B object" draw the same two colours on
the same axis, swapped (data/shapes_prompts.c: a phrase and its mirror fall on the same side of the split,
and the two layouts of one colour pair on one axis on opposite sides). A policy that reads the relation
improves both; one that learns the pair's layout improves the mirror and loses the held-out prompt.

Usage: tools/shortcut.py BASE_EVAL.json BASE_TRAIN.json FINAL_EVAL.json FINAL_TRAIN.json [--summary]
(each `flowrl eval --json` output: --split eval / train of the base and of the final policy). Prints one
line per held-out position prompt and a summary line (--summary: only that line). Used by tools/demo.sh
and bench/bench_heldout.py."""
import json
import math
import sys

T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
        2.131, 2.120, 2.110, 2.101, 2.093, 2.086]  # t(0.975, dof 1..20); 1.96 beyond
OPPOSITE = {"left of": "right of", "right of": "left of", "above": "below", "below": "above"}


def mirrors(text):
    """The training prompts that draw a held-out position prompt's two colours on the same axis, swapped
    (None for a prompt that is not of the position kind)."""
    for rel in OPPOSITE:
        if f" object {rel} a " in text:
            a, b = text[2:].split(f" object {rel} a ")
            b = b[: -len(" object")]
            return [f"a {b} object {rel} a {a} object", f"a {a} object {OPPOSITE[rel]} a {b} object"]
    return None


def per_prompt(j):
    """text -> accuracy of a flowrl eval --json output."""
    return {p["text"]: p["accuracy"] for p in j["prompts"]}


def shortcut(base_eval, base_train, final_eval, final_train):
    """Rows (text, before, after, mirrors' mean before, after) and (n, r, lost while the mirrors gained):
    r = correlation between a held-out prompt's change and its mirrors' mean change. Arguments: text ->
    accuracy dicts."""
    rows = []
    for text, after in final_eval.items():
        m = mirrors(text)
        if m:
            rows.append((text, base_eval[text], after, sum(base_train[t] for t in m) / len(m),
                         sum(final_train[t] for t in m) / len(m)))
    xs = [r[2] - r[1] for r in rows]
    ys = [r[4] - r[3] for r in rows]
    n = len(rows)
    if n == 0:
        return rows, (0, float("nan"), 0)
    mx, my = sum(xs) / n, sum(ys) / n
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    sxx, syy = sum((x - mx) ** 2 for x in xs), sum((y - my) ** 2 for y in ys)
    r = sxy / math.sqrt(sxx * syy) if sxx > 0 and syy > 0 else float("nan")
    return rows, (n, r, sum(1 for x, y in zip(xs, ys) if x < 0 < y))


def r_critical(n):
    """|r| at which a correlation of n pairs is significant at 5% (two-sided, t test with n - 2 dof)."""
    t = T975[n - 3] if 3 <= n < len(T975) + 3 else 1.96
    return t / math.sqrt(n - 2 + t * t) if n > 2 else float("nan")


def summary_line(stats):
    n, r, lost = stats
    rc = r_critical(n)
    sig = "significant" if abs(r) >= rc else "not significant"
    return (f"mirror shortcut: {lost} of {n} held-out position prompts lost accuracy while their mirror-image "
            f"training prompts gained; correlation of the two changes r = {r:+.2f} ({sig} at 5%: |r| >= {rc:.2f} "
            f"for {n} prompts)")


def main(argv):
    args = [a for a in argv if a != "--summary"]
    if len(args) != 4:
        raise SystemExit(__doc__.split("\n\n")[2])
    js = []
    for p in args:
        try:
            with open(p) as f:
                js.append(per_prompt(json.load(f)))
        except (OSError, ValueError, KeyError) as e:
            raise SystemExit(f"shortcut: {p}: not a flowrl eval --json output ({e})")
    rows, stats = shortcut(*js)
    if "--summary" not in argv:
        print(f"{'held-out position prompt':42s} {'before':>6s} {'after':>6s}   mirrors before -> after")
        for t, b, a, mb, ma in rows:
            print(f"{t:42s} {100 * b:5.1f}% {100 * a:5.1f}%   {100 * mb:5.1f}% -> {100 * ma:5.1f}%")
    print(summary_line(stats))


if __name__ == "__main__":
    main(sys.argv[1:])
