"""The later GFlowNet losses through the C API (capi.h flowrl_gfn_loss; docs/algorithms/gfn.md §3, §9)
against a direct torch float64 implementation written from their definitions (spec gflownets.md §3,
§9; torchgfn's and yhangchen/OP-GFN's formulas), with torch autograd for the gradients: MDB, RTB,
OP-GFN (torch's own CrossEntropyLoss with probability targets, as ordering_loss calls it),
forward-looking DB and SubTB, every SubTB weighting, the cosh and Linex regressions (TB, DB, ZVar,
RTB). On random batches of trajectories of lengths 1..L; the loss and every gradient agree within
1e-12 relative to max(1, |value|) (float64 on both sides, sums in another order)."""
import numpy as np
import pytest

import flowrl_verify as fv
from conftest import need_torch

torch = need_torch()

WEIGHTINGS = {"geometric_within": 0, "equal_within": 1, "equal": 2, "geometric": 3, "DB": 4, "ModifiedDB": 5,
              "TB": 6}  # fr_gfn_subtb_weighting
REGRESSIONS = {"square": 0, "cosh": 1, "linex": 2}  # fr_gfn_regression
TOL = 1e-12


def batch(seed, B=6, L=5):
    rng = np.random.default_rng(seed)
    lens = rng.integers(1, L + 1, size=B).astype(np.int32)
    lens[0], lens[1] = 1, L  # a trajectory that exits at s0 and one of the longest length
    a = {k: rng.normal(-1.0, 0.7, size=(B, L)) for k in ("logpf", "logpb", "logf", "logrs", "logpf_exit",
                                                           "logprior")}
    util = rng.integers(0, 3, size=B).astype(np.float64)  # ties among them
    return dict(len=lens, logr=rng.normal(0.0, 1.0, size=B), util=util,
                perm=rng.permutation(B).astype(np.int32), **a)


def g_of(r, regression, alpha):
    if regression == "square":
        return r ** 2
    if regression == "cosh":
        return torch.exp(r) + torch.exp(-r) - 2.0
    return (torch.exp(alpha * r) - alpha * r - 1.0) / alpha ** 2


class Ref:
    """The losses from their definitions, on leaf tensors that autograd differentiates."""

    def __init__(self, b, log_z):
        self.n = [int(x) for x in b["len"]]
        self.t = {k: torch.tensor(b[k], dtype=torch.float64, requires_grad=True)
                  for k in ("logpf", "logpb", "logf", "logpf_exit")}
        self.c = {k: torch.tensor(b[k], dtype=torch.float64) for k in ("logrs", "logprior", "logr", "util")}
        self.perm = [int(x) for x in b["perm"]]
        self.log_z = torch.tensor(log_z, dtype=torch.float64, requires_grad=True)

    def span(self, i, p, j):
        """Σ_{p<=t<j} log P_F − log P_B of trajectory i (the exit edge has P_B = 1)."""
        n, pf, pb = self.n[i], self.t["logpf"][i], self.t["logpb"][i]
        return sum(pf[t] - (pb[t] if t < n - 1 else 0.0) for t in range(p, j))

    def flow(self, i, j, fl):
        if j == self.n[i]:
            return self.c["logr"][i]
        return self.t["logf"][i, j] + (self.c["logrs"][i, j] if fl else 0.0)

    def tb(self, reg, alpha):
        return torch.stack([g_of(self.log_z + self.span(i, 0, n) - self.c["logr"][i], reg, alpha)
                            for i, n in enumerate(self.n)]).mean()

    def zvar(self, reg, alpha):
        s = torch.stack([self.span(i, 0, n) - self.c["logr"][i] for i, n in enumerate(self.n)])
        return g_of(s - s.mean(), reg, alpha).mean()

    def sub(self, i, p, j, fl):
        return self.flow(i, p, fl) + self.span(i, p, j) - self.flow(i, j, fl)

    def db(self, reg, alpha, fl):
        return torch.stack([g_of(self.sub(i, t, t + 1, fl), reg, alpha)
                            for i, n in enumerate(self.n) for t in range(n)]).mean()

    def subtb(self, weighting, lam, fl):
        """torchgfn SubTBGFlowNet's weightings (spec §3.7), squares."""
        B, ns = len(self.n), self.n
        if weighting == "TB":
            return torch.stack([(self.flow(i, 0, fl) + self.span(i, 0, n) - self.c["logr"][i]) ** 2
                                for i, n in enumerate(ns)]).mean()
        if weighting == "DB":
            return self.db("square", 1.0, fl)
        if weighting == "ModifiedDB":
            return sum(sum(self.sub(i, t, t + 1, fl) ** 2 for t in range(n)) / n for i, n in enumerate(ns)) / B
        if weighting == "geometric_within":
            return sum(sum(lam ** (j - p - 1) * self.sub(i, p, j, fl) ** 2 for p in range(n) for j in range(p + 1, n + 1))
                       / sum((n - m) * lam ** m for m in range(n)) for i, n in enumerate(ns)) / B
        if weighting == "equal_within":
            return sum(torch.stack([self.sub(i, p, j, fl) ** 2 for p in range(n) for j in range(p + 1, n + 1)]).mean()
                       for i, n in enumerate(ns)) / B
        every = [(i, p, j) for i, n in enumerate(ns) for p in range(n) for j in range(p + 1, n + 1)]
        if weighting == "equal":
            return torch.stack([self.sub(i, p, j, fl) ** 2 for i, p, j in every]).mean()
        assert weighting == "geometric"
        maxlen = max(ns)
        total = 0.0
        for k in range(1, maxlen + 1):
            rk = [self.sub(i, p, j, fl) ** 2 for i, p, j in every if j - p == k]
            total = total + lam ** (k - 1) * (1 - lam) / (1 - lam ** maxlen) * torch.stack(rk).mean()
        return total

    def mdb(self, reg, alpha):
        rs, pf, pb, px = self.c["logrs"], self.t["logpf"], self.t["logpb"], self.t["logpf_exit"]
        r = [(rs[i, t] + pf[i, t] + px[i, t + 1]) - (rs[i, t + 1] + pb[i, t] + px[i, t])
             for i, n in enumerate(self.n) for t in range(n - 1)]
        return g_of(torch.stack(r), reg, alpha).mean()

    def rtb(self, reg, alpha, beta):
        pf, prior = self.t["logpf"], self.c["logprior"]
        r = torch.stack([self.log_z + sum(pf[i, t] - prior[i, t] for t in range(n)) - beta * self.c["logr"][i]
                         for i, n in enumerate(self.n)])
        return (0.5 * r ** 2).mean() if reg == "square" else g_of(r, reg, alpha).mean()

    def op(self):
        """yhangchen/OP-GFN ordering_loss: R̂ = log Z + Σ log P_F − Σ log P_B, pairs (b, perm[b]), soft labels."""
        rh = torch.stack([self.log_z + self.span(i, 0, n) for i, n in enumerate(self.n)])
        u = self.c["util"]
        pr = torch.stack([rh, rh[self.perm]], dim=1)
        up = u[self.perm]
        y = ((u > up).double() + (u > up - 1e-6).double()) / 2.0
        return torch.nn.CrossEntropyLoss()(pr, torch.stack([y, 1 - y], dim=1))

    def grads(self, loss):
        loss.backward()
        out = {"grad_" + k: (v.grad.numpy() if v.grad is not None else np.zeros(v.shape)) for k, v in self.t.items()}
        out["grad_log_z"] = self.log_z.grad.item() if self.log_z.grad is not None else 0.0
        return out


def compare(kind, b, ref_loss, ref, flowrl_out, used):
    close(flowrl_out["loss"].item(), ref_loss.item(), f"{kind}: loss")
    want = ref.grads(ref_loss)
    for name in used:
        got = flowrl_out[name]
        w = want[name]
        scale = max(1.0, float(np.max(np.abs(w))))
        err = float(np.max(np.abs(np.asarray(got) - w))) / scale
        assert err <= TOL, f"{kind}: {name} differs by {err:.3g} (relative)"


def close(got, want, what):
    assert abs(got - want) <= TOL * max(1.0, abs(want)), f"{what}: flowrl {got!r}, reference {want!r}"


def inputs(b, names, **scalars):
    d = {k: b[k] for k in ("len", "logpf", "logpb", "logr")}
    d.update({k: b[k] for k in names})
    d.update(scalars)
    return d


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("reg", ["square", "cosh", "linex"])
def test_regressions_tb_db_zvar(seed, reg):
    b = batch(seed)
    alpha = -0.7
    sc = dict(log_z=0.4, regression=float(REGRESSIONS[reg]), linex_alpha=alpha)
    for kind, names, fl in (("tb", (), 0), ("zvar", (), 0), ("db", ("logf",), 0), ("db", ("logf", "logrs"), 1)):
        ref = Ref(b, 0.4)
        loss = {"tb": lambda: ref.tb(reg, alpha), "zvar": lambda: ref.zvar(reg, alpha),
                "db": lambda: ref.db(reg, alpha, fl)}[kind]()
        out = fv.gfn_loss(kind, **inputs(b, names, forward_looking=float(fl), **sc))
        used = ["grad_logpf", "grad_logpb"] + (["grad_logf"] if "logf" in names else [])
        compare(f"{kind} ({reg}, forward-looking {fl})", b, loss, ref, out, used)
        if kind == "tb":
            close(out["grad_log_z"].item(), ref.log_z.grad.item(), f"tb ({reg}): grad_log_z")


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("weighting", list(WEIGHTINGS))
@pytest.mark.parametrize("fl", [0, 1])
def test_subtb_weightings(seed, weighting, fl):
    b = batch(seed)
    lam = 0.9 if weighting != "geometric_within" else 1.7
    ref = Ref(b, 0.0)
    loss = ref.subtb(weighting, lam, fl)
    out = fv.gfn_loss("subtb", **inputs(b, ("logf", "logrs"), weighting=float(WEIGHTINGS[weighting]),
                                        forward_looking=float(fl), **{"lambda": lam}))
    compare(f"subtb {weighting} (forward-looking {fl})", b, loss, ref, out, ["grad_logpf", "grad_logpb", "grad_logf"])


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("reg", ["square", "linex"])
def test_mdb_rtb(seed, reg):
    b = batch(seed)
    alpha = 0.6
    ref = Ref(b, 0.0)
    out = fv.gfn_loss("mdb", **inputs(b, ("logrs", "logpf_exit"), regression=float(REGRESSIONS[reg]),
                                      linex_alpha=alpha))
    compare(f"mdb ({reg})", b, ref.mdb(reg, alpha), ref, out, ["grad_logpf", "grad_logpb", "grad_logpf_exit"])
    ref = Ref(b, 1.3)
    out = fv.gfn_loss("rtb", **inputs(b, ("logprior",), log_z=1.3, beta=2.5, regression=float(REGRESSIONS[reg]),
                                      linex_alpha=alpha))
    compare(f"rtb ({reg})", b, ref.rtb(reg, alpha, 2.5), ref, out, ["grad_logpf"])
    close(out["grad_log_z"].item(), ref.log_z.grad.item(), f"rtb ({reg}): grad_log_z")


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_op(seed):
    b = batch(seed, B=8)
    ref = Ref(b, 0.7)
    loss = ref.op()
    out = fv.gfn_loss("op", **inputs(b, ("perm", "util"), log_z=0.7))
    compare("op", b, loss, ref, out, ["grad_logpf", "grad_logpb"])
    assert ref.log_z.grad.item() == pytest.approx(0.0, abs=1e-15) and out["grad_log_z"].item() == 0.0  # log Z cancels


def test_a_changed_formula_fails():
    """The comparison catches a wrong loss: Linex at another alpha, RTB at another beta."""
    b = batch(5)
    ref = Ref(b, 0.4)
    out = fv.gfn_loss("tb", **inputs(b, (), log_z=0.4, regression=2.0, linex_alpha=0.5))
    with pytest.raises(AssertionError):
        compare("tb linex", b, ref.tb("linex", 0.55), ref, out, ["grad_logpf"])
    ref = Ref(b, 0.0)
    out = fv.gfn_loss("rtb", **inputs(b, ("logprior",), beta=2.0))
    with pytest.raises(AssertionError):
        compare("rtb", b, ref.rtb("square", 1.0, 2.01), ref, out, ["grad_logpf"])
