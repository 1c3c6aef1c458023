"""GGUF reading and dequantisation against the `gguf` package's reader and NumPy reference
dequantisers, on files written with its GGUFWriter."""

from __future__ import annotations

import gguf
import numpy as np
import pytest
import torch

from loom.errors import CheckpointError
from loom.modeling.gguf import SUPPORTED_TYPES, dequantize, read_gguf
from tests.gguf.files import Q, add_tensor, random_k_blocks

ROWS, COLS = 6, 512   # 512 values a row: whole blocks of 32 and of 256


def _reference(path):
    reader = gguf.GGUFReader(str(path))
    return {t.name: (t, gguf.quants.dequantize(t.data, t.tensor_type)) for t in reader.tensors}


@pytest.fixture(scope="module")
def typed_file(tmp_path_factory):
    """One tensor of every supported type; k-quants from random super-blocks."""
    path = tmp_path_factory.mktemp("gguf") / "types.gguf"
    rng = np.random.default_rng(0)
    values = rng.normal(0, 0.5, size=(ROWS, COLS)).astype(np.float32)
    values[0, :32] = 0.0          # an all-zero block (scale 0)
    values[1, :32] = 3.0          # a constant block
    w = gguf.GGUFWriter(str(path), "llama")
    for qtype in (Q.F32, Q.F16, Q.Q8_0, Q.Q4_0, Q.Q4_1):
        add_tensor(w, f"t.{qtype.name}", values, qtype)
    bf16 = gguf.quants.quantize(values, Q.BF16)
    w.add_tensor("t.BF16", bf16, raw_shape=bf16.shape, raw_dtype=Q.BF16)
    for qtype in (Q.Q4_K, Q.Q5_K, Q.Q6_K):
        raw = random_k_blocks(qtype, ROWS * COLS // 256, seed=int(qtype)).reshape(ROWS, -1)
        w.add_tensor(f"t.{qtype.name}", raw, raw_shape=raw.shape, raw_dtype=qtype)
    w.add_tensor("t.vector", rng.normal(size=COLS).astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path, values


@pytest.mark.parametrize("name", SUPPORTED_TYPES)
def test_dequantisation_equals_gguf_reference(typed_file, name):
    path, values = typed_file
    ref_info, ref = _reference(path)[f"t.{name}"]
    ours = read_gguf(path).tensor(f"t.{name}")
    assert ours.shape == (ROWS, COLS)
    ref = torch.from_numpy(np.array(ref, dtype=np.float32)).reshape(ROWS, COLS)
    # Same float32 operations in the same order as the reference: bit-identical.
    assert torch.equal(ours.float(), ref), f"{name}: max diff {(ours.float() - ref).abs().max()}"
    assert torch.isfinite(ours).all()
    if name in ("F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1"):   # and close to what was stored
        tol = {"F32": 0, "F16": 1e-3, "BF16": 1e-2, "Q8_0": 0.02, "Q4_0": 0.35, "Q4_1": 0.3}[name]
        assert (ours.float() - torch.from_numpy(values)).abs().max() <= tol
        assert torch.equal(ours[0, :32].float(), torch.zeros(32))


def test_plain_types_are_views_of_the_file(typed_file):
    path, values = typed_file
    g = read_gguf(path)
    t = g.tensor("t.F32")
    assert t.dtype == torch.float32 and torch.equal(t, torch.from_numpy(values))
    assert g.tensor("t.F16").dtype == torch.float16 and g.tensor("t.BF16").dtype == torch.bfloat16
    assert g.tensor("t.vector").shape == (COLS,)
    t.add_(1.0)   # a private (copy-on-write) map: writing does not touch the file
    assert torch.equal(read_gguf(path).tensor("t.F32"), torch.from_numpy(values))


def test_header_and_metadata_equal_gguf_reader(typed_file, tmp_path):
    path, _ = typed_file
    reader = gguf.GGUFReader(str(path))
    g = read_gguf(path)
    assert list(g.tensors) == [t.name for t in reader.tensors]
    for t in reader.tensors:
        info = g.tensors[t.name]
        assert info.offset == t.data_offset and info.nbytes == t.n_bytes
        assert info.ggml_type == int(t.tensor_type)
        assert info.shape == tuple(int(d) for d in reversed(t.shape.tolist()))
    # Every metadata value type.
    meta = tmp_path / "meta.gguf"
    w = gguf.GGUFWriter(str(meta), "llama")
    w.add_uint8("k.u8", 200); w.add_int8("k.i8", -3); w.add_uint16("k.u16", 60000)
    w.add_int16("k.i16", -300); w.add_uint32("k.u32", 4_000_000_000); w.add_int32("k.i32", -7)
    w.add_float32("k.f32", 0.25); w.add_bool("k.bool", True); w.add_string("k.str", "héllo 🚀")
    w.add_uint64("k.u64", 2**40); w.add_int64("k.i64", -(2**40)); w.add_float64("k.f64", 1e-300)
    w.add_array("k.strs", ["a", "", "東京"]); w.add_array("k.ints", [1, 2, 3])
    w.add_array("k.floats", [0.5, -1.5])
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
    ours = read_gguf(meta).metadata
    ref = {k: f.contents() for k, f in gguf.GGUFReader(str(meta)).fields.items() if not k.startswith("GGUF.")}
    assert ours == ref
    assert ours["k.str"] == "héllo 🚀" and ours["k.f64"] == 1e-300 and ours["k.strs"] == ["a", "", "東京"]


def test_dequantize_checks_sizes():
    with pytest.raises(CheckpointError, match="do not hold Q8_0 of shape"):
        dequantize(torch.zeros(33, dtype=torch.uint8), "Q8_0", (32,))
    with pytest.raises(CheckpointError, match="do not hold F32"):
        dequantize(torch.zeros(10, dtype=torch.uint8), "F32", (3,))
