"""make check runs this suite (Makefile python-check) with FLOWRL_LIB, FLOWRL_SRC and FLOWRL_BIN
set; run by hand: cd python/tests && FLOWRL_LIB=../../build python3 -m pytest -q"""
import os
import subprocess

import pytest

SRC = os.environ.get("FLOWRL_SRC") or os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("FLOWRL_BIN") or os.path.join(SRC, "build", "flowrl")


def need_torch():
    """torch, or a skip; make check sets FLOWRL_REQUIRE_TORCH=1, where a missing torch fails."""
    if os.environ.get("FLOWRL_REQUIRE_TORCH") == "1":
        import torch
        return torch
    return pytest.importorskip("torch")


def need_torchgfn():
    """torchgfn (gfn), or a skip; under make check (FLOWRL_REQUIRE_TORCH=1) a missing torchgfn fails:
    its pinned wheels come from ./configure --install-deps (python/tests/requirements-torchgfn.txt)."""
    if os.environ.get("FLOWRL_REQUIRE_TORCH") == "1":
        import gfn
        return gfn
    return pytest.importorskip("gfn")


def cli_in(d):
    """`flowrl ARGS` run in directory d (asserts exit 0), returning its stdout."""
    def cli(*args):
        r = subprocess.run([BIN, *args], cwd=d, capture_output=True, text=True)
        assert r.returncode == 0, f"flowrl {' '.join(args)}: {r.stderr}"
        return r.stdout
    return cli


def tiny_base(cli):
    """A 5-step gmm2d base.safetensors (H 16, F 32, one block) in cli's directory."""
    cli("pretrain", "--task", "gmm2d", "--out", "base.safetensors", "--hidden", "16", "--ffn", "32",
        "--blocks", "1", "--max-train-steps", "5")


@pytest.fixture(scope="session")
def runs(tmp_path_factory):
    """Tiny Flow-GRPO runs made by the flowrl CLI: a (ref), same (opt, same seed: the same bits)
    and other (another seed)."""
    d = tmp_path_factory.mktemp("runs")
    cli = cli_in(d)
    tiny_base(cli)
    for name, extra in (("a", ["--backend", "ref"]), ("same", ["--backend", "opt", "--threads", "2"]),
                        ("other", ["--seed", "5"])):
        cli("train", "--algo", "flow-grpo", "--base", "base.safetensors", "--out", name, "--epochs", "3",
            "--eval-n", "0", *extra)
    return {"dir": d, "cli": cli, **{k: str(d / k) for k in ("a", "same", "other")}}
