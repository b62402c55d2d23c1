#!/usr/bin/env python3
"""Test helper for tests/test_env_ctl.c: an environment program (docs/env-protocol.md) in
standard-library Python, well-behaved in mode ok and with one failure per other mode.

    python3 mock_env.py MODE

The environment (mode ok): obs_dim 3, action_dim 2, max_steps 5, bounds [-1, 1].
reset(seed, episode) -> obs (seed % 100, episode, 0); step t with action a ->
obs (t + 1, a0, a1), reward a0 + 2 a1 (float64), done when t + 1 == 4 and the episode is odd.

Modes: ok, exit (status 3 before the hello), segv (SIGSEGV at the first step), hang (never
answers the first step), version (hello says version 2), dims (reset answers 2 values),
nan_obs (a step's obs[1] is NaN), inf_reward (a step's reward is +inf), magic (reset answers
'XXXX'), seq (a step's answer echoes the wrong message number), short (a step's answer stops
after one observation value, then exit 0), extra (a stray line after the reset's answer),
done (a step's done flag is 7), garbage (a line on stdout before reading anything), process (the
process id in every observation: episodes that a fresh process cannot replay).
"""
import os
import signal
import struct
import sys
import time


def main():
    mode = sys.argv[1]
    fin, fout = sys.stdin.buffer, sys.stdout.buffer
    if mode == "exit":
        sys.exit(3)
    if mode == "garbage":
        fout.write(b"starting up\n")
        fout.flush()
    while True:
        h = fin.read(8)
        if len(h) < 8:
            return
        magic, seq = h[:4], struct.unpack("<I", h[4:])[0]
        if magic == b"FEHI":
            fin.read(4)
            ver = 2 if mode == "version" else 1
            out = b"FEHO" + struct.pack("<5I", seq, ver, 3, 2, 5) + struct.pack("<4f", -1, -1, 1, 1)
        elif magic == b"FERS":
            seed, ep = struct.unpack("<2I", fin.read(8))
            obs = [float(seed % 100), float(ep), float(os.getpid() % 65536) if mode == "process" else 0.0]
            if mode == "dims":
                obs = obs[:2]
            out = (b"XXXX" if mode == "magic" else b"FERO") + struct.pack("<2I", seq, len(obs)) + struct.pack(
                "<%df" % len(obs), *obs)
            if mode == "extra":
                out += b"log\n"
        elif magic == b"FEST":
            ep, t, n = struct.unpack("<3I", fin.read(12))
            a = struct.unpack("<%df" % n, fin.read(4 * n))
            if mode == "segv":
                os.kill(os.getpid(), signal.SIGSEGV)
            if mode == "hang":
                time.sleep(60)
            obs = [float(t + 1), a[0], a[1]]
            reward = a[0] + 2.0 * a[1]
            done = 1 if (t + 1 == 4 and ep % 2 == 1) else 0
            if mode == "process":
                obs[0] += float(os.getpid() % 65536)
            if mode == "nan_obs":
                obs[1] = float("nan")
            if mode == "inf_reward":
                reward = float("inf")
            if mode == "done":
                done = 7
            if mode == "seq":
                seq += 1
            out = b"FESO" + struct.pack("<3Id", seq, 3, done, reward) + struct.pack("<3f", *obs)
            if mode == "short":
                fout.write(out[:28])
                fout.flush()
                sys.exit(0)
        else:
            sys.stderr.write("mock_env: unknown message %r\n" % magic)
            sys.exit(1)
        fout.write(out)
        fout.flush()


if __name__ == "__main__":
    main()
