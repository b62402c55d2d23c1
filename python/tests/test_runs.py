"""Run directories and audit logs, against runs the flowrl CLI writes."""
import subprocess

import numpy as np
import pytest
from conftest import BIN

import flowrl_verify as fv


def test_config_metrics_checkpoints(runs):
    cfg = fv.read_config(runs["a"])
    assert cfg["epochs"] == 3 and cfg["algo"] == "flow-grpo"
    m = fv.read_metrics(runs["a"])
    assert [r["epoch"] for r in m] == [1, 2, 3] and "reward_mean" in m[0]
    rec = fv.read_metrics(runs["a"], records=True)
    assert rec.epoch.tolist() == [1, 2, 3] and np.allclose(rec.reward_mean, [r["reward_mean"] for r in m])
    steps = fv.checkpoints(runs["a"])
    assert steps and steps[-1] == 3
    ck = fv.read_checkpoint(runs["a"])
    assert ck.path.endswith("step-3.safetensors") and ck and all(isinstance(v, np.ndarray) for v in ck.values())
    assert ck.meta


def test_audit_log_and_diff(runs, tmp_path):
    log = fv.read_audit(runs["a"])
    assert sorted(log.steps) == [1, 2, 3] and log.env["backend"].startswith("ref") and not log.incomplete_step
    scal = [r for r in log.steps[1].values() if r.kind == "scalar"]
    assert scal and all(isinstance(r.value, float) for r in scal)
    same = fv.audit_diff(runs["a"], runs["same"])  # ref vs opt --threads 2: the same bits
    assert same.identical and same.common_steps == [1, 2, 3], str(same)
    assert any("backend" in n for n in same.notes)
    other = fv.audit_diff(runs["a"], runs["other"])
    assert not other.identical
    # the same first difference as `flowrl audit A B`
    out = subprocess.run([BIN, "audit", runs["a"], runs["other"]], capture_output=True, text=True).stdout
    assert f"differ at step {other.first.step}, tensor '{other.first.name}'" in out, (out, str(other))
    # a flipped value in a copy of the log is found at its record
    text = open(runs["a"] + "/audit.log").read().split("\n")
    k = next(i for i, l in enumerate(text) if l.startswith("step 2 "))
    f = text[k].split(" ")
    f[5] = "%016x" % (int(f[5], 16) ^ 1)
    text[k] = " ".join(f)
    (tmp_path / "audit.log").write_text("\n".join(text))
    d = fv.audit_diff(runs["a"] + "/audit.log", str(tmp_path / "audit.log"))
    assert d.first.step == 2 and d.first.name == f[2] and len(d.differences) == 1


def test_audit_reader_is_strict(tmp_path):
    p = tmp_path / "audit.log"
    p.write_text("flowrl-audit 1\nstep 1 a F32 [2] 0123456789abcdef\nend-step 1 2\n")
    with pytest.raises(ValueError, match="audit.log:3: step 1 holds 1 records"):
        fv.read_audit(str(p))
    p.write_text("flowrl-audit 1\nstep 1 a F32 [2] 0123456789abcdef\n")
    assert fv.read_audit(str(p)).incomplete_step == 1


def test_safetensors_roundtrip(tmp_path):
    t = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "n": np.array([1, -2], np.int64)}
    fv.write_safetensors(tmp_path / "x.safetensors", t, {"k": "v"})
    back, meta = fv.read_safetensors(tmp_path / "x.safetensors")
    assert meta == {"k": "v"} and all(np.array_equal(back[k], t[k]) and back[k].dtype == t[k].dtype for k in t)
    (tmp_path / "bad.safetensors").write_bytes(b"\x01\x00\x00\x00\x00\x00\x00\x00{")
    with pytest.raises(fv.FlowrlError, match="bad.safetensors"):
        fv.read_safetensors(tmp_path / "bad.safetensors")
