"""bench/bench_dit_lora.py (BENCHMARKS.md's "DiT with LoRA" section): its statistics on fixed input, and that
--from-results writes the committed section byte for byte from bench/results/dit_lora.json. Runs nothing."""
import importlib.util
import os
import re
import subprocess
import sys

import pytest
from conftest import SRC

spec = importlib.util.spec_from_file_location("bench_dit_lora", os.path.join(SRC, "bench", "bench_dit_lora.py"))
bdl = importlib.util.module_from_spec(spec)
sys.path.insert(0, os.path.join(SRC, "bench"))
spec.loader.exec_module(bdl)
STORE = os.path.join(SRC, "bench", "results", "dit_lora.json")


def test_gain_and_interval():
    # AWM at n 32 (docs/lora.md §7.8): 796, 818, 845 of 1,664 against the base's 686
    g = [bdl.gain_points(c, 1664, 686, 1664) for c in (796, 818, 845)]
    assert g[0] == pytest.approx(100 * 110 / 1664)
    m, h, v = bdl.verdict(g)
    assert (round(m, 4), round(h, 4), v) == (8.0329, 3.6642, "met")  # t(0.975, 2) = 4.303
    # Flow-GRPO's EMA adapters, seeds 1-5 (t 2.776): +1.19 ± 2.73, missed
    m, h, v = bdl.verdict([bdl.gain_points(c, 1664, 686, 1664) for c in (750, 678, 714, 727, 660)])
    assert (f"{m:+.2f} ± {h:.2f}", v) == ("+1.19 ± 2.73", "missed")


@pytest.mark.parametrize("gains, want", [
    ([5.0, 5.0, 5.0], "met"),          # the bar is >= 5 points; a zero-width interval excludes zero
    ([4.0, 4.1, 4.2], "missed"),       # the interval excludes zero but the mean is under 5
    ([6.0, 6.1, 30.0], "missed"),      # the mean is over 5 but the interval includes zero
    ([7.0], "one seed"),               # no interval from one seed
])
def test_verdict(gains, want):
    assert bdl.verdict(gains)[2] == want


def test_store_matches_the_document():
    """Every accuracy mean ± interval docs/lora.md states for a stored row is what the stored counts give."""
    store = bdl.load_store(STORE)
    n = 0
    for d in store["doc_summaries"]:
        rs = bdl.readings(store, d["row"], d["adapter"], d["n"])
        digits = len(d["gain"].split("±")[0].split(".")[1].strip())
        m, h, _ = bdl.verdict([g for _, g, _, _ in rs])
        assert bdl.fmt_mean(m, h, digits) == d["gain"].replace("−", "-"), d
        n += 1
    assert n >= 9


def test_from_results_reproduces_the_section(tmp_path):
    bench = open(os.path.join(SRC, "BENCHMARKS.md")).read()
    pat = r"^<!-- bench_dit_lora begin.*?^<!-- bench_dit_lora end -->\n"
    assert re.search(pat, bench, flags=re.S | re.M), "BENCHMARKS.md has no bench_dit_lora section"
    out = tmp_path / "BENCHMARKS.md"
    out.write_text(re.sub(pat, "<!-- bench_dit_lora begin -->\n<!-- bench_dit_lora end -->\n", bench,
                          flags=re.S | re.M))
    r = subprocess.run([sys.executable, os.path.join(SRC, "bench", "bench_dit_lora.py"), "--from-results",
                        "--results", STORE, "--out", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert out.read_text() == bench
