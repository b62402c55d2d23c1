#!/usr/bin/env python3
"""The torchgfn cross-check against the current torchgfn 2.x, by hand (docs/algorithms/gfn.md §8):
torchgfn 2.x needs torch >= 2.6, on x86-64 Linux a CUDA build from PyPI (a 3 GB download, 5.4 GB
venv), so make check runs python/tests/test_torchgfn.py against torchgfn 1.2.1 instead. This runs
the same comparisons through torchgfn 2.x's API:

- HyperGrid (the grids of the test): the order of the states, every reward bit for bit, the
  forward / backward masks, the mode cells, the target R/Z and log Z (float32, 2e-6);
- TB, ZVar, DB, SubTB (geometric_within, λ 0.9) and FM on batches drawn by flowrl's rule from
  tabular policies (python/tests/gfn_flowrl_side.py), torchgfn's own Trajectories of them: loss
  and autograd gradient in the tables against flowrl_gfn_loss (TOL 5e-6, as the test).

    python3 -m venv /tmp/tg2 && /tmp/tg2/bin/pip install torch==2.6.0 torchgfn==2.4.1
    make && PYTHONPATH=python FLOWRL_LIB=build/libflowrl.so /tmp/tg2/bin/python tools/torchgfn_current_check.py
"""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python", "tests"))
import flowrl_verify as fv  # noqa: E402
from gfn import __version__ as gfn_version  # noqa: E402
from gfn.containers import Trajectories  # noqa: E402
from gfn.estimators import DiscretePolicyEstimator, ScalarEstimator  # noqa: E402
from gfn.gflownet import (DBGFlowNet, FMGFlowNet, LogPartitionVarianceGFlowNet, SubTBGFlowNet,  # noqa: E402
                          TBGFlowNet)
from gfn.gym import HyperGrid  # noqa: E402
from gfn.preprocessors import EnumPreprocessor  # noqa: E402
from gfn.utils.modules import Tabular  # noqa: E402
from gfn_flowrl_side import Batch, close, draw, padded, tables  # noqa: E402

TOL = 5e-6
GRIDS = [(2, 8, 0.1, 0.5, 2.0), (2, 16, 0.1, 0.5, 2.0), (4, 8, 0.1, 0.5, 2.0), (3, 5, 0.01, 0.5, 2.0),
         (2, 12, 0.001, 0.5, 2.0), (1, 20, 0.1, 0.5, 2.0), (2, 8, 0.1, 1.0, 3.0)]
CASES = [(2, 6, 32, 11), (3, 4, 24, 12), (1, 9, 16, 13)]


def grid(D, H, r0=0.1, r1=0.5, r2=2.0):
    return HyperGrid(ndim=D, height=H, reward_fn_kwargs={"R0": r0, "R1": r1, "R2": r2}, store_all_states=True,
                     validate_modes=False)


def check_grid(D, H, r0, r1, r2):
    e, t = fv.Env("hypergrid", ndim=D, height=H, r0=r0, r1=r1, r2=r2), grid(D, H, r0, r1, r2)
    S = t.all_states
    assert np.array_equal(e.states(), S.tensor.numpy()), "canonical order"
    q = e.query(e.states())
    assert np.array_equal(np.exp(q["log_reward"]).astype(np.float32), t.reward(S).numpy()), "rewards"
    assert np.array_equal(q["fwd"].astype(bool), S.forward_masks.numpy()), "forward masks"
    assert np.array_equal(q["bwd"].astype(bool), S.backward_masks.numpy()), "backward masks"
    assert np.array_equal(q["is_mode"].astype(bool), t.mode_mask(S).numpy()), "mode cells"
    p, log_z, _, _ = e.target()
    close(t.true_dist().numpy(), p, "true_dist", 2e-6)
    close(t.log_partition(), log_z, "log_partition", 2e-6)


def trajectories(t, S, act, n):
    """torchgfn 2.x's Trajectories of flowrl's batch (states (max n + 1, B) ending in s_f, dummy
    actions after the exit, terminating_idx = n)."""
    st, ac = padded(S, act, n, t.sf.numpy())
    states = t.states_from_tensor(torch.tensor(st, dtype=torch.long))
    idx = torch.tensor(n, dtype=torch.long)
    return Trajectories(env=t, states=states, actions=t.actions_from_tensor(torch.tensor(ac)), terminating_idx=idx,
                        log_rewards=t.log_reward(states[idx - 1, torch.arange(len(n))]))


def tabular(table):
    m = Tabular(n_states=table.shape[0], output_dim=table.shape[1])
    with torch.no_grad():
        m.table.copy_(torch.from_numpy(table))
    return m


def check_losses(D, H, B, seed):
    e, t = fv.Env("hypergrid", ndim=D, height=H), grid(D, H)
    pf_t, pb_t, F_t = tables(e.n_states, e.n_actions, seed)
    S, act, n = draw(e, pf_t, B, seed, iteration=3)
    f = Batch(e, S, act, n, pf_t, pb_t, F_t)
    traj = trajectories(t, S, act, n)
    pre, A = EnumPreprocessor(t.get_states_indices), e.n_actions
    worst = 0.0
    for kind in ("tb", "zvar", "db", "subtb"):
        m_pf, m_pb, m_F = tabular(pf_t), tabular(pb_t), tabular(F_t)
        pf = DiscretePolicyEstimator(module=m_pf, n_actions=A, preprocessor=pre)
        pb = DiscretePolicyEstimator(module=m_pb, n_actions=A, preprocessor=pre, is_backward=True)
        logF = ScalarEstimator(module=m_F, preprocessor=pre)
        gfn = {"tb": lambda: TBGFlowNet(pf=pf, pb=pb, init_logZ=0.3),
               "zvar": lambda: LogPartitionVarianceGFlowNet(pf=pf, pb=pb),
               "db": lambda: DBGFlowNet(pf=pf, pb=pb, logF=logF),
               "subtb": lambda: SubTBGFlowNet(pf=pf, pb=pb, logF=logF, weighting="geometric_within", lamda=0.9)}[kind]()
        loss = gfn.loss(t, gfn.to_training_samples(traj), recalculate_all_logprobs=True)
        out = f.loss(kind, log_z=float(np.float32(0.3)), lam=0.9)
        worst = max(worst, close(loss.item(), out["loss"], f"{kind} loss", TOL))
        loss.backward()
        for p, w, name in zip((m_pf.table, m_pb.table, m_F.table), f.table_grads(out), ("P_F", "P_B", "log F")):
            g = np.zeros(w.shape) if p.grad is None else p.grad.numpy()
            worst = max(worst, close(g, w, f"{kind}: gradient in {name}", TOL))
        if kind == "tb":
            worst = max(worst, close(gfn.logZ.grad.item(), out["grad_log_z"], "tb: gradient in log Z", TOL))
    est = DiscretePolicyEstimator(module=tabular(pf_t), n_actions=A, preprocessor=pre)
    fm = FMGFlowNet(est)
    loss = fm.loss(t, fm.to_training_samples(traj), recalculate_all_logprobs=True)
    out, want = f.fm(pf_t.astype(np.float64))
    worst = max(worst, close(loss.item(), out["loss"], "fm loss", TOL))
    loss.backward()
    return max(worst, close(est.module.table.grad.numpy(), want, "fm: gradient", TOL))


def main():
    print(f"torchgfn {gfn_version}, torch {torch.__version__}, flowrl {fv.library()[2]}")
    for g in GRIDS:
        check_grid(*g)
        print("hypergrid D=%d H=%d R0=%g R1=%g R2=%g: states, rewards, masks, modes, target ok" % g)
    for c in CASES:
        print("losses D=%d H=%d B=%d: tb, zvar, db, subtb, fm and gradients ok (largest relative difference %.2g)"
              % (c[0], c[1], c[2], check_losses(*c)))
    print("torchgfn_current_check: all ok")


if __name__ == "__main__":
    main()
