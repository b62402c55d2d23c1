#!/usr/bin/env python3
"""Test helper for tests/test_reward_cmd.c: a reward program (docs/reward-protocol.md) in
pure standard-library Python, with one well-behaved mode and one mode per failure.

    python3 mock_reward.py MODE [ARG]

Score of sample b (mode ok): prompt_id + 0.25 * len(text bytes) + sum_d x[d] * (d + 1),
summed in double in order d = 0, 1, ... and rounded once to float32, so that the test can
compute the same bits in C.

Modes
  ok              answer every batch
  log             ok, and write "mock_reward: batch N" to stderr for each batch
  exit            exit with status 3 without reading anything
  exit_after K    answer K batches, then exit 0
  segv K          answer batches before the K-th request, then kill itself with SIGSEGV
  hang PIDFILE    write its pid to PIDFILE, read the request, never answer
  short_exit      answer with the right header but one score too few, then exit 0
  short_count     answer B-1 scores with B-1 in the header, then go on
  nan             score 1 is NaN
  const           every score is 1.0 (a reward that separates nothing)
  inf             score 0 is +inf
  wrong_batch     answer with batch index + 1
  garbage         print a log line on stdout at start-up, then behave as ok
  extra           a correct answer followed by a stray line on stdout
  ignore_eof      answer every batch; at end of input, sleep instead of exiting
  v1_only         ok, but refuse a gradient request (version 2) as a version-1 program does

Gradient requests (version 2, docs/reward-protocol.md §6) are answered "FRRG" with the scores
and d score_b / d x[b, d] = d + 1 (the score is linear in x); mode nan makes gradient 1 of
sample 0 NaN instead.
"""
import os
import signal
import struct
import sys
import time

REQ_HEADER = struct.Struct("<4s8I")  # magic, version, batch, B, D, C, H, W, payload bytes


def read_exact(f, n):
    """n bytes, or None at a clean end of input; a partial message is an error."""
    buf = f.read(n)
    if not buf:
        return None
    if len(buf) != n:
        sys.stderr.write("mock_reward: truncated request\n")
        sys.exit(4)
    return buf


def read_request(f):
    head = read_exact(f, REQ_HEADER.size)
    if head is None:
        return None
    magic, version, batch, B, D, C, H, W, payload = REQ_HEADER.unpack(head)
    if magic != b"FRRQ" or version not in (1, 2) or (version == 2 and sys.argv[1] == "v1_only"):
        sys.stderr.write("mock_reward: bad magic %r or version %d\n" % (magic, version))
        sys.exit(5)
    if C and C * H * W != D:
        sys.stderr.write("mock_reward: C*H*W = %d != D = %d\n" % (C * H * W, D))
        sys.exit(6)
    body = read_exact(f, payload)
    ids = struct.unpack_from("<%di" % B, body, 0)
    x = struct.unpack_from("<%df" % (B * D), body, 4 * B)
    off = 4 * B + 4 * B * D
    texts = []
    for _ in range(B):
        (n,) = struct.unpack_from("<I", body, off)
        texts.append(body[off + 4:off + 4 + n])
        off += 4 + n
    if off != payload:
        sys.stderr.write("mock_reward: payload %d bytes, parsed %d\n" % (payload, off))
        sys.exit(7)
    return batch, B, D, ids, x, texts, version


def scores_of(B, D, ids, x, texts):
    out = []
    for b in range(B):
        acc = float(ids[b]) + 0.25 * len(texts[b])
        for d in range(D):
            acc += x[b * D + d] * (d + 1)
        out.append(acc)
    return out


def answer(out, batch, scores, count=None, tail=b"", grads=None):
    """One write (pipe writes up to 4 KiB are atomic): the reader sees a tail at once."""
    n = len(scores) if count is None else count
    magic = b"FRRS" if grads is None else b"FRRG"
    g = b"" if grads is None else struct.pack("<%df" % len(grads), *grads)
    out.write(struct.pack("<4sII", magic, batch, n)
              + struct.pack("<%df" % len(scores), *scores) + g + tail)
    out.flush()


def main():
    mode = sys.argv[1]
    arg = sys.argv[2] if len(sys.argv) > 2 else None
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    if mode == "exit":
        sys.exit(3)
    if mode == "garbage":
        print("loading model weights ...", flush=True)
    if mode == "hang":
        with open(arg, "w") as f:
            f.write("%d\n" % os.getpid())
    n_req = 0
    while True:
        req = read_request(inp)
        if req is None:
            if mode == "ignore_eof":
                time.sleep(3600)
            return
        batch, B, D, ids, x, texts, version = req
        if mode == "exit_after" and n_req == int(arg):
            sys.exit(0)
        if mode == "segv" and n_req == int(arg):
            os.kill(os.getpid(), signal.SIGSEGV)
        if mode == "hang":
            time.sleep(3600)
        n_req += 1
        s = scores_of(B, D, ids, x, texts)
        if mode == "log":
            sys.stderr.write("mock_reward: batch %d\n" % batch)
            sys.stderr.flush()
        if mode == "short_exit":
            answer(out, batch, s[:-1], count=B)
            sys.exit(0)
        if mode == "short_count":
            s = s[:-1]
        if mode == "const":
            s = [1.0] * len(s)
        if mode == "nan":
            s[1] = float("nan")
        if mode == "inf":
            s[0] = float("inf")
        if mode == "wrong_batch":
            batch += 1
        grads = None
        if version == 2:
            grads = [float(d + 1) for _ in range(B) for d in range(D)]
            if mode == "nan":
                s[1] = 1.0
                grads[1] = float("nan")
        answer(out, batch, s, tail=b"done\n" if mode == "extra" else b"", grads=grads)


if __name__ == "__main__":
    main()
