"""LoRA (docs/lora.md): flowrl's LoRA linear layer against a PyTorch re-implementation of PEFT's
(peft@5d602fd src/peft/tuners/lora/layer.py Linear.forward: result + lora_B(lora_A(x)) * scaling)
on the weights of the golden case lora.linear, and a LoRA run's adapter file read and rewritten with
numpy alone (keys and shapes as docs/lora.md documents them), then loaded back into the base by
`flowrl eval --adapter`. torch is a test dependency (Debian python3-torch, ./configure --install-deps).

Tolerance of the PyTorch comparison: 1e-5 absolute + 1e-5 relative. flowrl rounds in another order
(it scales z A^T before B, and continues y's fmaf chain over r, flowrl/linear.h), PyTorch's CPU GEMM
sums in its own order; every value is a sum of at most 19 products of magnitude <= 1 (z, W, dy in
[-1, 1], A and B in [-0.5, 0.5], scale 2), so two float orders differ by at most ~2 * 19 * 2^-24 * 13
~ 3e-5 in the worst case and by a few 1e-7 in practice; 1e-5 + 1e-5 |want| holds that with room and
fails any error in a formula (a missing scale moves y by 0.1 or more)."""
import json
import struct

import numpy as np

import flowrl_verify as fv
from conftest import cli_in, need_torch, tiny_base

torch = need_torch()

RTOL = ATOL = 1e-5


def peft_lora_linear(z, weight, bias, lora_A, lora_B, alpha, r, dy):
    """PEFT's LoRA Linear, frozen base, as a PyTorch user writes it: y and the gradients of
    z, lora_A.weight and lora_B.weight given dL/dy = dy."""
    n, k = weight.shape
    base = torch.nn.Linear(k, n)
    a = torch.nn.Linear(k, r, bias=False)
    b = torch.nn.Linear(r, n, bias=False)
    with torch.no_grad():
        base.weight.copy_(torch.as_tensor(weight))
        base.bias.copy_(torch.as_tensor(bias))
        a.weight.copy_(torch.as_tensor(lora_A))
        b.weight.copy_(torch.as_tensor(lora_B))
    base.requires_grad_(False)
    x = torch.as_tensor(z).clone().requires_grad_(True)
    scaling = alpha / r
    y = base(x) + b(a(x)) * scaling
    y.backward(torch.as_tensor(dy))
    return {"y": y.detach().numpy(), "dz": x.grad.numpy(), "grad.lora_A": a.weight.grad.numpy(),
            "grad.lora_B": b.weight.grad.numpy()}


def test_lora_linear_matches_pytorch():
    c = fv.load("lora.linear")
    i = c.inputs
    got = peft_lora_linear(i["z"], i["weight"], i["bias"], i["lora_A"], i["lora_B"], float(i["alpha"]),
                           int(c.params["rank"]), i["dy"])
    for name, want in got.items():
        msg = fv.compare(c.outputs[name], want, rtol=RTOL, atol=ATOL, label=name, names=("flowrl", "pytorch"))
        assert msg is None, msg
    # the comparison is not blind: without the scale the layer is another one
    wrong = peft_lora_linear(i["z"], i["weight"], i["bias"], i["lora_A"], i["lora_B"], 1.0 * int(c.params["rank"]),
                             int(c.params["rank"]), i["dy"])
    assert np.max(np.abs(wrong["y"] - c.outputs["y"])) > 0.05


# ---- the adapter file through numpy alone --------------------------------------------------------

DT = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32, "U8": np.uint8}


def st_read(path):
    """(tensors, metadata) of a safetensors file: 8-byte little-endian header length, JSON header, data."""
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    head = json.loads(raw[8:8 + n])
    meta = head.pop("__metadata__", {})
    data = raw[8 + n:]
    out = {}
    for k, v in head.items():
        lo, hi = v["data_offsets"]
        out[k] = np.frombuffer(data[lo:hi], dtype=DT[v["dtype"]]).reshape(v["shape"]).copy()
    return out, meta


def st_write(path, tensors, meta):
    """The inverse of st_read (tensors in sorted key order, 8-byte aligned header)."""
    head, off, blobs = {"__metadata__": meta}, 0, []
    for k in sorted(tensors):
        b = np.ascontiguousarray(tensors[k], dtype=np.float32).tobytes()
        head[k] = {"dtype": "F32", "shape": list(tensors[k].shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    h = json.dumps(head).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def test_adapter_file_roundtrip_numpy(tmp_path):
    cli = cli_in(tmp_path)
    tiny_base(cli)
    cli("train", "--algo", "flow-grpo", "--base", "base.safetensors", "--out", "run", "--epochs", "2",
        "--eval-n", "0", "--lora-rank", "2", "--lora-alpha", "4", "--lr", "0.01")
    ad, meta = st_read(str(tmp_path / "run" / "adapter_model.safetensors"))
    base, _ = st_read(str(tmp_path / "base.safetensors"))
    assert meta["lora.rank"] == "2" and meta["lora.alpha"] == "4" and meta["lora.adapter"] == "default"
    mods = meta["lora.targets"].split(",")
    assert mods == ["blocks.0.fc1", "blocks.0.fc2"]  # the MLP's default targets, one block
    want = set()
    for m in mods:
        n, k = base[m + ".weight"].shape
        a, b = ad[f"base_model.model.{m}.lora_A.weight"], ad[f"base_model.model.{m}.lora_B.weight"]
        assert a.shape == (2, k) and b.shape == (n, 2), (m, a.shape, b.shape)
        assert np.all(np.abs(a) <= 1 / np.sqrt(k) + 0.05)  # kaiming-uniform init, a few updates away
        assert np.any(b != 0)  # trained (B starts at 0)
        want |= {f"base_model.model.{m}.lora_A.weight", f"base_model.model.{m}.lora_B.weight"}
    assert set(ad) == want
    # rewritten by numpy (no digests): the same values load back; B = 0 is the base itself
    plain = {k: v for k, v in meta.items() if not k.startswith("digest.")}
    st_write(str(tmp_path / "same.safetensors"), ad, plain)
    st_write(str(tmp_path / "zero.safetensors"),
             {k: (v * 0 if ".lora_B." in k else v) for k, v in ad.items()}, plain)

    def score(*extra):
        out = json.loads(cli("eval", "--ckpt", "base.safetensors", "--n", "4", "--json", *extra))
        return out["overall"]["mean_score"]

    trained, same = score("--adapter", "run/adapter_model.safetensors"), score("--adapter", "same.safetensors")
    assert trained == same
    assert score("--adapter", "zero.safetensors") == score()
    assert trained != score()
