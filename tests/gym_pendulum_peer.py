#!/usr/bin/env python3
"""Peer test of flowrl's built-in pendulum against Gymnasium's own Pendulum-v1 (run by
tests/test_env_ctl.c with the peer venv's python, which ./configure --install-deps builds).

    gym_pendulum_peer.py DEMOS.safetensors

DEMOS holds episodes of flowrl's `pendulum` with the environment's float64 state at every
step (docs/demos.md). Gymnasium's reset draws from NumPy's PCG64 and flowrl's from Philox, so
instead of seeding, every step starts Gymnasium from flowrl's own state (env.unwrapped.state =
state[i]) and takes flowrl's action; then:
  reward      within 2 ulp, and bitwise on almost every step: no transcendental function
              (angle_normalize, squares, sums), but NumPy's scalar `x**2` is the C library's
              pow, within 0.52 ulp of x² (glibc's bound; measured 0.5001 where x·x is 0.4999),
              where flowrl takes the correctly rounded x·x;
  next state  |Δθ̇|, |Δθ| <= STATE_TOL: θ̇' takes (3g/2)·sin θ·dt, and NumPy's float64 sin is
              SVML's on AVX512 CPUs (measured up to 3 ulp from glibc's; flowrl's within 1 ulp),
              so 15 · 4 ulp(1) · 0.05 < 1e-15 plus one rounding of θ̇' and θ' (|θ| < 128);
  observation |Δ| <= 1 float32 ulp (cos, sin of θ' rounded to float32).
Prints the counts of bitwise-equal values and the largest differences; exit 1 on a failure.
"""
import json
import struct
import sys

import numpy as np

STATE_TOL = 1e-13


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    head = json.loads(raw[8:8 + n])
    meta = head.pop("__metadata__", {})
    dt = {"F32": "<f4", "F64": "<f8", "U8": "u1", "I64": "<i8"}
    out = {}
    for name, e in head.items():
        a, b = e["data_offsets"]
        out[name] = np.frombuffer(raw[8 + n + a:8 + n + b], dtype=dt[e["dtype"]]).reshape(e["shape"])
    return meta, out


def main():
    import gymnasium as gym

    meta, t = read_safetensors(sys.argv[1])
    assert meta["env"] == "pendulum" and int(meta["state_dim"]) == 2, meta
    env = gym.make("Pendulum-v1").unwrapped
    env.reset(seed=0)
    obs, act, rew, st, starts, fin = t["obs"], t["action"], t["reward"], t["state"], t["episode_start"], t["final_obs"]
    n = len(rew)
    eq_r = eq_s = eq_o = n_s = ties = 0
    max_ds, max_do = 0.0, 0.0
    bad = []
    for e in range(len(starts) - 1):
        for i in range(starts[e], starts[e + 1]):
            env.state = st[i].astype(np.float64).copy()
            o, r, _, _, _ = env.step(act[i].astype(np.float32).copy())
            if r == rew[i]:
                eq_r += 1
            elif abs(r - rew[i]) <= 2 * np.spacing(abs(rew[i])):
                ties += 1
            elif len(bad) < 5:
                bad.append("step %d: reward %r, flowrl %r" % (i, r, rew[i]))
            want_o = obs[i + 1] if i + 1 < starts[e + 1] else fin[e]
            ulps = np.abs(o.astype(np.float64) - want_o) / np.spacing(np.maximum(np.abs(o), np.abs(want_o)))
            eq_o += int(np.all(o == want_o))
            max_do = max(max_do, float(ulps.max()))
            if ulps.max() > 1.0 and len(bad) < 5:
                bad.append("step %d: obs %r, flowrl %r" % (i, o, want_o))
            if i + 1 < starts[e + 1]:
                n_s += 1
                d = np.abs(env.state - st[i + 1])
                eq_s += int(np.all(d == 0))
                max_ds = max(max_ds, float(d.max()))
                if d.max() > STATE_TOL and len(bad) < 5:
                    bad.append("step %d: state %r, flowrl %r" % (i, env.state, st[i + 1]))
    print("gym_pendulum_peer: gymnasium %s numpy %s: %d steps; rewards bitwise %d/%d (+%d within 2 ulp); next "
          "states bitwise %d/%d (max |diff| %.3g); observations bitwise %d/%d (max %.2f float32 ulp)" %
          (gym.__version__, np.__version__, n, eq_r, n, ties, eq_s, n_s, max_ds, eq_o, n, max_do))
    for b in bad:
        print("  " + b)
    sys.exit(0 if (eq_r + ties == n and max_ds <= STATE_TOL and max_do <= 1.0) else 1)


if __name__ == "__main__":
    main()
