"""flowrl's side of the torchgfn cross-check (test_torchgfn.py against torchgfn 1.2.1,
tools/torchgfn_current_check.py against torchgfn 2.x), without torch: trajectories drawn by
flowrl's sampling rule from tabular policies, flowrl's per-step inputs of flowrl_gfn_loss, and
its gradients pushed into the tables (docs/algorithms/gfn.md §8)."""
import numpy as np

import flowrl_verify as fv


def close(got, want, what, tol):
    """|got − want| <= tol · max(1, max |want|) everywhere; NaN never passes."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, f"{what}: shape {got.shape} vs {want.shape}"
    assert np.all(np.isfinite(got)) and np.all(np.isfinite(want)), f"{what}: not finite"
    if got.size == 0:
        return 0.0
    scale = max(1.0, float(np.max(np.abs(want))))
    err = np.abs(got - want)
    worst = int(np.argmax(err))
    assert err.flat[worst] <= tol * scale, (
        f"{what}: element {np.unravel_index(worst, err.shape)}: torchgfn {got.flat[worst]!r} vs flowrl "
        f"{want.flat[worst]!r} (|diff| {err.flat[worst]:.3g} > {tol} x {scale:.3g})")
    return err.flat[worst] / scale


def masked_log_softmax(z, mask):
    """float64 log-softmax of float32 logits over the allowed entries (−inf elsewhere), as
    flowrl's trainer computes it."""
    z = np.asarray(z, np.float64)
    m = z[mask].max()
    lse = m + np.log(np.exp(z[mask] - m).sum())
    return np.where(mask, z - lse, -np.inf)


def tables(n_states, n_actions, seed):
    """float32 tables of P_F logits (the exit's lowered by 1: long trajectories that reach the
    edges), P_B logits and log F, per state."""
    rng = np.random.default_rng(seed)
    pf = rng.normal(size=(n_states, n_actions)).astype(np.float32)
    pf[:, -1] -= 1.0
    pb = rng.normal(size=(n_states, n_actions - 1)).astype(np.float32)
    F = (rng.normal(size=(n_states, 1)) + 1.0).astype(np.float32)
    return pf, pb, F


def draw(e, pf, B, seed, iteration):
    """B trajectories of flowrl's sampling rule from the P_F logits table pf (n_states, A):
    u = (Philox u32 (seed, gfn_action, iteration, b, k) + ½)·2⁻³², the first allowed action whose
    cumulative probability exceeds u; flowrl's transitions. states (B, T, D) (s_k for k < n),
    actions (B, T) (the exit last), lengths n (B,)."""
    D, A, T = e.state_dim, e.n_actions, e.max_steps
    S = np.zeros((B, T, D), np.int32)
    act = np.full((B, T), -1, np.int64)
    n = np.zeros(B, np.int64)
    for b in range(B):
        s = np.zeros(D, np.int32)
        for k in range(T):
            q = e.query(s[None])
            fwd = q["fwd"][0].astype(bool)
            p = np.exp(masked_log_softmax(pf[q["index"][0]], fwd))
            u = (float(fv.rng("u32", seed, "gfn_action", iteration, b, k)[0]) + 0.5) * 2.0 ** -32
            cum, pick = 0.0, -1
            for a in range(A):
                if fwd[a]:
                    cum += p[a]
                    pick = a
                    if u < cum:
                        break
            S[b, k], act[b, k] = s, pick
            if pick == e.exit_action:
                n[b] = k + 1
                break
            s = e.step(s[None], [pick])[0]
        assert n[b] > 0, "a trajectory did not exit"
    return S, act, n


def padded(S, act, n, sf):
    """The batch as torchgfn lays trajectories out: states (max n + 1, B, D) with s_f (sf) after
    each trajectory's last state, actions (max n, B, 1) with the dummy action −1 after its exit."""
    B, Lmax = len(n), int(n.max())
    st = np.tile(np.asarray(sf), (Lmax + 1, B, 1))
    ac = np.full((Lmax, B, 1), -1, np.int64)
    for b in range(B):
        st[:n[b], b] = S[b, :n[b]]
        ac[:n[b], b, 0] = act[b, :n[b]]
    return st, ac


class Batch:
    """flowrl's inputs of one batch of trajectories (states S (B, T, D), actions act (B, T),
    lengths n) under the tables pf, pb, F: logpf, logpb, logf (B, L), logr (B,), and the slots
    that carry flowrl's gradients back into the tables."""

    def __init__(self, e, S, act, n, pf, pb, F):
        self.e, self.S, self.act, self.n, self.pf, self.pb, self.F = e, S, act, n, pf, pb, F
        B, L = len(n), int(n.max())
        self.logpf, self.logpb, self.logf, self.logr = np.zeros((B, L)), np.zeros((B, L)), np.zeros((B, L)), np.zeros(B)
        self.slots = []  # (b, k, index of s_k, action, index of s_{k+1} or -1, P_F row, P_B row)
        for b in range(B):
            q = e.query(S[b, :n[b]])
            for k in range(n[b]):
                i, a = q["index"][k], act[b, k]
                lp = masked_log_softmax(pf[i], q["fwd"][k].astype(bool))
                self.logpf[b, k], self.logf[b, k] = lp[a], F[i, 0]
                j, pbp = -1, None
                if k + 1 < n[b]:
                    j = q["index"][k + 1]
                    lb = masked_log_softmax(pb[j], q["bwd"][k + 1].astype(bool))
                    self.logpb[b, k], pbp = lb[a], np.exp(lb)
                self.slots.append((b, k, i, a, j, np.exp(lp), pbp))
            self.logr[b] = q["log_reward"][n[b] - 1]

    def loss(self, kind, log_z=0.0, lam=0.9, weighting=0):
        """flowrl_gfn_loss of kind on this batch: {loss, grad_logpf, ...}; weighting: SubTB's
        fr_gfn_subtb_weighting (0 geometric_within)."""
        inputs = dict(len=self.n, logpf=self.logpf, logpb=self.logpb, logr=self.logr, log_z=log_z,
                      weighting=float(weighting), **{"lambda": lam})
        if kind in ("db", "subtb"):
            inputs["logf"] = self.logf
        return fv.gfn_loss(kind, **inputs)

    def table_grads(self, out):
        """flowrl's gradients in the per-step inputs pushed into the tables through the masked
        log-softmax: d log p_a / d z = onehot(a) − softmax(z)."""
        g_pf, g_pb, g_F = np.zeros(self.pf.shape), np.zeros(self.pb.shape), np.zeros(self.F.shape)
        for b, k, i, a, j, pfp, pbp in self.slots:
            g_pf[i] -= out["grad_logpf"][b, k] * pfp
            g_pf[i, a] += out["grad_logpf"][b, k]
            if j >= 0:
                g_pb[j] -= out["grad_logpb"][b, k] * pbp
                g_pb[j, a] += out["grad_logpb"][b, k]
            if "grad_logf" in out:
                g_F[i, 0] += out["grad_logf"][b, k]
        return g_pf, g_pb, g_F

    def fm(self, Ft):
        """FM with the table Ft (n_states, A) as log edge flows: flowrl_gfn_loss("fm") on every
        visited state but s0 (its parents' flows in, its allowed actions' out) and the terminal
        states, and its gradient scattered back into a table: (out, gradient table)."""
        e = self.e
        n_in, fin, n_out, fout, where_in, where_out = [], [], [], [], [], []
        for b in range(len(self.n)):
            for k in range(1, self.n[b]):
                s = self.S[b, k]
                q = e.query(s[None])
                ds = np.flatnonzero(q["bwd"][0])
                parents = e.query(e.step(np.repeat(s[None], ds.size, 0), ds, backward=True))["index"]
                n_in.append(ds.size)
                fin += [Ft[p, d] for p, d in zip(parents, ds)]
                where_in += list(zip(parents, ds))
                acts = np.flatnonzero(q["fwd"][0])
                n_out.append(acts.size)
                fout += [Ft[q["index"][0], a] for a in acts]
                where_out += [(q["index"][0], a) for a in acts]
        xi = e.query(self.S[np.arange(len(self.n)), self.n - 1])["index"]
        out = fv.gfn_loss("fm", n_in=n_in, fin=fin, n_out=n_out, fout=fout, fexit=Ft[xi, e.exit_action],
                          logr=self.logr, alpha=1.0)
        g = np.zeros(Ft.shape)
        for (p, d), v in zip(where_in, out["grad_fin"]):
            g[p, d] += v
        for (i, a), v in zip(where_out, out["grad_fout"]):
            g[i, a] += v
        for i, v in zip(xi, out["grad_fexit"]):
            g[i, e.exit_action] += v
        return out, g
