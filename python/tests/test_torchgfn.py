"""flowrl's GFlowNet pieces against torchgfn (docs/algorithms/gfn.md §8): torchgfn 1.2.1
(GFNOrg/torchgfn@13c059a2, the wheel pinned in requirements-torchgfn.txt) on Debian's torch 1.13,
flowrl through its C API (flowrl_verify.Env, gfn_loss).

- HyperGrid, several (D, H, R0, R1, R2): every reward bit for bit (float32), the target R/Z and
  log Z, the canonical order of all states; on random states the forward and backward masks, the
  K-hot encoding, the index and every allowed forward and backward transition.
- Losses TB, DB, SubTB (every weighting, λ 0.9), ZVar and FM: one batch of trajectories drawn by
  flowrl's rule (u = (Philox u32 (seed, gfn_action, iteration, b, k) + ½)·2⁻³², the first allowed
  action whose cumulative probability exceeds u) from tabular policies (a float32 table of P_F
  logits, P_B logits and log F per state), flowrl's transitions; torchgfn's own Trajectories,
  Transitions and states built from them, its per-step log-probs, its loss and its autograd
  gradient in the tables, against flowrl_gfn_loss on the same per-step log-probs / flows and its
  gradients pushed through the same masked log-softmax (float64, here).

Tolerance: torchgfn computes in float32 (log-softmax, sums of up to 2·D·(H−1) log-probs, squares,
means), flowrl in float64. A float32 operation is exact to 2⁻²⁴ ≈ 6e-8 relative; the longest chain
here (a SubTB residual: two cumulative sums of ≤ 12 terms, squared, weighted and summed over ≤ 78
pairs per trajectory) stays within a few tens of those, so values and gradients must agree to
TOL = 5e-6 relative to the largest magnitude of the quantity compared (measured: 4.2e-7 at most, a
gradient of SubTB geometric; 3.5e-7 TB's in log Z; 2.1e-7 the losses). Where both sides compute in float32 (rewards, encodings) or in
integers (masks, indices, transitions) the check is exact."""
import numpy as np
import pytest

import flowrl_verify as fv
from conftest import need_torch, need_torchgfn

torch = need_torch()
need_torchgfn()
from gfn.containers import Trajectories  # noqa: E402
from gfn.gflownet import (DBGFlowNet, FMGFlowNet, LogPartitionVarianceGFlowNet, SubTBGFlowNet,  # noqa: E402
                          TBGFlowNet)
from gfn.gym import HyperGrid  # noqa: E402
from gfn.modules import DiscretePolicyEstimator, ScalarEstimator  # noqa: E402
from gfn.utils.modules import Tabular  # noqa: E402
from gfn_flowrl_side import Batch, draw, padded, tables  # noqa: E402
from gfn_flowrl_side import close as close_tol  # noqa: E402

TOL = 5e-6


def close(got, want, what, tol=TOL):
    close_tol(got, want, what, tol)


def flowrl_env(D, H, r0=0.1, r1=0.5, r2=2.0):
    return fv.Env("hypergrid", ndim=D, height=H, r0=r0, r1=r1, r2=r2)


# ---- HyperGrid ------------------------------------------------------------------------------

GRIDS = [(2, 8, 0.1, 0.5, 2.0), (2, 16, 0.1, 0.5, 2.0), (4, 8, 0.1, 0.5, 2.0), (3, 5, 0.01, 0.5, 2.0),
         (2, 12, 0.001, 0.5, 2.0), (1, 20, 0.1, 0.5, 2.0), (2, 8, 0.1, 1.0, 3.0)]


@pytest.mark.parametrize("D,H,r0,r1,r2", GRIDS)
def test_hypergrid_target(D, H, r0, r1, r2):
    e, t = flowrl_env(D, H, r0, r1, r2), HyperGrid(D, H, r0, r1, r2)
    states = e.states()
    assert np.array_equal(states, t.all_states.tensor.numpy()), "canonical order of the states"
    r32 = t.reward(t.all_states).numpy()
    assert r32.dtype == np.float32
    q = e.query(states)
    # flowrl's log R is the float64 log of its float32 reward: back to float32, torchgfn's bits
    assert np.array_equal(np.exp(q["log_reward"]).astype(np.float32), r32), "OriginalReward"
    p, log_z, _, _ = e.target()
    # the same target in float64 from torchgfn's float32 rewards, and torchgfn's own float32 one
    z = 0.0
    for r in r32.astype(np.float64):
        z += r
    close(r32.astype(np.float64) / z, p, "R/Z from torchgfn's rewards", tol=1e-13)
    close(np.log(z), log_z, "log Z from torchgfn's rewards", tol=1e-13)
    close(t.true_dist_pmf.numpy(), p, "true_dist_pmf (float32)", tol=2e-6)
    close(t.log_partition, log_z, "log_partition (float32)", tol=2e-6)


@pytest.mark.parametrize("D,H", [(2, 8), (3, 5), (4, 3), (1, 12), (5, 4)])
def test_hypergrid_masks_and_steps(D, H):
    e, t = flowrl_env(D, H), HyperGrid(D, H)
    rng = np.random.default_rng(1000 * D + H)
    s = rng.integers(0, H, size=(200, D)).astype(np.int32)
    s[0] = 0                         # s0
    s[1] = H - 1                     # the far corner: only the exit
    s[2, 0] = H - 1                  # an edge
    q = e.query(s)
    st = t.states_from_tensor(torch.tensor(s, dtype=torch.long))
    assert np.array_equal(q["fwd"].astype(bool), st.forward_masks.numpy()), "forward masks"
    assert np.array_equal(q["bwd"].astype(bool), st.backward_masks.numpy()), "backward masks"
    assert np.array_equal(q["obs"], t.preprocessor(st).numpy()), "K-hot encoding"
    assert np.array_equal(q["index"], t.get_states_indices(st).numpy()), "canonical index"
    for backward, mask in ((False, q["fwd"][:, :D]), (True, q["bwd"])):
        for a in range(D):
            rows = np.flatnonzero(mask[:, a])
            if rows.size == 0:
                continue
            acts = t.actions_from_tensor(torch.full((rows.size, 1), a, dtype=torch.long))
            sub = t.states_from_tensor(torch.tensor(s[rows], dtype=torch.long))
            want = (t.backward_step if backward else t.step)(sub, acts).numpy()
            got = e.step(s[rows], np.full(rows.size, a), backward=backward)
            assert np.array_equal(got, want), f"{'backward' if backward else 'forward'} action {a}"


# ---- the losses -------------------------------------------------------------------------------

def torchgfn_trajectories(t, S, act, n):
    """torchgfn's Trajectories of these trajectories, laid out as its Sampler lays them out:
    states (max n + 1, B) with s_f after the last state, actions (max n, B) padded with the dummy
    action, when_is_done = n, log_rewards = torchgfn's own log R of the last states."""
    st, ac = padded(S, act, n, t.sf.numpy())
    states = t.states_from_tensor(torch.tensor(st, dtype=torch.long))
    when = torch.tensor(n, dtype=torch.long)
    last = states[when - 1, torch.arange(len(n))]
    return Trajectories(env=t, states=states, actions=t.actions_from_tensor(torch.tensor(ac)), when_is_done=when,
                        log_rewards=t.log_reward(last))


def tabular(table):
    m = Tabular(n_states=table.shape[0], output_dim=table.shape[1])
    with torch.no_grad():
        m.table.copy_(torch.from_numpy(table))
    return m


class Case:
    """One batch on one grid: the tables, flowrl's trajectories and inputs (gfn_flowrl_side.Batch),
    torchgfn's Trajectories of them, and its estimators over tabular modules of the same tables."""

    def __init__(self, D, H, B, seed):
        self.e = flowrl_env(D, H)
        self.t = HyperGrid(D, H, preprocessor_name="Enum")
        pf, pb, F = tables(self.e.n_states, self.e.n_actions, seed)
        S, act, self.n = draw(self.e, pf, B, seed, iteration=3)
        self.f = Batch(self.e, S, act, self.n, pf, pb, F)
        self.traj = torchgfn_trajectories(self.t, S, act, self.n)

    def estimators(self):
        A, pre = self.e.n_actions, self.t.preprocessor
        self.m_pf, self.m_pb, self.m_F = tabular(self.f.pf), tabular(self.f.pb), tabular(self.f.F)
        return (DiscretePolicyEstimator(module=self.m_pf, n_actions=A, preprocessor=pre),
                DiscretePolicyEstimator(module=self.m_pb, n_actions=A, preprocessor=pre, is_backward=True),
                ScalarEstimator(module=self.m_F, preprocessor=pre))


def grads(loss, *tables):
    loss.backward()
    return [np.zeros(tuple(p.shape)) if p.grad is None else p.grad.numpy().astype(np.float64) for p in tables]


CASES = [(2, 6, 32, 11), (3, 4, 24, 12), (1, 9, 16, 13)]


@pytest.fixture(scope="module", params=CASES, ids=lambda c: f"D{c[0]}H{c[1]}B{c[2]}")
def case(request):
    return Case(*request.param)


def test_trajectories_layout(case):
    """The Trajectories built here are the ones torchgfn's own sampler makes: its sampled batch,
    rebuilt from (states, actions, lengths) by torchgfn_trajectories, gives the same TB loss."""
    pf, pb, _ = case.estimators()
    gfn = TBGFlowNet(pf=pf, pb=pb, logZ=0.3)
    torch.manual_seed(5)
    own = gfn.sample_trajectories(case.t, n_samples=16, save_logprobs=False)
    n = own.when_is_done.numpy()
    S = own.states.tensor.numpy().transpose(1, 0, 2)[:, :-1]
    act = own.actions.tensor.numpy()[..., 0].T
    rebuilt = torchgfn_trajectories(case.t, S, act, n)
    assert torch.equal(gfn.loss(case.t, own), gfn.loss(case.t, rebuilt))
    # and every step of flowrl's batch is a transition of torchgfn's environment
    st = case.traj.states
    for k in range(case.traj.max_length):
        live = torch.tensor(case.n > k + 1)
        if live.any():
            nxt = case.t.step(st[k][live], case.traj.actions[k][live])
            assert torch.equal(nxt, st[k + 1][live].tensor), f"step {k}"


def test_logprobs(case):
    """torchgfn's per-step log P_F and log P_B (get_pfs_and_pbs) are flowrl's per-step inputs."""
    pf, pb, _ = case.estimators()
    lpf, lpb = TBGFlowNet(pf=pf, pb=pb).get_pfs_and_pbs(case.traj)
    lpf, lpb = lpf.detach().numpy().T, lpb.detach().numpy().T
    valid = np.arange(lpf.shape[1])[None, :] < case.n[:, None]
    close(lpf[valid], case.f.logpf[valid], "log P_F per step")
    close(lpb[valid], case.f.logpb[valid], "log P_B per step (the exit's 0)")


@pytest.mark.parametrize("kind", ["tb", "zvar", "db", "subtb"])
def test_loss_and_gradients(case, kind):
    pf, pb, F = case.estimators()
    if kind == "tb":
        gfn = TBGFlowNet(pf=pf, pb=pb, logZ=0.3)
        loss = gfn.loss(case.t, case.traj)
    elif kind == "zvar":
        gfn = LogPartitionVarianceGFlowNet(pf=pf, pb=pb)
        loss = gfn.loss(case.t, case.traj)
    elif kind == "db":
        gfn = DBGFlowNet(pf=pf, pb=pb, logF=F)
        loss = gfn.loss(case.t, case.traj.to_transitions())
    else:
        gfn = SubTBGFlowNet(pf=pf, pb=pb, logF=F, weighting="geometric_within", lamda=0.9)
        loss = gfn.loss(case.t, case.traj)
    out = case.f.loss(kind, log_z=float(np.float32(0.3)), lam=0.9)
    close(loss.item(), out["loss"], f"{kind} loss")
    params = [case.m_pf.table, case.m_pb.table, case.m_F.table] + ([gfn.logZ] if kind == "tb" else [])
    got = grads(loss, *params)
    want = case.f.table_grads(out)
    assert np.abs(want[0]).max() > 1e-3, "a gradient that cannot fail"
    for g, w, name in zip(got, want, ("P_F logits", "P_B logits", "log F")):
        close(g, w, f"{kind}: gradient in the {name}")
    if kind == "tb":
        close(got[3], out["grad_log_z"], "tb: gradient in log Z")


SUBTB_WEIGHTINGS = ["geometric_within", "equal_within", "equal", "geometric", "DB", "ModifiedDB", "TB"]  # fr_gfn_subtb_weighting


@pytest.mark.parametrize("weighting", SUBTB_WEIGHTINGS[1:])
def test_subtb_weightings(case, weighting):
    """Every other SubTB weighting (λ 0.9) against torchgfn's own SubTBGFlowNet: geometric's
    per-length means and (1 − λ)/(1 − λ^maxlen), equal's one normaliser over the batch's
    sub-trajectories, equal_within's, DB's, ModifiedDB's and TB's weights."""
    pf, pb, F = case.estimators()
    loss = SubTBGFlowNet(pf=pf, pb=pb, logF=F, weighting=weighting, lamda=0.9).loss(case.t, case.traj)
    out = case.f.loss("subtb", lam=0.9, weighting=SUBTB_WEIGHTINGS.index(weighting))
    close(loss.item(), out["loss"], f"subtb {weighting} loss")
    got = grads(loss, case.m_pf.table, case.m_pb.table, case.m_F.table)
    want = case.f.table_grads(out)
    assert np.abs(want[0]).max() > 1e-3, "a gradient that cannot fail"
    for g, w, name in zip(got, want, ("P_F logits", "P_B logits", "log F")):
        close(g, w, f"subtb {weighting}: gradient in the {name}")


def test_fm_loss_and_gradients(case):
    est = DiscretePolicyEstimator(module=tabular(case.f.pf), n_actions=case.e.n_actions,
                                  preprocessor=case.t.preprocessor)
    loss = FMGFlowNet(est).loss(case.t, case.traj.to_non_initial_intermediary_and_terminating_states())
    out, want = case.f.fm(case.f.pf.astype(np.float64))  # the P_F table as log edge flows
    close(loss.item(), out["loss"], "fm loss")
    assert np.abs(want).max() > 1e-3, "a gradient that cannot fail"
    close(grads(loss, est.module.table)[0], want, "fm: gradient in the log edge flows")
