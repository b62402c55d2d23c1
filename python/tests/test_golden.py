"""Golden cases as data, generically; assert_matches on a PyTorch Flow-GRPO SDE step, and on a
deliberately wrong port of it."""
import math

import numpy as np
import pytest

import flowrl_verify as fv


def test_every_case_loads_and_recomputes_bitwise():
    names = fv.cases()
    assert len(names) > 50 and "sampler.sde" in names and "obj.flow_grpo" in names
    for name in names:
        c = fv.load(name)
        assert c.outputs and c.kind in ("op", "shared", "ops") and (c.function is not None) == (c.kind == "op")
        assert c.provenance["golden.case"] == name and c.source.endswith(name + ".safetensors")
        out = fv.compute(name, c.inputs, c.params)
        assert set(out) == set(c.outputs), name
        for k, v in out.items():
            assert v.tobytes() == c.outputs[k].tobytes(), f"{name} out.{k}"


def test_built_case_equals_the_committed_file():
    a, b = fv.load("awm.kl"), fv.load("awm.kl", build=True)
    assert b.source.startswith("built by libflowrl")
    for k in a.outputs:
        assert a.outputs[k].tobytes() == b.outputs[k].tobytes()
    assert a.provenance == b.provenance


def test_compute_reports_missing_inputs():
    c = fv.load("sampler.sde")
    inputs = dict(c.inputs)
    del inputs["xi"]
    with pytest.raises(fv.FlowrlError, match="in.xi"):
        fv.compute("sampler.sde", inputs, c.params)
    with pytest.raises(fv.FlowrlError, match="no golden case 'sampler.nope'"):
        fv.compute("sampler.nope", inputs)


torch = pytest.importorskip("torch")


def sde_step_with_logprob(x, model_out, xi, sigma, sigma_next, sigma1, noise):
    """Flow-GRPO's sde_step_with_logprob (flow_grpo/diffusers_patch/sd3_sde_with_logprob.py),
    as a team would port it: float32 torch ops, operation by operation."""
    x, v, xi = (torch.as_tensor(a) for a in (x, model_out, xi))
    sigma, sigma_next, sigma1, a = (torch.as_tensor(s) for s in (sigma, sigma_next, sigma1, noise))
    dt = sigma_next - sigma
    std_dev_t = torch.sqrt(sigma / (1 - torch.where(sigma == 1, sigma1, sigma))) * a
    mean = x * (1 + std_dev_t ** 2 / (2 * sigma) * dt) + v * (1 + std_dev_t ** 2 * (1 - sigma) / (2 * sigma)) * dt
    x_next = mean + std_dev_t * torch.sqrt(-1 * dt) * xi
    logp = (-((x_next.detach() - mean) ** 2) / (2 * ((std_dev_t * torch.sqrt(-1 * dt)) ** 2))
            - torch.log(std_dev_t * torch.sqrt(-1 * dt)) - torch.log(torch.sqrt(2 * torch.as_tensor(math.pi))))
    logp = logp.mean(dim=tuple(range(1, logp.ndim)))
    return {"x_next": x_next, "mean": mean, "logp": logp, "std_dev": std_dev_t}


def wrong_port(x, model_out, xi, sigma, sigma_next, sigma1, noise):
    """The same step with the factor 2 of 2σ missing in the x coefficient of the mean."""
    x, v, xi = (torch.as_tensor(a) for a in (x, model_out, xi))
    sigma, sigma_next, sigma1, a = (torch.as_tensor(s) for s in (sigma, sigma_next, sigma1, noise))
    dt = sigma_next - sigma
    std_dev_t = torch.sqrt(sigma / (1 - torch.where(sigma == 1, sigma1, sigma))) * a
    mean = x * (1 + std_dev_t ** 2 / sigma * dt) + v * (1 + std_dev_t ** 2 * (1 - sigma) / (2 * sigma)) * dt
    return {"mean": mean}


@pytest.mark.parametrize("name", ["sampler.sde", "sampler.sde_sigma1"])
def test_pytorch_flow_grpo_sde_step_matches(name):
    case = fv.assert_matches(sde_step_with_logprob, name, rtol=1e-5, atol=1e-5)
    assert case.function == "sampler_step"


def test_wrong_port_fails_naming_element_and_ulp_distance():
    with pytest.raises(AssertionError) as e:
        fv.assert_matches(wrong_port, "sampler.sde", rtol=1e-5, atol=1e-5)
    msg = str(e.value)
    c = fv.load("sampler.sde")
    got = wrong_port(**{k: c.inputs[k] for k in ("x", "model_out", "xi", "sigma", "sigma_next", "sigma1",
                                                  "noise")})["mean"].numpy()
    want = c.outputs["mean"]
    bad = np.flatnonzero(~(np.abs(got.astype(np.float64) - want) <= 1e-5 + 1e-5 * np.abs(want)))
    i, j = np.unravel_index(bad[0], want.shape)
    ulp = int(fv.ulp_distance(got.reshape(-1)[bad[0]], want.reshape(-1)[bad[0]]))
    assert f"out.mean[{i}, {j}]" in msg, msg
    assert f"ulp distance {ulp} " in msg and ulp > 1000, msg
    assert "sampler.sde" in msg and "elements out of tolerance" in msg


def test_assert_matches_bitwise_and_tuple_outputs():
    def numpy_mean(x, model_out, sigma, sigma_next, sigma1, noise):
        s = fv.sampler_mean("sde", x, model_out, sigma=sigma, sigma_next=sigma_next, sigma1=sigma1, noise=noise)
        return (s,)
    fv.assert_matches(numpy_mean, "sampler.sde", rtol=0, atol=0, outputs=("mean",))
    with pytest.raises(TypeError, match="does not have"):
        fv.assert_matches(lambda x, velocity: {}, "sampler.sde")
    with pytest.raises(TypeError, match="not outputs of case"):
        fv.assert_matches(lambda x: {"y": x}, "sampler.sde")
