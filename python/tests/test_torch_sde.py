"""assert_matches on a PyTorch port of Flow-GRPO's SDE step (passes), and on a deliberately
wrong port missing a factor 2 (fails naming the element and its ulp distance). torch is a test
dependency (Debian python3-torch, installed by ./configure --install-deps): make check runs this."""
import math

import numpy as np
import pytest

import flowrl_verify as fv
from conftest import need_torch

torch = need_torch()


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


