#!/usr/bin/env python3
"""A reward program for flowrl: a template to copy for your own reward.

Run by flowrl as `--reward "cmd:python3 examples/reward_brightness.py [--target X,Y]"`.
flowrl starts this program once per run and sends it every batch of samples to score on
stdin; the program answers each batch on stdout with one float32 per sample. The full
format is docs/reward-protocol.md; in short (all integers little-endian u32 unless said):

  request   "FRRQ" | version (1) | batch | B | D | C | H | W | payload bytes   (36 bytes)
            payload: B int32 prompt ids
                     B*D float32 samples, sample-major; an image is (C, H, W), values in [-1, 1]
                     B prompt texts, each u32 byte length + UTF-8 bytes (no NUL)
  response  "FRRS" | batch (the request's) | B  (12 bytes), then B float32 scores

Rules: answer every request, in order, with finite scores; flush after each answer; write
logs to stderr, never stdout (anything on stdout is read as an answer); exit 0 when stdin
ends. flowrl stops the run with an error naming the batch if the program exits, crashes,
answers late (60 s by default), or answers something malformed.

The reward here:
  images (C > 0): brightness in [0, 1], the mean of (x + 1) / 2 over all pixels -- or over
                  one channel if the prompt names "red", "green" or "blue" (C == 3), to show
                  how a reward can read its prompt;
  vectors (C = 0): minus the Euclidean distance to --target (default: the origin).
"""
import argparse
import struct
import sys

import numpy as np

REQUEST_HEADER = struct.Struct("<4s8I")
RESPONSE_HEADER = struct.Struct("<4sII")
CHANNELS = {"red": 0, "green": 1, "blue": 2}


def read_exact(stream, n):
    """Exactly n bytes, or None at the end of input between requests."""
    data = stream.read(n)
    if not data:
        return None
    if len(data) != n:
        raise EOFError("input ended inside a request (%d of %d bytes)" % (len(data), n))
    return data


def read_request(stream):
    """(batch, prompt_ids (B,), samples (B, D), texts [B], (C, H, W)), or None at the end."""
    head = read_exact(stream, REQUEST_HEADER.size)
    if head is None:
        return None
    magic, version, batch, B, D, C, H, W, payload = REQUEST_HEADER.unpack(head)
    if magic != b"FRRQ" or version != 1:
        raise ValueError("not a flowrl request (magic %r, version %d)" % (magic, version))
    body = read_exact(stream, payload)
    if body is None:
        raise EOFError("input ended after a request header")
    prompt_ids = np.frombuffer(body, dtype="<i4", count=B, offset=0)
    samples = np.frombuffer(body, dtype="<f4", count=B * D, offset=4 * B).reshape(B, D)
    texts, off = [], 4 * B + 4 * B * D
    for _ in range(B):
        (n,) = struct.unpack_from("<I", body, off)
        texts.append(body[off + 4:off + 4 + n].decode("utf-8"))
        off += 4 + n
    return batch, prompt_ids, samples, texts, (C, H, W)


def score(samples, texts, dims, target):
    """One float per sample: the reward itself. Replace this function with yours."""
    C, H, W = dims
    x = samples.astype(np.float64)
    if C == 0:
        return -np.sqrt(((x - target) ** 2).sum(axis=1))
    images = (x.reshape(-1, C, H, W) + 1.0) / 2.0
    out = np.empty(len(texts))
    for b, text in enumerate(texts):
        channel = next((c for name, c in CHANNELS.items() if name in text.split()), None)
        if C == 3 and channel is not None:
            out[b] = images[b, channel].mean()
        else:
            out[b] = images[b].mean()
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--target", default=None,
                        help="comma-separated target vector for non-image tasks (default 0)")
    args = parser.parse_args()
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    n_batches = 0
    while True:
        request = read_request(stdin)
        if request is None:
            break
        batch, prompt_ids, samples, texts, dims = request
        D = samples.shape[1]
        target = (np.zeros(D) if args.target is None
                  else np.array([float(v) for v in args.target.split(",")]))
        if dims[0] == 0 and target.shape != (D,):
            raise ValueError("--target has %d values, samples have D = %d" % (target.size, D))
        scores = score(samples, texts, dims, target).astype("<f4")
        stdout.write(RESPONSE_HEADER.pack(b"FRRS", batch, len(scores)))
        stdout.write(scores.tobytes())
        stdout.flush()  # flowrl waits for the whole answer: never leave it in a buffer
        n_batches += 1
    print("reward_brightness: scored %d batches" % n_batches, file=sys.stderr)


if __name__ == "__main__":
    main()
