#!/usr/bin/env python3
"""torchgfn's own HyperGrid training at bench_gfn's configuration, for its wall-clock and final
exact L1 beside flowrl's (bench/bench_gfn.py, torchgfn_row; docs/algorithms/gfn.md §8).

torchgfn 1.2.1 (the version configure --install-deps pins; run with build/pyenv/bin/python) as
its tutorials/examples/train_hypergrid.py builds it: NeuralNet P_F (hidden x n_hidden, ReLU), a
P_B head on the same torso (--tied), TBGFlowNet with log Z 0, Adam in two groups (lr; log Z at
lr_Z) -- flowrl's AdamW at weight decay 0 is the same update -- on-policy trajectories with
their saved log-probs. With --loss SubTB: SubTBGFlowNet with its weighting, lamda and
forward_looking, and the log F ScalarEstimator a third head on the same torso (train_hypergrid.py
--tied), in the lr group (torchgfn's: every parameter but logZ); its log Z estimate is log F(s0)
(plus log R(s0) when forward-looking). torchgfn 1.2.1's forward_looking raises (it adds
env.log_reward of every state of the (T, B) batch, sink padding included, to the flows of the valid
states only: a shape mismatch); FixedSubTB adds the valid states' log rewards, as torchgfn fixed it
later (GFNOrg/torchgfn@f39bfc96 src/gfn/gflownet/sub_trajectory_balance.py,
calculate_log_state_flows). Prints one JSON line: seconds (wall and CPU) of the training loop (sampling, loss,
backward, step), the exact L1 sum_x |P_T(x) - R(x)/Z| of the final policy (the dynamic program
of docs/algorithms/gfn.md §5.1 over torchgfn's own P_F, float64), its log Z error, and the
parameter count.

    build/pyenv/bin/python tools/torchgfn_hypergrid.py [--iterations 250] [--seed 1] [--threads 1]
        [--loss TB|SubTB] [--weighting geometric_within|equal|geometric|...] [--lamda 0.9] [--forward-looking]
"""
import argparse
import json
import time

import numpy as np
import torch

from gfn import __version__ as gfn_version
from gfn.gflownet import SubTBGFlowNet, TBGFlowNet
from gfn.gym import HyperGrid
from gfn.modules import DiscretePolicyEstimator, ScalarEstimator
from gfn.utils.common import set_seed
from gfn.utils.modules import NeuralNet


class FixedSubTB(SubTBGFlowNet):
    """SubTBGFlowNet whose forward-looking state flows are log F~(s) + log R(s) of the valid states."""

    def calculate_log_state_flows(self, env, trajectories, log_pf_trajectories):
        states = trajectories.states
        flows = torch.full_like(log_pf_trajectories, fill_value=-float("inf"))
        mask = ~states.is_sink_state
        valid = states[mask]
        log_f = self.logF(valid).squeeze(-1)
        if self.forward_looking:
            log_f = log_f + env.log_reward(valid)
        flows[mask[:-1]] = log_f
        return flows


def exact_l1(env, pf):
    """sum_x |P_T(x) - R(x)/Z| of the policy pf at epsilon 0: u(s0) = 1, u(s') += u(s) P_F(s'|s)
    in canonical index order (a topological order; s0 is index 0), P_T(x) = u(x) P_F(exit|x)."""
    states = env.states_from_tensor(env.all_states.tensor)  # all_states alone has every action allowed
    with torch.no_grad():
        logits = pf(states)
        logits[~states.forward_masks] = -float("inf")
        p = torch.softmax(logits.double(), dim=-1).numpy()
    idx = env.get_states_indices(states).numpy()
    assert (idx == np.arange(env.n_states)).all()  # all_states is in canonical order
    coords = states.tensor.numpy()
    u, pt = np.zeros(env.n_states), np.zeros(env.n_states)
    u[0] = 1.0
    for i in range(env.n_states):
        for d in range(env.ndim):
            if coords[i, d] < env.height - 1:
                u[i + env.height ** (env.ndim - 1 - d)] += u[i] * p[i, d]
        pt[i] = u[i] * p[i, env.ndim]
    assert abs(pt.sum() - 1.0) < 1e-9, f"P_T sums to {pt.sum()}"
    return float(np.abs(pt - env.true_dist_pmf.double().numpy()).sum())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ndim", type=int, default=2)
    ap.add_argument("--height", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--hidden-dim", type=int, default=256)
    ap.add_argument("--n-hidden", type=int, default=2)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--lr-z", type=float, default=0.1)
    ap.add_argument("--iterations", type=int, default=250)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--loss", choices=["TB", "SubTB"], default="TB")
    ap.add_argument("--weighting", default="geometric_within", help="SubTB: torchgfn's weighting")
    ap.add_argument("--lamda", type=float, default=0.9, help="SubTB: torchgfn's lamda")
    ap.add_argument("--forward-looking", action="store_true", help="SubTB: log F(s) = log F~(s) + log R(s)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    set_seed(a.seed)
    env = HyperGrid(a.ndim, a.height, 0.1, 0.5, 2.0)
    pf_module = NeuralNet(input_dim=env.preprocessor.output_dim, output_dim=env.n_actions,
                          hidden_dim=a.hidden_dim, n_hidden_layers=a.n_hidden)
    pb_module = NeuralNet(input_dim=env.preprocessor.output_dim, output_dim=env.n_actions - 1,
                          hidden_dim=a.hidden_dim, n_hidden_layers=a.n_hidden, torso=pf_module.torso)
    pf = DiscretePolicyEstimator(module=pf_module, n_actions=env.n_actions, preprocessor=env.preprocessor)
    pb = DiscretePolicyEstimator(module=pb_module, n_actions=env.n_actions, is_backward=True,
                                 preprocessor=env.preprocessor)
    if a.loss == "TB":
        gfn = TBGFlowNet(pf=pf, pb=pb, logZ=0.0)
    else:
        f_module = NeuralNet(input_dim=env.preprocessor.output_dim, output_dim=1, hidden_dim=a.hidden_dim,
                             n_hidden_layers=a.n_hidden, torso=pf_module.torso)
        gfn = FixedSubTB(pf=pf, pb=pb, logF=ScalarEstimator(module=f_module, preprocessor=env.preprocessor),
                            weighting=a.weighting, lamda=a.lamda, forward_looking=a.forward_looking)
    named = dict(gfn.named_parameters())
    groups = [{"params": [v for k, v in named.items() if k != "logZ"], "lr": a.lr}]
    if "logZ" in named:
        groups.append({"params": [named["logZ"]], "lr": a.lr_z})
    opt = torch.optim.Adam(groups)
    n_params = sum(p.numel() for p in gfn.parameters())
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(a.iterations):
        traj = gfn.sample_trajectories(env, n_samples=a.batch_size, save_logprobs=True)
        opt.zero_grad()
        loss = gfn.loss(env, traj)
        loss.backward()
        opt.step()
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    if a.loss == "TB":
        log_z = gfn.logZ.item()
    else:  # log F(s0), forward-looking: + log R(s0)
        s0 = env.states_from_batch_shape((1,))
        with torch.no_grad():
            log_z = gfn.logF(s0).item() + (env.log_reward(s0).item() if a.forward_looking else 0.0)
    print(json.dumps({"torchgfn": gfn_version,
                      "torch": torch.__version__, "seconds": round(seconds, 3), "cpu_seconds": round(cpu, 3), "exact_l1": exact_l1(env, pf),
                      "log_z_err": abs(log_z - env.log_partition), "params": n_params, "loss": a.loss,
                      "weighting": a.weighting if a.loss == "SubTB" else None, "lamda": a.lamda if a.loss == "SubTB" else None,
                      "forward_looking": a.forward_looking,
                      "trajectories": a.iterations * a.batch_size, "seed": a.seed, "threads": a.threads}))


if __name__ == "__main__":
    main()
