#!/usr/bin/env python3
"""Any Gymnasium environment with a continuous (Box) action space as a flowrl environment
program (docs/env-protocol.md):

    flowrl expert --env 'cmd:python3 tools/gym_env.py Pendulum-v1' --expert pendulum --out p.safetensors

    python3 tools/gym_env.py ENV_ID [--max-steps N] [--reset-options JSON] [--make-kwargs JSON]
                             [--max-envs N]

Messages arrive on stdin, answers go to stdout; logs and Gymnasium's warnings go to stderr.
Episodes are independent: each episode number gets its own environment object (at most
--max-envs are kept; the oldest is reused), so flowrl may interleave episodes. Reset of
(seed, episode) calls env.reset(seed=seed * 2**32 + episode, options=--reset-options):
Gymnasium's PCG64 draws the start, so it is a function of (seed, episode) but not flowrl's
built-in reset (docs/env-protocol.md §5). The episode limit is the spec's max_episode_steps
(or --max-steps): flowrl truncates there itself, so Gymnasium's `truncated` is not sent.
"""
import argparse
import json
import struct
import sys

import numpy as np

VERSION = 1


def fail(msg):
    sys.stderr.write("gym_env.py: %s\n" % msg)
    sys.stderr.flush()
    sys.exit(1)


def read_exact(f, n):
    b = f.read(n)
    if b is None or len(b) < n:
        if not b:
            return None
        fail("message cut short: %d of %d bytes" % (len(b), n))
    return b


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("env_id")
    ap.add_argument("--max-steps", type=int, default=0, help="episode limit (default: the spec's)")
    ap.add_argument("--reset-options", default="", help="JSON object passed as env.reset(options=...)")
    ap.add_argument("--make-kwargs", default="", help="JSON object passed to gymnasium.make")
    ap.add_argument("--max-envs", type=int, default=256, help="environment objects kept (one per live episode)")
    a = ap.parse_args()

    import gymnasium as gym

    kwargs = json.loads(a.make_kwargs) if a.make_kwargs else {}
    options = json.loads(a.reset_options) if a.reset_options else None

    def make():
        return gym.make(a.env_id, **kwargs)

    probe = make()
    if not isinstance(probe.action_space, gym.spaces.Box):
        fail("%s: action space %s is not a Box (continuous)" % (a.env_id, probe.action_space))
    obs_dim = int(np.prod(probe.observation_space.shape))
    act_shape = probe.action_space.shape
    act_dim = int(np.prod(act_shape))
    max_steps = a.max_steps or (probe.spec.max_episode_steps if probe.spec else None) or 0
    if max_steps < 1:
        fail("%s has no max_episode_steps: give --max-steps N" % a.env_id)
    low = np.asarray(probe.action_space.low, dtype="<f4").ravel()
    high = np.asarray(probe.action_space.high, dtype="<f4").ravel()
    envs = {}  # episode -> [env, next step index]
    spare = [probe]

    fin, fout = sys.stdin.buffer, sys.stdout.buffer
    while True:
        h = read_exact(fin, 8)
        if h is None:
            return  # end of input: the run is over
        magic, seq = h[:4], struct.unpack("<I", h[4:])[0]
        if magic == b"FEHI":
            (ver,) = struct.unpack("<I", read_exact(fin, 4))
            if ver != VERSION:
                fail("flowrl speaks protocol version %d, this adapter %d" % (ver, VERSION))
            fout.write(b"FEHO" + struct.pack("<5I", seq, VERSION, obs_dim, act_dim, max_steps) + low.tobytes() +
                       high.tobytes())
        elif magic == b"FERS":
            seed, episode = struct.unpack("<2I", read_exact(fin, 8))
            if episode in envs:
                env = envs.pop(episode)[0]
            elif spare:
                env = spare.pop()
            elif len(envs) >= a.max_envs:
                env = envs.pop(next(iter(envs)))[0]  # the oldest episode's object
            else:
                env = make()
            envs[episode] = [env, 0]
            obs, _ = env.reset(seed=seed * 2**32 + episode, options=options)
            obs = np.asarray(obs, dtype="<f4").ravel()
            fout.write(b"FERO" + struct.pack("<2I", seq, obs.size) + obs.tobytes())
        elif magic == b"FEST":
            episode, t, n = struct.unpack("<3I", read_exact(fin, 12))
            action = np.frombuffer(read_exact(fin, 4 * n), dtype="<f4").astype(np.float32)
            if episode not in envs:
                fail("step of episode %d before its reset" % episode)
            slot = envs[episode]
            if t != slot[1]:
                fail("episode %d: step %d, expected step %d" % (episode, t, slot[1]))
            if n != act_dim:
                fail("episode %d step %d: %d action values, expected %d" % (episode, t, n, act_dim))
            obs, reward, terminated, _truncated, _ = slot[0].step(action.reshape(act_shape))
            slot[1] += 1
            obs = np.asarray(obs, dtype="<f4").ravel()
            fout.write(b"FESO" + struct.pack("<3Id", seq, obs.size, 1 if terminated else 0, float(reward)) +
                       obs.tobytes())
        else:
            fail("unknown message %r" % magic)
        fout.flush()


if __name__ == "__main__":
    main()
