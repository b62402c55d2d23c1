#!/usr/bin/env python3
"""Writes the safetensors test corpus (python3 stdlib only):

  tests/corpus/safetensors/*.safetensors        malformed: the reader must reject each one
                                                 with FR_ERR_FORMAT (test_safetensors.c)
  tests/corpus/safetensors/valid/*.safetensors  well-formed: the reader must accept each one

The same directory seeds the libFuzzer target (`make fuzz`). Regenerate with
  python3 tests/corpus/gen_safetensors.py
The output is deterministic; files not produced here (fuzzer regressions, named crash-*)
are left alone.
"""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
BAD = os.path.join(HERE, "safetensors")
GOOD = os.path.join(BAD, "valid")


def pack(header, data=b"", pad=True):
    """8-byte LE length + header (bytes or str) + data; pads with spaces to 8 like the reference."""
    if isinstance(header, str):
        header = header.encode("utf-8")
    if pad:
        header += b" " * ((8 - len(header) % 8) % 8)
    return struct.pack("<Q", len(header)) + header + data


def hdr(obj):
    return json.dumps(obj, separators=(",", ":"))


def f32(n):
    return struct.pack("<%df" % n, *[float(i) + 0.5 for i in range(n)])


def one(dtype="F32", shape=(2,), offs=(0, 8)):
    return {"dtype": dtype, "shape": list(shape), "data_offsets": list(offs)}


bad = {}
bad["empty"] = b""
bad["short_7_bytes"] = b"\x08\x00\x00\x00\x00\x00\x00"
bad["hlen_zero"] = struct.pack("<Q", 0) + f32(2)
bad["hlen_past_eof"] = struct.pack("<Q", 64) + b"{}"
bad["hlen_u64_max"] = struct.pack("<Q", 2**64 - 1) + b"{}      "
bad["hlen_over_100mb"] = struct.pack("<Q", 100_000_001) + b"{}      "
bad["hlen_only"] = struct.pack("<Q", 8)
bad["header_not_json"] = pack('{"a":{"dtype":"F32",', f32(2))
bad["header_array"] = pack("[1,2]")
bad["header_string"] = pack('"abc"')
bad["header_leading_space"] = pack(" {}")
bad["header_trailing_garbage"] = pack("{} x")
bad["header_two_objects"] = pack("{}{}")
bad["header_bad_utf8"] = pack(b'{"a\xff":' + hdr(one()).encode() + b"}", f32(2))
bad["header_overlong_utf8"] = pack(b'{"a\xc0\xaf":' + hdr(one()).encode() + b"}", f32(2))
bad["header_utf8_surrogate"] = pack(b'{"a\xed\xa0\x80":' + hdr(one()).encode() + b"}", f32(2))
bad["header_control_byte"] = pack(b'{"a\x01":' + hdr(one()).encode() + b"}", f32(2))
bad["header_nul_byte"] = pack(b'{"a\x00":' + hdr(one()).encode() + b"}", f32(2))
bad["header_nul_escape"] = pack('{"a\\u0000b":' + hdr(one()) + "}", f32(2))
bad["header_lone_surrogate_escape"] = pack('{"a\\ud800":' + hdr(one()) + "}", f32(2))
bad["header_deep_nesting"] = pack('{"a":' + "[" * 3000 + "]" * 3000 + "}")
bad["entry_number"] = pack('{"a":5}')
bad["entry_array"] = pack('{"a":[]}')
bad["entry_null"] = pack('{"a":null}')
bad["missing_dtype"] = pack('{"a":{"shape":[2],"data_offsets":[0,8]}}', f32(2))
bad["missing_shape"] = pack('{"a":{"dtype":"F32","data_offsets":[0,8]}}', f32(2))
bad["missing_data_offsets"] = pack('{"a":{"dtype":"F32","shape":[2]}}', f32(2))
bad["dtype_number"] = pack('{"a":{"dtype":1,"shape":[2],"data_offsets":[0,8]}}', f32(2))
bad["dtype_unknown_f8"] = pack(hdr({"a": one("F8_E4M3", (8,))}), f32(2))
bad["dtype_lowercase"] = pack(hdr({"a": one("f32")}), f32(2))
bad["dtype_twice"] = pack('{"a":{"dtype":"F32","dtype":"I32","shape":[2],"data_offsets":[0,8]}}', f32(2))
bad["shape_number"] = pack('{"a":{"dtype":"F32","shape":2,"data_offsets":[0,8]}}', f32(2))
bad["shape_negative"] = pack(hdr({"a": one(shape=(-2,))}), f32(2))
bad["shape_fraction"] = pack('{"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,8]}}', f32(2))
bad["shape_string_dim"] = pack('{"a":{"dtype":"F32","shape":["2"],"data_offsets":[0,8]}}', f32(2))
bad["shape_bool_dim"] = pack('{"a":{"dtype":"F32","shape":[true],"data_offsets":[0,8]}}', f32(2))
bad["shape_huge_dim"] = pack('{"a":{"dtype":"F32","shape":[1e300],"data_offsets":[0,8]}}', f32(2))
bad["shape_dim_over_2p53"] = pack(hdr({"a": one(shape=(2**60, 0))}), f32(2))
bad["shape_5_dims"] = pack(hdr({"a": one(shape=(1, 1, 1, 2, 1))}), f32(2))
bad["shape_numel_overflow"] = pack(hdr({"a": one("U8", (2**40, 2**40, 2**40))}), f32(2))
bad["shape_numel_over_int64"] = pack(hdr({"a": one("U8", (2**53, 2**10))}), f32(2))
bad["shape_bytes_overflow"] = pack(hdr({"a": one("F64", (2**31, 2**31))}), f32(2))
bad["offsets_number"] = pack('{"a":{"dtype":"F32","shape":[2],"data_offsets":8}}', f32(2))
bad["offsets_one_value"] = pack(hdr({"a": one(offs=(8,))}), f32(2))
bad["offsets_three_values"] = pack(hdr({"a": one(offs=(0, 8, 8))}), f32(2))
bad["offsets_negative"] = pack(hdr({"a": one(offs=(-8, 0))}), f32(2))
bad["offsets_fraction"] = pack('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8.5]}}', f32(2))
bad["offsets_string"] = pack('{"a":{"dtype":"F32","shape":[2],"data_offsets":["0","8"]}}', f32(2))
bad["offsets_backwards"] = pack(hdr({"a": one(shape=(0,), offs=(8, 0))}), f32(2))
bad["offsets_past_end"] = pack(hdr({"a": one(shape=(4,), offs=(0, 16))}), f32(2))
bad["offsets_huge"] = pack(hdr({"a": one(offs=(2**60, 2**60 + 8))}), f32(2))
bad["offsets_wrong_size"] = pack(hdr({"a": one(shape=(1,), offs=(0, 8))}), f32(2))
bad["tensors_gap_at_start"] = pack(hdr({"a": one(shape=(1,), offs=(4, 8))}), f32(2))
bad["tensors_gap_between"] = pack(hdr({"a": one(shape=(1,), offs=(0, 4)),
                                       "b": one(shape=(1,), offs=(8, 12))}), f32(3))
bad["tensors_overlap"] = pack(hdr({"a": one(offs=(0, 8)), "b": one(offs=(4, 12))}), f32(3))
bad["tensors_same_bytes"] = pack(hdr({"a": one(offs=(0, 8)), "b": one(offs=(0, 8))}), f32(2))
bad["buffer_not_covered"] = pack(hdr({"a": one()}), f32(3))
bad["buffer_without_tensors"] = pack("{}", f32(1))
bad["duplicate_name"] = pack('{"a":' + hdr(one()) + ',"a":' + hdr(one(offs=(8, 16))) + "}", f32(4))
bad["metadata_string"] = pack('{"__metadata__":"x"}')
bad["metadata_value_number"] = pack('{"__metadata__":{"step":3}}')
bad["metadata_value_null"] = pack('{"__metadata__":{"step":null}}')
bad["metadata_value_object"] = pack('{"__metadata__":{"cfg":{"a":"b"}}}')
bad["metadata_twice"] = pack('{"__metadata__":{},"__metadata__":{}}')
bad["metadata_duplicate_key"] = pack('{"__metadata__":{"k":"1","k":"2"}}')

good = {}
good["empty_unpadded"] = pack("{}", pad=False)
good["empty_padded"] = pack("{}")
good["one_f32"] = pack('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', f32(2))
sizes = {"F32": 4, "F64": 8, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1,
         "U64": 8, "U32": 4, "U16": 2, "U8": 1, "BOOL": 1}
entries, off = {}, 0
for i, (dt, sz) in enumerate(sizes.items()):
    entries["t_" + dt.lower()] = one(dt, (3,), (off, off + 3 * sz))
    off += 3 * sz
good["all_dtypes"] = pack(hdr(entries), bytes((7 * i) & 0xFF for i in range(off)))
good["scalar"] = pack(hdr({"s": one("I64", (), (0, 8))}), struct.pack("<q", -42))
good["zero_size"] = pack(hdr({"e": one("F32", (0,), (0, 0)), "f": one("F32", (3, 0), (0, 0)),
                              "x": one("F32", (1,), (0, 4)), "z": one("I8", (0, 2), (4, 4))}),
                         f32(1))
good["four_dims"] = pack(hdr({"w": one("F32", (1, 2, 1, 3), (0, 24))}), f32(6))
good["metadata"] = pack(hdr({"__metadata__": {"format": "pt", "step": "12", "": ""},
                             "a": one()}), f32(2))
good["metadata_null"] = pack('{"__metadata__":null}')
good["header_order_differs"] = pack(hdr({"b": one(offs=(8, 16)), "a": one(offs=(0, 8))}), f32(4))
good["extra_field_ignored"] = pack('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],'
                                   '"note":[1,{"x":null}]}}', f32(2))
good["pretty_printed"] = pack(json.dumps({"__metadata__": {"k": "v"}, "a": one()}, indent=2) + "\n",
                              f32(2))
good["unicode_names"] = pack('{"caf\u00e9":' + hdr(one(offs=(0, 8))) +
                             ',"caf\\u00e9\\"q\\\\":' + hdr(one(offs=(8, 16))) +
                             ',"\U0001F600":' + hdr(one(offs=(16, 24))) + "}", f32(6))
good["empty_name"] = pack(hdr({"": one()}), f32(2))


def main():
    os.makedirs(GOOD, exist_ok=True)
    for d, cases in ((BAD, bad), (GOOD, good)):
        for name, data in sorted(cases.items()):
            with open(os.path.join(d, name + ".safetensors"), "wb") as f:
                f.write(data)
    print("wrote %d malformed and %d valid files" % (len(bad), len(good)))


if __name__ == "__main__":
    main()
