"""pi-Flow (docs/algorithms/piflow.md): the golden cases piflow.policy and piflow.imitation against a
PyTorch statement of the public code's policy (Lakonik/piFlow@4229541 lakonlab/models/diffusions/
gmflow.py gmflow_posterior_mean_jit, piflow_policies/gmflow.py GMFlowPolicy.pi, and
demo/train_piflow_dit_imagenet_toymodel.py policy_rollout and its loss), in float64, with the row
gradients from autograd rather than from flowrl's hand-written backward. torch is a test dependency
(Debian python3-torch, ./configure --install-deps).

Tolerance 1e-9 absolute + 1e-9 relative for the policy: both sides are float64 and differ only in the
order of a few sums (torch's reductions against flowrl's index order) and in exp / log (torch's libm
against flowrl's own float64 ones, a few ulp), some 1e-15 relative per operation, grown to ~1e-13
over a 128-substep rollout; an error in a formula moves values by 1e-3 or more. The imitation loss
rounds each rollout state to float32 for the teacher (as flowrl does): 1e-7 relative covers a state
whose float32 rounding flips between the two sides."""
import numpy as np

import flowrl_verify as fv
from conftest import need_torch

torch = need_torch()

EPS = 1e-6      # GMFlowPolicy's eps
SUBSTEPS = 128  # TOTAL_SUBSTEPS


class Policy:
    """GMFlowPolicy for one sample: the row (K*D means | K logits | log-std) at (x_s, sigma_s)."""

    def __init__(self, row, x_s, sigma_s, K, D):
        mu = row[:K * D].reshape(K, D)
        self.x_s, self.sigma_s = x_s, torch.tensor(sigma_s, dtype=torch.float64)
        self.means = x_s.unsqueeze(0) - self.sigma_s * mu
        self.var = torch.exp(row[-1] * 2) * self.sigma_s ** 2
        self.logw = torch.log_softmax(row[K * D:K * D + K], dim=0)

    def posterior(self, x, sigma):
        ss = self.sigma_s.clamp(min=EPS)
        s = torch.as_tensor(sigma, dtype=torch.float64).clamp(min=EPS)
        aos_s, aos = (1 - ss) / ss, (1 - s) / s
        zeta = aos ** 2 - aos_s ** 2
        nu = aos * x / s - aos_s * self.x_s / ss
        denom = (self.var * zeta + 1).clamp(min=EPS)
        out_means = (self.var * nu + self.means) / denom
        w = torch.softmax(self.logw + (self.means * (nu - 0.5 * zeta * self.means)).sum(-1) / denom, dim=0)
        return (out_means * w.unsqueeze(1)).sum(0), w

    def pi(self, x, sigma):
        mean, _ = self.posterior(x, sigma)
        return (x - mean) / torch.as_tensor(sigma, dtype=torch.float64).clamp(min=EPS)


def rollout(pol, x, t_start, t_end):
    delta = t_start - t_end
    n = max(int(torch.round(torch.tensor(delta * SUBSTEPS, dtype=torch.float64))), 1)
    h = delta / n
    t = t_start
    for _ in range(n):
        u = pol.pi(x, t)
        t_minus = max(t - h, 0.0)
        x = x + u * (t_minus - t)
        t = t_minus
    return x


def check(got, want, **kw):
    """fv.compare returns a message (None when it matches): assert it."""
    msg = fv.compare(got, want, names=("flowrl", "pytorch"), **kw)
    assert msg is None, msg


def t64(a):
    return torch.tensor(np.asarray(a, dtype=np.float64))


def test_policy_matches_pytorch():
    c = fv.load("piflow.policy")
    i, o = c.inputs, c.outputs
    K = int(c.params["k"])
    B, D = i["x_s_f32"].shape
    for b in range(B):
        row = t64(i["row_f32"][b]).requires_grad_(True)
        x_s, x, du = t64(i["x_s_f32"][b]), t64(i["x_f32"][b]), t64(i["du_f32"][b])
        sigma, ss = float(i["sigma_f32"][b]), float(i["sigma_s"][b])
        pol = Policy(row, x_s, ss, K, D)
        mean, w = pol.posterior(x, sigma)
        pi = pol.pi(x, sigma)
        (du * pi).sum().backward()
        with torch.no_grad():
            want = {"posterior_mean": mean, "posterior_w": w, "pi": pi, "pi_at_source": pol.pi(x_s, ss),
                    "rollout_to_sigma": rollout(pol, x_s, ss, min(sigma, ss) if sigma < ss else 0.0),
                    "rollout_to_0": rollout(pol, x_s, ss, 0.0), "grad_row": row.grad}
        for name, v in want.items():
            check(o[name][b], v.detach().numpy(), rtol=1e-9, atol=1e-9, label=f"{name}[{b}]")
        # spec check: at the source the velocity is sum_k w_k mu_k
        mu = i["row_f32"][b][:K * D].reshape(K, D).astype(np.float64)
        wk = torch.softmax(t64(i["row_f32"][b][K * D:K * D + K]), 0).numpy()
        assert np.allclose(o["pi_at_source"][b], (wk[:, None] * mu).sum(0), rtol=1e-12, atol=1e-12)


def teacher(x, t):
    """The case's closed-form teacher in float32, left to right (core/golden_piflow.c)."""
    x = np.asarray(x, dtype=np.float32)
    t = np.float32(t)
    return np.array([np.float32(np.float32(np.float32(0.5) * x[0]) - np.float32(np.float32(0.2) * x[1])) + t,
                     np.float32(np.float32(np.float32(0.3) * x[0]) + np.float32(np.float32(0.9) * x[1]))
                     - np.float32(np.float32(2.0) * t)], dtype=np.float32)


def test_imitation_loss_matches_pytorch():
    c = fv.load("piflow.imitation")
    i, o = c.inputs, c.outputs
    K, N = int(c.params["k"]), int(c.params["n_inter"])
    B, D = i["x_s_f32"].shape
    rows = t64(i["rows_f32"]).requires_grad_(True)
    loss = 0
    for n in range(N):
        for b in range(B):
            t = float(i["t_f32"][b * N + n])
            pol = Policy(rows[b], t64(i["x_s_f32"][b]), 1.0, K, D)
            with torch.no_grad():  # the detached policy's rollout
                det = Policy(rows[b].detach(), t64(i["x_s_f32"][b]), 1.0, K, D)
                x_t = rollout(det, t64(i["x_s_f32"][b]), 1.0, t).numpy().astype(np.float32)
            u = t64(teacher(x_t, np.float32(t)))
            loss = loss + ((pol.pi(t64(x_t), float(np.float32(t))) - u) ** 2).sum() / (B * D) / N
    loss.backward()
    check(np.asarray(o["loss"]).reshape(1), np.array([loss.item()]), rtol=1e-7, atol=0, label="loss")
    check(o["grad_rows"], rows.grad.numpy().astype(np.float32), rtol=1e-5, atol=1e-7, label="grad_rows")
