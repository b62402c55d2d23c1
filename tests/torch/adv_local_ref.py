#!/usr/bin/env python3
"""The local-group and tree advantages as the public code computes them, in torch float32
(docs/algorithms/advantages.md §1.2, §1.3). Written for tests/test_adv_local.c, which compares
fr_adv_local_group_sum and fr_adv_tree with it.

- Local groups: DanceGRPO (XueZeyue/DanceGRPO@15cc71d, fastvideo/train_grpo_flux.py, the
  `use_group` branch) and G2RPO's sum over granularities (bcmi/Granular-GRPO@04ee954,
  fastvideo/train_g2rpo_hps.py): per consecutive block, (r - r.mean()) / (r.std() + 1e-8),
  summed into torch.zeros_like.
- Tree: BranchGRPO (Fredreic1849/BranchGRPO@19fbb9f, fastvideo/train_branchgrpo_flux.py): one
  node per sampler step as run_tree_sample_step builds it (a split step gives each node
  `width` children, any other step one), node rewards as compute_node_rewards_from_leaves
  (leaf mean, or softmax over the children's edge log-probs times their rewards, a single child
  passing its reward up), advantages per depth as compute_hierarchical_advantages_by_depth.

Input (--in, little-endian int64 unless said): n_cases, then per case a kind:
  0: n_gran, B, G; float32 rewards (n_gran*B).            Output: float32 A (B).
  1: B, T, n_split, split steps (n_split), widths (n_split), prob_weighted;
     float32 rewards (B), float32 logp (n_split*B): logp[k][s] is the log-prob of the
     split-k edge on leaf s's path.                        Output: float32 A, R ((T+1)*B):
     row k is the step-depth-k node containing each leaf.
"""
import argparse
import sys

import numpy as np
import torch


class Reader:
    def __init__(self, raw):
        self.raw, self.off = raw, 0

    def i64(self, n=1):
        x = np.frombuffer(self.raw, dtype="<i8", count=n, offset=self.off)
        self.off += 8 * n
        return [int(v) for v in x]

    def f32(self, n):
        x = np.frombuffer(self.raw, dtype="<f4", count=n, offset=self.off).copy()
        self.off += 4 * n
        return torch.from_numpy(x)


def local_group_sum(rows, G):
    adv = torch.zeros_like(rows[0])
    for rewards in rows:
        group_adv = torch.zeros_like(rewards)
        for a in range(0, len(rewards), G):
            g = rewards[a:a + G]
            group_adv[a:a + G] = (g - g.mean()) / (g.std() + 1e-8)
        adv += group_adv
    return adv


class Node:
    def __init__(self, parent, first, span, log_prob):
        self.parent, self.first, self.span, self.log_prob = parent, first, span, log_prob
        self.children, self.reward, self.advantage = [], None, None
        self.depth = 0 if parent is None else parent.depth + 1
        if parent is not None:
            parent.children.append(self)

    def leaves(self):
        return [self] if not self.children else [l for c in self.children for l in c.leaves()]


def tree(B, T, splits, widths, prob, rewards, logp):
    L = int(np.prod(widths)) if widths else 1
    roots = [Node(None, t, L, None) for t in range(0, B, L)]
    current = list(roots)
    for i in range(T):
        new = []
        for node in current:
            if i in splits:
                k = splits.index(i)
                cs = node.span // widths[k]
                for c in range(widths[k]):
                    first = node.first + c * cs
                    new.append(Node(node, first, cs, logp[k][first]))
            else:
                new.append(Node(node, node.first, node.span, torch.tensor(0.0)))
        current = new
    for leaf in current:
        leaf.reward = rewards[leaf.first]
    for root in roots:
        by_depth = {}
        stack = [root]
        while stack:  # depth-first, children in order: the public collect_nodes
            n = stack.pop()
            by_depth.setdefault(n.depth, []).append(n)
            stack.extend(reversed(n.children))
        for d in reversed(range(T)):
            for n in by_depth[d]:
                if not prob:
                    n.reward = torch.stack([l.reward for l in n.leaves()]).mean()
                elif len(n.children) == 1:
                    n.reward = n.children[0].reward
                else:
                    w = torch.softmax(1.0 * torch.stack([c.log_prob for c in n.children]), dim=0)
                    n.reward = torch.sum(w * torch.stack([c.reward for c in n.children]))
        for d, nodes in by_depth.items():
            if len(nodes) <= 1:
                for n in nodes:
                    n.advantage = torch.tensor(0.0)
                continue
            r = torch.stack([n.reward for n in nodes])
            m, s = r.mean(), r.std()
            a = torch.zeros_like(r) if s < 1e-6 else (r - m) / (s + 1e-8)
            for j, n in enumerate(nodes):
                n.advantage = a[j]
    A = torch.zeros((T + 1, B), dtype=torch.float32)
    R = torch.zeros((T + 1, B), dtype=torch.float32)
    level = list(roots)
    for k in range(T + 1):
        for n in level:
            A[k, n.first:n.first + n.span] = n.advantage
            R[k, n.first:n.first + n.span] = n.reward
        level = [c for n in level for c in n.children]
    return A, R


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--in", dest="inp", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    rd = Reader(open(a.inp, "rb").read())
    out = []
    (n_cases,) = rd.i64()
    for _ in range(n_cases):
        (kind,) = rd.i64()
        if kind == 0:
            n_gran, B, G = rd.i64(3)
            rows = [rd.f32(B) for _ in range(n_gran)]
            out.append(local_group_sum(rows, G).numpy())
        elif kind == 1:
            B, T, n_split = rd.i64(3)
            splits, widths = rd.i64(n_split), rd.i64(n_split)
            (prob,) = rd.i64()
            rewards = rd.f32(B)
            logp = [rd.f32(B) for _ in range(n_split)]
            A, R = tree(B, T, splits, widths, prob, rewards, logp)
            out += [A.numpy().ravel(), R.numpy().ravel()]
        else:
            sys.exit(f"adv_local_ref: case kind {kind}")
    if rd.off != len(rd.raw):
        sys.exit(f"adv_local_ref: {len(rd.raw) - rd.off} trailing bytes in {a.inp}")
    with open(a.out, "wb") as f:
        for x in out:
            f.write(np.asarray(x, dtype="<f4").tobytes())


if __name__ == "__main__":
    main()
