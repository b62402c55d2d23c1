"""Golden cases as data, generically, and assert_matches' calling conventions (the PyTorch
SDE-step checks are in test_torch_sde.py)."""
import numpy as np
import pytest

import flowrl_verify as fv


def test_every_case_loads_and_recomputes_bitwise():
    names = fv.cases()
    assert len(names) > 50 and "sampler.sde" in names and "obj.flow_grpo" in names
    for name in names:
        c = fv.load(name)
        assert c.outputs and c.kind in ("op", "shared", "ops") and (c.function is not None) == (c.kind == "op")
        assert c.provenance["golden.case"] == name and c.source.endswith(name + ".safetensors")
        out = fv.compute(name, c.inputs, c.params)
        assert set(out) == set(c.outputs), name
        for k, v in out.items():
            assert v.tobytes() == c.outputs[k].tobytes(), f"{name} out.{k}"


def test_built_case_equals_the_committed_file():
    a, b = fv.load("awm.kl"), fv.load("awm.kl", build=True)
    assert b.source.startswith("built by libflowrl")
    for k in a.outputs:
        assert a.outputs[k].tobytes() == b.outputs[k].tobytes()
    assert a.provenance == b.provenance


def test_compute_reports_missing_inputs():
    c = fv.load("sampler.sde")
    inputs = dict(c.inputs)
    del inputs["xi"]
    with pytest.raises(fv.FlowrlError, match="in.xi"):
        fv.compute("sampler.sde", inputs, c.params)
    with pytest.raises(fv.FlowrlError, match="no golden case 'sampler.nope'"):
        fv.compute("sampler.nope", inputs)


def test_assert_matches_bitwise_and_tuple_outputs():
    def numpy_mean(x, model_out, sigma, sigma_next, sigma1, noise):
        s = fv.sampler_mean("sde", x, model_out, sigma=sigma, sigma_next=sigma_next, sigma1=sigma1, noise=noise)
        return (s,)
    fv.assert_matches(numpy_mean, "sampler.sde", rtol=0, atol=0, outputs=("mean",))
    with pytest.raises(TypeError, match="does not have"):
        fv.assert_matches(lambda x, velocity: {}, "sampler.sde")
    with pytest.raises(TypeError, match="not outputs of case"):
        fv.assert_matches(lambda x: {"y": x}, "sampler.sde")
