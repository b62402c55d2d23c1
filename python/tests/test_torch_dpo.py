"""The pair DPO loss of Diffusion-DPO and Flow-DPO (docs/algorithms/dpo.md §4) against PyTorch: the
public loss blocks ported line by line (Diffusion-DPO `train.py`, Flow-DPO `train_sd3_dpo.py`), in
float64 (flowrl's precision: errors, z, loss) with autograd for the gradient, on the golden cases'
inputs and on fresh random ones through `flowrl_verify.compute`; and in float32 (the public codes'
precision), which agrees to float32 rounding only. torch is a test dependency (Debian
python3-torch, installed by ./configure --install-deps): make check runs this."""
import numpy as np
import pytest

import flowrl_verify as fv
from conftest import need_torch

torch = need_torch()
F = torch.nn.functional


def diffusion_dpo_loss(out, out_ref, target, beta, dtype):
    """Diffusion-DPO train.py, the loss block between START and END LOSS COMPUTATION."""
    model_pred = torch.tensor(out, dtype=dtype, requires_grad=True)
    ref_pred, target = torch.tensor(out_ref, dtype=dtype), torch.tensor(target, dtype=dtype)
    model_losses = (model_pred - target).pow(2).mean(dim=1)
    model_losses_w, model_losses_l = model_losses.chunk(2)
    model_diff = model_losses_w - model_losses_l
    ref_losses = (ref_pred - target).pow(2).mean(dim=1)
    ref_losses_w, ref_losses_l = ref_losses.chunk(2)
    ref_diff = ref_losses_w - ref_losses_l
    scale_term = -0.5 * beta
    inside_term = scale_term * (model_diff - ref_diff)
    loss = -1 * F.logsigmoid(inside_term).mean()
    return model_pred, model_losses, ref_losses, inside_term, loss


def flow_dpo_loss(out, out_ref, target, beta, dtype):
    """Flow-DPO scripts/train_sd3_dpo.py, the loss of one draw."""
    model_pred = torch.tensor(out, dtype=dtype, requires_grad=True)
    model_pred_ref, target = torch.tensor(out_ref, dtype=dtype), torch.tensor(target, dtype=dtype)
    bsz = model_pred.shape[0] // 2
    theta_mse = ((model_pred - target) ** 2).reshape(target.shape[0], -1).mean(dim=1)
    ref_mse = ((model_pred_ref - target) ** 2).reshape(target.shape[0], -1).mean(dim=1)
    w_diff = theta_mse[:bsz] - ref_mse[:bsz]
    l_diff = theta_mse[bsz:] - ref_mse[bsz:]
    w_l_diff = w_diff - l_diff
    inside_term = -0.5 * beta * w_l_diff
    loss = torch.mean(-F.logsigmoid(inside_term))
    return model_pred, theta_mse, ref_mse, inside_term, loss


PORTS = {"pair_dpo.diffusion": diffusion_dpo_loss, "pair_dpo.flow": flow_dpo_loss, "pair_dpo.at_ref": diffusion_dpo_loss}


def check(name, inp, out, gout):
    """flowrl's outputs out of inputs inp against the float64 port (tight) and the float32 one."""
    port = PORTS[name]
    x, e, e_ref, z, loss = port(inp["out"], inp["out_ref"], inp["target"], float(inp["beta"]), torch.float64)
    (loss * gout).backward()
    # errors: float64 squares of float32 differences, summed in another order: 1e-15 relative
    np.testing.assert_allclose(out["e"], e.detach().numpy(), rtol=1e-14, atol=0)
    np.testing.assert_allclose(out["e_ref"], e_ref.numpy(), rtol=1e-14, atol=0)
    # z amplifies the errors' rounding by beta/2 (2500 at 5000)
    np.testing.assert_allclose(out["z"], z.detach().numpy(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(float(out["loss"]), float(loss), rtol=1e-12, atol=0)
    # the gradient: flowrl rounds each row's scale and the product to float32
    g = x.grad.numpy()
    np.testing.assert_allclose(out["grad"], g, rtol=2e-6, atol=1e-9 * np.abs(g).max())
    # the public precision (float32) agrees to float32 rounding, amplified by beta/2 in z
    _, _, _, _, loss32 = port(inp["out"], inp["out_ref"], inp["target"], float(inp["beta"]), torch.float32)
    np.testing.assert_allclose(float(out["loss"]), float(loss32), rtol=2e-3, atol=2e-3)


@pytest.mark.parametrize("name", ["pair_dpo.diffusion", "pair_dpo.flow", "pair_dpo.at_ref"])
def test_golden_cases_match_pytorch(name):
    c = fv.load(name)
    check(name, c.inputs, c.outputs, float(c.inputs["gout"]))
    if name == "pair_dpo.at_ref":
        # at theta = ref: every term is log 2 (softplus(0)) and the loss within 1 ulp of it
        assert np.all(c.outputs["z"] == 0.0)
        assert abs(float(c.outputs["loss"]) - np.log(2.0)) <= np.spacing(np.log(2.0))


@pytest.mark.parametrize("name,seed", [("pair_dpo.diffusion", 1), ("pair_dpo.flow", 2), ("pair_dpo.flow", 3)])
def test_random_inputs_match_pytorch(name, seed):
    rng = np.random.default_rng(seed)
    shape = (8, 6)  # the case's shape: 4 pairs of D 6
    target = rng.standard_normal(shape).astype(np.float32)
    out = (target + 0.3 * rng.standard_normal(shape)).astype(np.float32)
    beta = 100.0 if name == "pair_dpo.flow" else 5000.0
    out_ref = (out + (0.05 if beta == 100.0 else 0.002) * rng.standard_normal(shape)).astype(np.float32)
    inp = {"target": target, "d_out": out - target, "d_ref": out_ref - out, "out": out, "out_ref": out_ref,
           "beta": np.float64(beta), "gout": np.float64(0.25)}
    res = fv.compute(name, inp, params={"form": 1 if name == "pair_dpo.flow" else 0})
    check(name, inp, res, 0.25)
