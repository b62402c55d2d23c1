"""Preference files (docs/preferences.md) written by `flowrl prefs make`, read with NumPy alone
(flowrl_verify.read_prefs) and by flowrl's reader (read_safetensors): the same arrays."""

import numpy as np
import pytest

import flowrl_verify as fv
from conftest import cli_in, tiny_base


@pytest.fixture(scope="module")
def prefs_file(tmp_path_factory):
    d = tmp_path_factory.mktemp("prefs")
    cli = cli_in(d)
    tiny_base(cli)
    cli("prefs", "make", "--ckpt", "base.safetensors", "--pairs", "16", "--num-steps", "4", "--seed", "3",
        "--out", "p.safetensors", "--progress", "off")
    return d / "p.safetensors"


def test_numpy_reads_prefs(prefs_file):
    a, meta = fv.read_prefs(prefs_file)
    assert a["x_w"].shape == (16, 2) and a["x_w"].dtype == np.float32
    assert a["x_l"].shape == a["x_T"].shape == (16, 2)
    assert a["prompt"].dtype == np.int32 and ((a["prompt"] >= 0) & (a["prompt"] < 8)).all()
    assert (a["r_w"] > a["r_l"]).all() and np.isfinite(a["x_w"]).all()
    assert meta["task"] == "gmm2d" and meta["D"] == "2" and meta["reward"] == "mode"
    assert meta["sampler"] == "sde" and meta["noise"] == "0.7" and meta["steps"] == "4" and meta["seed"] == "3"
    assert meta["tie_rule"] == "drop" and len(meta["ckpt_digest"]) == 16
    # flowrl's own reader (digests checked) sees the same arrays
    t, m = fv.read_safetensors(prefs_file)
    for k, v in a.items():
        assert np.array_equal(t[k], v), k
    assert m["format"] == "flowrl.prefs"


def test_numpy_reader_rejects(prefs_file, tmp_path):
    b = prefs_file.read_bytes()
    (tmp_path / "short.safetensors").write_bytes(b[:40])
    with pytest.raises(ValueError, match="truncated"):
        fv.read_prefs(tmp_path / "short.safetensors")
