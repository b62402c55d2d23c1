"""The C API's GFlowNet part (capi.h flowrl_env_*, flowrl_gfn_loss; flowrl_verify.Env, gfn_loss):
each gfn.loss_* golden case's inputs give its outputs bit for bit, the environment's sizes and
target are docs/envs.md's, and bad input is one FlowrlError naming it."""
import numpy as np
import pytest

import flowrl_verify as fv


@pytest.mark.parametrize("kind", ["tb", "db", "subtb", "zvar"])
def test_loss_reproduces_golden(kind):
    c = fv.load("gfn.loss_" + kind)
    i = c.inputs
    inputs = dict(len=i["len"], logpf=i["logpf"], logpb=i["logpb"], logr=i["logr"], log_z=i["log_z"],
                  **{"lambda": i["lambda"]})
    if kind in ("db", "subtb"):
        inputs["logf"] = i["logf"]
    out = fv.gfn_loss(kind, **inputs)
    for name, want in c.outputs.items():
        if name == "grad_logf" and "logf" not in inputs:
            assert not want.any()
            continue
        assert np.array_equal(out[name], want), f"gfn.loss_{kind}: out.{name}"


def test_fm_reproduces_golden():
    c = fv.load("gfn.loss_fm")
    i = c.inputs
    out = fv.gfn_loss("fm", n_in=i["n_in"], fin=i["fin_f32"], n_out=i["n_out"], fout=i["fout_f32"],
                      fexit=i["fexit_f32"], logr=i["logr_f32"], alpha=i["alpha"])
    for name, want in c.outputs.items():
        assert np.array_equal(out[name], want), f"gfn.loss_fm: out.{name}"


def test_env_sizes_and_target():
    e = fv.Env("hypergrid", ndim=2, height=8)
    assert e.describe() == "hypergrid D=2 H=8 R0=0.1 R1=0.5 R2=2"
    assert (e.state_dim, e.obs_dim, e.n_actions, e.exit_action, e.max_steps, e.n_states) == (2, 16, 3, 2, 15, 64)
    p, log_z, n_modes, _ = e.target()
    assert abs(log_z - 3.109061) < 5e-7 and n_modes == 4 and abs(p.sum() - 1.0) < 1e-12  # docs/envs.md §1.3
    assert np.array_equal(e.step([[0, 0], [3, 7]], [1, 0]), [[0, 1], [4, 7]])
    assert np.array_equal(e.step([[0, 1]], [1], backward=True), [[0, 0]])


def test_bad_input_is_one_error():
    with pytest.raises(fv.FlowrlError, match="unknown environment 'grid'"):
        fv.Env("grid")
    with pytest.raises(fv.FlowrlError, match="--height"):
        fv.Env("hypergrid", height=1)
    e = fv.Env("hypergrid", ndim=2, height=4)
    with pytest.raises(fv.FlowrlError, match="row 1 is not a state"):
        e.query([[0, 0], [0, 4]])
    with pytest.raises(fv.FlowrlError, match="row 0: forward action 0 is not allowed"):
        e.step([[3, 0]], [0])
    with pytest.raises(fv.FlowrlError, match="the exit is not a step"):
        e.step([[0, 0]], [2])
    with pytest.raises(fv.FlowrlError, match="unknown loss 'xx'"):
        fv.gfn_loss("xx", len=[1], logpf=[[0.0]], logpb=[[0.0]], logr=[0.0])
    with pytest.raises(fv.FlowrlError, match="in.logf is missing|logf"):
        fv.gfn_loss("db", len=[1], logpf=[[-1.0]], logpb=[[0.0]], logr=[0.0])
    with pytest.raises(fv.FlowrlError, match="in.len dim 0 is 2, expected 1"):
        fv.gfn_loss("tb", len=[1, 1], logpf=[[-1.0]], logpb=[[0.0]], logr=[0.0])
