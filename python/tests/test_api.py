"""flowrl's functions through the C API reproduce the committed golden outputs bit for bit,
on ref and on the other backends; bad input raises FlowrlError with flowrl's message."""
import os
import subprocess
import sys

import numpy as np
import pytest

import flowrl_verify as fv
from conftest import need_torch


def step_of(case, kind=None):
    f = {k: case.inputs[k] for k in ("sigma", "sigma_next", "sigma1", "noise", "alpha_bar", "alpha_bar_prev",
                                     "x0_clip", "sigma_prev") if k in case.inputs}
    if "order" in case.params:
        f["order"] = case.params["order"]
    return fv.Step(kind or case.params["sampler"], **f)


def same_bits(got, want):
    got, want = np.asarray(got, np.float32), np.asarray(want, np.float32)
    return got.shape == want.shape and np.array_equal(got.view(np.uint32), want.view(np.uint32))


def test_library_reports_where_it_came_from():
    how, path, version = fv.library()
    assert os.path.basename(path).startswith("libflowrl.so") and version
    assert how == "$FLOWRL_LIB" if os.environ.get("FLOWRL_LIB") else how in ("build tree", "installed prefix")


def test_library_not_found_says_why(tmp_path):
    (tmp_path / "libflowrl.so.1").write_bytes(b"not a library")
    env = dict(os.environ, FLOWRL_LIB=str(tmp_path), FLOWRL_BUILD="no-such-build")
    r = subprocess.run([sys.executable, "-c", "import flowrl_verify as fv; fv.cases()"], env=env,
                       capture_output=True, text=True)
    assert r.returncode != 0 and "LibraryNotFound" in r.stderr, r.stderr
    assert f"$FLOWRL_LIB: {tmp_path}/libflowrl.so.1: " in r.stderr and "no-such-build" in r.stderr, r.stderr


@pytest.mark.parametrize("name", ["sampler.ode", "sampler.sde", "sampler.sde_sigma1", "sampler.cps",
                                  "sampler.dance", "sampler.ddim", "sampler.dpm"])
@pytest.mark.parametrize("backend", [None, "opt", "cuda-emu"])
def test_sampler_steps_bitwise(name, backend):
    c = fv.load(name)
    be = fv.Backend(backend, threads=2) if backend else None
    out = fv.sampler_step(step_of(c), c.inputs["x"], c.inputs["model_out"], xi=c.inputs.get("xi"),
                          x0_prev=c.inputs.get("x0_prev"), backend=be)
    assert set(out) == set(c.outputs)
    for k in out:
        assert same_bits(out[k], c.outputs[k]), k
    if "logp" in out:  # the log-prob entry points agree with the step's
        lp = fv.sampler_logprob(step_of(c), c.inputs["x"], c.inputs["model_out"], out["x_next"], backend=be)
        assert same_bits(lp["logp"], out["logp"]) and same_bits(lp["mean"], out["mean"])
        assert same_bits(fv.sampler_logprob_of(step_of(c), out["x_next"], out["mean"]), out["logp"])
        assert same_bits(fv.sampler_mean(step_of(c), c.inputs["x"], c.inputs["model_out"]), out["mean"])
        assert same_bits(step_of(c).std()[1], c.outputs["std_dev"])


@pytest.mark.parametrize("name", ["obj.flow_grpo", "obj.flow_grpo_kl", "obj.cps_ratio"])
def test_ppo_objective_chain_bitwise(name):
    c = fv.load(name)
    i, o, s = c.inputs, c.outputs, step_of(c)
    lp = fv.sampler_logprob(s, i["x"], i["v"], i["x_next"])
    assert same_bits(lp["logp"], o["logp_new"]) and same_bits(lp["mean"], o["mean"])
    p = fv.ppo_policy(lp["logp"], i["logp_old"], i["adv"], clip_range=i["clip_range"],
                      adv_clip_max=i["adv_clip_max"], gout=i["gout"])
    for k in ("grad_logp_new", "ratio", "approx_kl", "clipfrac", "ratio_min", "ratio_max", "ratio_mean"):
        assert same_bits(p[k], o[k]), k
    assert same_bits(p["loss"], o["loss_policy"])
    g = fv.logp_backward(s, i["x_next"], lp["mean"], p["grad_logp_new"])
    if "beta" in i:
        ks = s.kl_std("code")
        assert same_bits(ks, o["kl_sigma"])
        kl = fv.kl_loss(lp["mean"], i["mean_ref"], ks, gout=i["gout"] * i["beta"])
        assert same_bits(kl["loss"], o["loss_kl"])
        g = g + kl["grad_mean"]  # fr_kl_loss accumulates in float32: the same sum
    assert same_bits(g, o["grad_mean"])
    assert same_bits(s.dmean_dv(), o["dmean_dv"])


@pytest.mark.parametrize("name", ["obj.guard_batch", "obj.guard_sample"])
def test_guard_bitwise(name):
    c = fv.load(name)
    i, o = c.inputs, c.outputs
    lp = fv.sampler_logprob(step_of(c), i["x"], i["v"], i["x_next"])
    r = fv.guard_policy(step_of(c), i["x_next"], lp["mean"], i["mean_old"], lp["logp"], i["logp_old"], i["adv"],
                        bias=c.params["guard_bias"], clip_range=i["clip_range"], adv_clip_max=i["adv_clip_max"],
                        gout=i["gout"])
    for k in ("grad_mean", "ratio", "bias", "clipfrac"):
        assert same_bits(r[k], o[k]), k
    assert same_bits(r["loss"], o["loss_policy"])


def test_advantages_bitwise():
    c = fv.load("adv.per_prompt_group_std")
    assert same_bits(fv.adv_per_prompt(c.inputs["rewards"], c.inputs["group"], c.params["global_std"],
                                       c.inputs["eps"]), c.outputs["adv"])
    c = fv.load("adv.batch")
    assert same_bits(fv.adv_batch(c.inputs["rewards"], c.inputs["eps"]), c.outputs["adv"])
    c = fv.load("adv.filter_zero")
    p = c.params
    keep, kept = fv.adv_filter_zero(c.inputs["adv"], p["num_batches"], p["seed"], p["purpose"], p["c0"], p["c1"])
    assert np.array_equal(keep, c.outputs["keep"].astype(bool)) and kept == int(c.outputs["kept"])
    m, s = fv.adv_mean_std([1.0, 1.0, 1.0])
    assert m == 1.0 and s == 0.0


def test_grids_are_the_cases_grids():
    c = fv.load("sampler.sde")  # diffusers grid, T = 10, step 3 (note.grid)
    s = fv.sigmas_diffusers(10, 3.0)
    assert same_bits(s[3], c.inputs["sigma"]) and same_bits(s[4], c.inputs["sigma_next"])
    assert same_bits(s[1], c.inputs["sigma1"]) and s[-1] == 0 and s.size == 11
    d = fv.load("sampler.dance")  # linspace grid, T = 16, step 3
    s = fv.sigmas_linspace(16, 3.0)
    assert same_bits(s[3], d.inputs["sigma"]) and s[0] == 1 and s[-1] == 0
    ab = fv.alphas_cumprod(fv.betas("scaled_linear", 1000, 0.00085, 0.012))
    t = fv.ddim_timesteps(50, 1000, 1)
    assert same_bits(ab[t[10]], fv.load("sampler.ddim").inputs["alpha_bar"])
    assert fv.timesteps([0.5126], "quantized")[0] == np.float32(512) / np.float32(1000)
    assert fv.sigmas_shifted_linspace(1.0, 0.0, 5).size == 5


def test_philox_by_coordinates_reproduces_the_drawn_inputs():
    c = fv.load("obj.flow_grpo")
    for name in ("x", "v", "xi"):
        spec = dict(kv.split("=") for kv in c.provenance["rng.in." + name].split()[1:])
        z = fv.normal(int(spec["seed"], 16), int(spec["purpose"]), int(spec["c0"], 16), int(spec["c1"]),
                      int(spec["c2"]), shape=c.inputs[name].shape) * np.float32(spec["scale"])
        assert same_bits(z, c.inputs[name]), name
    assert fv.RNG_PURPOSES["golden"] == int(spec["purpose"])
    u = fv.uniform(1, "test", 2, 3, 4, shape=10)
    assert same_bits(fv.uniform(1, 0, 2, 3, 4, shape=4, start=6), u[6:])
    assert ((u > 0) & (u < 1)).all() and fv.rng("u32", 1, 0, shape=3).dtype == np.uint32


def test_transcendental_functions():
    x = np.linspace(-3, 3, 101, dtype=np.float32)
    assert set(fv.math_functions()) >= {"exp", "log", "sin", "cos", "tanh", "sigmoid", "softplus"}
    for fn, ref in (("exp", np.exp), ("sin", np.sin), ("tanh", np.tanh)):
        assert (fv.ulp_distance(fv.math(fn, x), ref(x.astype(np.float64)).astype(np.float32)) <= 1).all(), fn
    assert np.isnan(fv.math("log", [-1.0])[0])


def test_torch_tensors_accepted():
    torch = need_torch()
    c = fv.load("sampler.sde")
    out = fv.sampler_step(step_of(c), torch.from_numpy(c.inputs["x"]), torch.from_numpy(c.inputs["model_out"]),
                          xi=torch.from_numpy(c.inputs["xi"]).requires_grad_(False))
    assert same_bits(out["logp"], c.outputs["logp"])


def test_errors_carry_flowrls_message():
    with pytest.raises(fv.FlowrlError, match="unknown sampler 'sdee'"):
        fv.Step("sdee")
    with pytest.raises(fv.FlowrlError, match="unknown field 'sigmaa'"):
        fv.Step("sde", sigmaa=0.5)
    with pytest.raises(fv.FlowrlError) as e:
        fv.sampler_step("sde", np.zeros((2, 3)), np.zeros((2, 3)), sigma=0.5, sigma_next=0.7, noise=0.7)
    assert e.value.status == 1 and "sigma" in e.value.message
    with pytest.raises(fv.FlowrlError, match="shape"):
        fv.sampler_step("ode", np.zeros((2, 3)), np.zeros((2, 4)), sigma=0.5, sigma_next=0.4)
    with pytest.raises(fv.FlowrlError, match="not finite|finite"):
        fv.adv_batch([1.0, float("nan")])
    with pytest.raises(fv.FlowrlError, match="unknown function 'gamma'"):
        fv.math("gamma", [1.0])
    with pytest.raises(fv.FlowrlError, match="nope"):
        fv.Backend("nope")
    with pytest.raises(fv.FlowrlError, match="kind 'cubic'"):
        fv.betas("cubic", 3, 0, 1)
