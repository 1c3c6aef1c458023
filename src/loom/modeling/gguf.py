"""GGUF, llama.cpp's single-file checkpoint: metadata, tensors, and the config and tokenizer
they describe.

    g = read_gguf("SmolLM2-135M-Instruct.Q4_1.gguf")
    g.config_dict()        # a config.json dict for loom's LlamaConfig
    g.state_dict()         # {"model.layers.0.self_attn.q_proj.weight": tensor, ...}, fp32
    g.tokenizer()          # (tokenizers.Tokenizer, tokenizer_config dict)

The header is parsed here with `struct` over a memory map (the `gguf` package's GGUFReader
makes one NumPy view per string and takes 2.3 s on SmolLM2's 98k vocabulary strings; this
takes about 0.1 s); the `gguf` package supplies the table of type names and block sizes.
Quantised blocks are dequantised here in vectorised torch, in the order of operations of
llama.cpp's reference dequantisers (float32 throughout), so the values equal `gguf`'s
NumPy reference bit for bit. F32, F16 and BF16 tensors are views of the mapped file.

llama.cpp stores each head's query/key rows interleaved (its converter permutes them for
its RoPE kernel); `state_dict` undoes that, so the weights are those of the HF checkpoint.
Reading metadata imports no torch; tensors import it on first use.
"""

from __future__ import annotations

import functools
import logging
import math
import mmap
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import CheckpointError, ConfigError, EntryNotFoundError, TokenizerError

logger = logging.getLogger(__name__)

GGUF_MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32
# Types loom dequantises, by llama.cpp's name.
SUPPORTED_TYPES = ("F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q4_K", "Q5_K", "Q6_K")

# GGUF metadata value types: id -> (struct format, size); 8 is a string, 9 an array.
_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_NUMPY_OF = {0: "u1", 1: "i1", 2: "<u2", 3: "<i2", 4: "<u4", 5: "<i4", 6: "<f4", 7: "?",
             10: "<u8", 11: "<i8", 12: "<f8"}
_STRING, _ARRAY = 8, 9


# -- reading the file -----------------------------------------------------------------------

@dataclass(frozen=True)
class GGUFTensorInfo:
    name: str
    shape: tuple[int, ...]      # torch order (outermost first); GGUF lists dims innermost first
    ggml_type: int
    offset: int                 # absolute byte offset in the file
    nbytes: int

    @property
    def type_name(self) -> str:
        return ggml_type_name(self.ggml_type)


@dataclass
class GGUFFile:
    """A parsed GGUF file: its metadata and tensor table; tensor bytes stay on disk."""

    path: Path
    version: int
    metadata: dict[str, Any]
    tensors: dict[str, GGUFTensorInfo]
    size: int

    @property
    def architecture(self) -> str:
        arch = self.metadata.get("general.architecture")
        if not isinstance(arch, str):
            raise CheckpointError(f"{self.path}: metadata has no general.architecture string")
        return arch

    def arch_key(self, name: str, default: Any = None) -> Any:
        return self.metadata.get(f"{self.architecture}.{name}", default)

    def open_map(self) -> mmap.mmap:
        """A private (copy-on-write) map of the file. Each load takes its own, so weights
        changed in place (training) never show up in a later load of the same file."""
        with open(self.path, "rb") as f:
            return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)

    def raw(self, name: str, file_map: mmap.mmap | None = None):
        """The bytes of one tensor as a torch uint8 tensor over the mapped file (no copy)."""
        import torch

        info = self.tensors[name]
        if info.nbytes == 0:
            return torch.empty(0, dtype=torch.uint8)
        file_map = self.open_map() if file_map is None else file_map
        return torch.frombuffer(file_map, dtype=torch.uint8, count=info.nbytes, offset=info.offset)

    def tensor(self, name: str, file_map: mmap.mmap | None = None):
        """One tensor, dequantised to float32 (F16/BF16 keep their dtype), in torch order."""
        info = self.tensors[name]
        return dequantize(self.raw(name, file_map), info.ggml_type, info.shape,
                          where=f"{self.path}: {name}")

    def config_dict(self) -> dict[str, Any]:
        return config_dict(self)

    def state_dict(self, config: Any = None) -> dict:
        return state_dict(self, config)

    def tokenizer(self):
        return tokenizer_parts(self)


def ggml_type_name(ggml_type: int) -> str:
    from gguf import GGMLQuantizationType

    try:
        return GGMLQuantizationType(ggml_type).name
    except ValueError:
        return f"unknown type {ggml_type}"


def read_gguf(path: str | os.PathLike) -> GGUFFile:
    """Parse the header of a GGUF file (cached per file version); raises CheckpointError."""
    path = Path(path)
    try:
        st = path.stat()
    except OSError as e:
        raise CheckpointError(f"GGUF file {path} cannot be read: {e}") from None
    return _read_cached(str(path), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=2)
def _read_cached(path: str, size: int, mtime_ns: int) -> GGUFFile:
    _require_gguf_package()
    try:
        with open(path, "rb") as f:
            if size < 24:
                raise CheckpointError(f"GGUF file {path} is truncated: {size} bytes, not even a header")
            buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except OSError as e:
        raise CheckpointError(f"GGUF file {path} cannot be read: {e}") from None
    try:
        return _parse(Path(path), buf, size)
    except (struct.error, IndexError, OverflowError, MemoryError):
        raise CheckpointError(
            f"GGUF file {path} is truncated or corrupt: its header runs past the end of the "
            f"file ({size} bytes)"
        ) from None
    finally:
        buf.close()


def _parse(path: Path, buf, size: int) -> GGUFFile:
    if buf[:4] != GGUF_MAGIC:
        raise CheckpointError(f"{path} is not a GGUF file: it starts with {buf[:4]!r}, not b'GGUF'")
    version, n_tensors, n_kv = struct.unpack_from("<IQQ", buf, 4)
    if version not in (2, 3):
        hint = " (a big-endian file?)" if version > 0xFFFF else ""
        raise CheckpointError(f"{path}: GGUF version {version}{hint} is not supported; loom reads 2 and 3")
    pos = 24
    metadata: dict[str, Any] = {}
    for _ in range(n_kv):
        key, pos = _read_str(buf, pos, size)
        (vtype,), pos = struct.unpack_from("<I", buf, pos), pos + 4
        metadata[key], pos = _read_value(buf, pos, vtype, size, path, key)
    infos = []
    for _ in range(n_tensors):
        name, pos = _read_str(buf, pos, size)
        (n_dims,) = struct.unpack_from("<I", buf, pos)
        dims = struct.unpack_from(f"<{n_dims}Q", buf, pos + 4)
        ggml_type, offset = struct.unpack_from("<IQ", buf, pos + 4 + 8 * n_dims)
        pos += 4 + 8 * n_dims + 12
        infos.append((name, tuple(reversed(dims)), ggml_type, offset))
    alignment = metadata.get("general.alignment", DEFAULT_ALIGNMENT)
    if not isinstance(alignment, int) or alignment <= 0:
        raise CheckpointError(f"{path}: general.alignment must be a positive int, found {alignment!r}")
    data_start = -(-pos // alignment) * alignment
    tensors = {}
    for name, shape, ggml_type, offset in infos:
        nbytes = _tensor_nbytes(path, name, shape, ggml_type)
        start = data_start + offset
        if start + nbytes > size:
            raise CheckpointError(
                f"GGUF file {path} is truncated: tensor {name!r} needs bytes {start}..{start + nbytes}, "
                f"the file has {size} bytes. Download it again."
            )
        tensors[name] = GGUFTensorInfo(name, shape, ggml_type, start, nbytes)
    return GGUFFile(path, version, metadata, tensors, size)


def _read_str(buf, pos: int, size: int) -> tuple[str, int]:
    (n,) = struct.unpack_from("<Q", buf, pos)
    end = pos + 8 + n
    if end > size:
        raise IndexError
    return buf[pos + 8:end].decode("utf-8", errors="surrogateescape"), end


def _read_value(buf, pos: int, vtype: int, size: int, path: Path, key: str):
    if vtype == _STRING:
        return _read_str(buf, pos, size)
    if vtype in _SCALARS:
        fmt = "<" + _SCALARS[vtype]
        return struct.unpack_from(fmt, buf, pos)[0], pos + struct.calcsize(fmt)
    if vtype != _ARRAY:
        raise CheckpointError(f"{path}: metadata key {key!r} has unknown value type {vtype}")
    item_type, n = struct.unpack_from("<IQ", buf, pos)
    pos += 12
    if item_type in _NUMPY_OF:   # numbers: one vectorised read
        import numpy as np

        dtype = np.dtype(_NUMPY_OF[item_type])
        if pos + n * dtype.itemsize > size:
            raise IndexError
        values = np.frombuffer(buf, dtype=dtype, count=n, offset=pos).tolist()
        return values, pos + n * dtype.itemsize
    values = []
    for _ in range(n):
        value, pos = _read_value(buf, pos, item_type, size, path, key)
        values.append(value)
    return values, pos


def _tensor_nbytes(path: Path, name: str, shape: tuple[int, ...], ggml_type: int) -> int:
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

    try:
        block, type_size = GGML_QUANT_SIZES[GGMLQuantizationType(ggml_type)]
    except (ValueError, KeyError):
        raise CheckpointError(
            f"{path}: tensor {name!r} has ggml type {ggml_type}, unknown to the installed gguf "
            f"package; loom dequantises {', '.join(SUPPORTED_TYPES)}"
        ) from None
    n = math.prod(shape)
    if shape and shape[-1] % block:
        raise CheckpointError(
            f"{path}: tensor {name!r} of shape {shape} does not divide into "
            f"{ggml_type_name(ggml_type)} blocks of {block}"
        )
    return n // block * type_size


def _require_gguf_package() -> None:
    try:
        import gguf  # noqa: F401
    except ImportError:
        raise CheckpointError(
            "reading GGUF files needs the `gguf` package: pip install 'loom[gguf]'"
        ) from None


# -- finding the file -----------------------------------------------------------------------

def resolve_gguf(path_or_repo_id: str | os.PathLike, gguf_file: str | os.PathLike | None = None,
                 **hub_kwargs) -> Path | None:
    """The local path of a GGUF checkpoint, or None when this is not a GGUF load.

    `path_or_repo_id` may be the .gguf file itself, or a folder or Hub repo holding
    `gguf_file`.
    """
    if os.path.isfile(path_or_repo_id):
        path = Path(path_or_repo_id)
        if gguf_file is not None and Path(gguf_file).name != path.name:
            raise EntryNotFoundError(
                f"{path} is a file; gguf_file={str(gguf_file)!r} names another one. Pass the "
                f"folder holding {gguf_file}, or the file alone"
            )
        if gguf_file is None and path.suffix.lower() != ".gguf":
            return None
        return path
    if gguf_file is None:
        return None
    if os.path.isabs(gguf_file) and os.path.isfile(gguf_file):
        return Path(gguf_file)
    from ..hub import resolve

    return resolve(path_or_repo_id, str(gguf_file), **hub_kwargs)


# -- dequantisation ---------------------------------------------------------------------------

def dequantize(raw, ggml_type: int | str, shape, *, where: str = "tensor"):
    """Bytes of one GGUF tensor (torch uint8) -> a tensor of `shape`.

    F32, F16 and BF16 are views of `raw` in their own dtype; quantised types become float32.
    """
    import torch

    name = ggml_type if isinstance(ggml_type, str) else ggml_type_name(ggml_type)
    shape = tuple(int(s) for s in shape)
    if name in _PLAIN:
        dtype = _plain_dtype(name)
        if raw.numel() != math.prod(shape) * dtype.itemsize:
            raise CheckpointError(f"{where}: {raw.numel()} bytes do not hold {name} of shape {shape}")
        if raw.numel() == 0:
            return torch.empty(shape, dtype=dtype)
        if raw.storage_offset() % dtype.itemsize:   # unaligned: copy to view it
            raw = raw.clone()
        return raw.view(dtype).view(shape)
    spec = _QUANTS.get(name)
    if spec is None:
        raise CheckpointError(
            f"{where} is quantised as {name}, which loom cannot dequantise; supported types: "
            f"{', '.join(SUPPORTED_TYPES)}. Re-quantise the model to one of them (llama.cpp's "
            f"llama-quantize), or use an F16/BF16 file."
        )
    block, type_size, fn = spec
    n = math.prod(shape)
    if raw.numel() * block != n * type_size:
        raise CheckpointError(f"{where}: {raw.numel()} bytes do not hold {name} of shape {shape}")
    blocks = raw.view(-1, type_size)
    out = torch.empty(blocks.shape[0], block, dtype=torch.float32)
    step = max(1, (1 << 19) // block)   # about 2 MB of float32 per chunk: temporaries stay small
    for i in range(0, blocks.shape[0], step):
        fn(blocks[i:i + step], out[i:i + step])
    return out.view(shape)


_PLAIN = ("F32", "F16", "BF16")


def _plain_dtype(name: str):
    import torch

    return {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}[name]


def _f16(blocks, start: int):
    """The float16 at byte `start` of every block, as a float32 column (n, 1)."""
    import torch

    return blocks[:, start:start + 2].contiguous().view(torch.float16).float()


def _put_nibbles(qs, out) -> None:
    """(n, k, m) bytes -> out (n, k, 2, m): low nibbles, then high nibbles (as floats)."""
    out[:, :, 0].copy_(qs & 0x0F)
    out[:, :, 1].copy_(qs >> 4)


# Each function fills `out` (n, values) float32 from `b` (n, bytes) uint8, in place: fewer
# passes over memory than building temporaries. Float operations and their order are those
# of llama.cpp's dequantize_row_* (and gguf's NumPy port), so the results are bit-identical.

def _q8_0(b, out):
    # 2-byte scale d, 32 int8 quants: x = d * q
    out.copy_(b[:, 2:].view(_int8()))
    out.mul_(_f16(b, 0))


def _q4_0(b, out):
    # d, 16 bytes of nibbles (low nibbles are values 0..15, high ones 16..31): x = d * (q - 8)
    _put_nibbles(b[:, 2:].unsqueeze(1), out.view(-1, 1, 2, 16))
    out.sub_(8.0).mul_(_f16(b, 0))


def _q4_1(b, out):
    # d, m, 16 bytes of nibbles: x = d * q + m
    _put_nibbles(b[:, 4:].unsqueeze(1), out.view(-1, 1, 2, 16))
    out.mul_(_f16(b, 0)).add_(_f16(b, 2))


def _k_scales(scales):
    """Q4_K/Q5_K: 12 bytes -> 8 six-bit scales and 8 six-bit mins per super-block.

    Bytes 0-3 hold scales 0-3 (low 6 bits) and the top bits of scales 4-7; bytes 4-7 the
    same for mins; bytes 8-11 the low 4 bits of scales 4-7 (low nibble) and mins 4-7 (high).
    """
    import torch

    s = scales.reshape(-1, 3, 4)
    lo_s, lo_m, hi = s[:, 0], s[:, 1], s[:, 2]
    sc = torch.cat((lo_s & 63, (hi & 15) | ((lo_s >> 6) << 4)), dim=1)
    mn = torch.cat((lo_m & 63, (hi >> 4) | ((lo_m >> 6) << 4)), dim=1)
    return sc.float(), mn.float()


def _scale_and_shift(b, out, sc, mn) -> None:
    # x = (d*sc) * q - (dmin*m), per sub-block of 32
    sub = out.view(-1, 8, 32)
    sub.mul_((_f16(b, 0) * sc).unsqueeze(-1))
    sub.sub_((_f16(b, 2) * mn).unsqueeze(-1))


def _q4_k(b, out):
    # super-block of 256 = 8 sub-blocks of 32: d, dmin, 12 scale bytes, 128 nibble bytes.
    # Each 32 bytes of nibbles give two sub-blocks, low nibbles first.
    sc, mn = _k_scales(b[:, 4:16])
    _put_nibbles(b[:, 16:].reshape(-1, 4, 32), out.view(-1, 4, 2, 32))
    _scale_and_shift(b, out, sc, mn)


def _q5_k(b, out):
    # d, dmin, 12 scale bytes, 32 bytes of fifth bits (bit i of byte l: value l of sub-block i),
    # 128 nibble bytes laid out as in Q4_K; q = nibble + 16 * bit.
    import torch

    sc, mn = _k_scales(b[:, 4:16])
    ql = b[:, 48:].reshape(-1, 4, 1, 32)
    nib = torch.cat((ql & 0x0F, ql >> 4), dim=2).reshape(-1, 8, 32)
    shifts = torch.arange(8, dtype=torch.uint8).view(1, 8, 1)
    high = (b[:, 16:48].unsqueeze(1) >> shifts) & 1
    out.view(-1, 8, 32).copy_(nib | (high << 4))
    _scale_and_shift(b, out, sc, mn)


def _q6_k(b, out):
    # 128 bytes of low nibbles, 64 bytes of 2-bit highs, 16 int8 scales (one per 16 values), d.
    # Per half of 128 values: value (nib, part, l) = nibble `nib` of low byte 32*part + l,
    # high bits 2*(2*nib + part) of high byte l; x = (d * sc) * (q - 32)
    import torch

    n = b.shape[0]
    low = b[:, :128].reshape(n, 2, 1, 2, 32)                    # (n, half, 1, part, l)
    low = torch.cat((low & 0x0F, low >> 4), dim=2)              # (n, half, nib, part, l)
    shifts = torch.tensor([[0, 2], [4, 6]], dtype=torch.uint8).view(1, 1, 2, 2, 1)
    high = (b[:, 128:192].reshape(n, 2, 1, 1, 32) >> shifts) & 3
    q = out.view(n, 16, 16)
    q.copy_((low | (high << 4)).reshape(n, 16, 16))
    q.sub_(32.0).mul_((_f16(b, 208) * b[:, 192:208].view(_int8()).float()).unsqueeze(-1))


def _int8():
    import torch

    return torch.int8


# name -> (values per block, bytes per block, function filling (n, values) f32 from (n, bytes))
_QUANTS = {
    "Q8_0": (32, 34, _q8_0),
    "Q4_0": (32, 18, _q4_0),
    "Q4_1": (32, 20, _q4_1),
    "Q4_K": (256, 144, _q4_k),
    "Q5_K": (256, 176, _q5_k),
    "Q6_K": (256, 210, _q6_k),
}


# -- architectures: config and tensor names --------------------------------------------------

@dataclass(frozen=True)
class _Arch:
    model_type: str
    architecture: str            # the HF class name written to config.json
    permute_qk: bool             # llama.cpp's converter interleaved q/k rows for its RoPE


# llama.cpp architecture name -> what loom builds from it.
ARCHITECTURES = {
    "llama": _Arch("llama", "LlamaForCausalLM", permute_qk=True),
}

# llama.cpp tensor name (after "blk.N.") -> HF name (after "model.layers.N.")
_LAYER_NAMES = {
    "attn_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}
_GLOBAL_NAMES = {
    "token_embd": "model.embed_tokens",
    "output_norm": "model.norm",
    "output": "lm_head",
}


def hf_name(gguf_name: str) -> str | None:
    """`blk.3.attn_q.weight` -> `model.layers.3.self_attn.q_proj.weight`; None if unknown."""
    stem, dot, suffix = gguf_name.rpartition(".")
    if not dot or suffix not in ("weight", "bias"):
        return None
    if stem in _GLOBAL_NAMES:
        return f"{_GLOBAL_NAMES[stem]}.{suffix}"
    parts = stem.split(".")
    if len(parts) == 3 and parts[0] == "blk" and parts[1].isdigit() and parts[2] in _LAYER_NAMES:
        return f"model.layers.{parts[1]}.{_LAYER_NAMES[parts[2]]}.{suffix}"
    return None


def _arch(g: GGUFFile) -> _Arch:
    arch = g.architecture
    if arch not in ARCHITECTURES:
        raise ConfigError(
            f"{g.path}: GGUF architecture {arch!r} is not supported; loom reads "
            f"{', '.join(sorted(ARCHITECTURES))}"
        )
    return ARCHITECTURES[arch]


def _required(g: GGUFFile, key: str) -> int:
    value = g.arch_key(key)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ConfigError(f"{g.path}: metadata {g.architecture}.{key} must be a positive int, found {value!r}")
    return value


def config_dict(g: GGUFFile) -> dict[str, Any]:
    """The config.json dict the file's metadata describes (HF key names)."""
    spec = _arch(g)
    heads = _required(g, "attention.head_count")
    hidden = _required(g, "embedding_length")
    tokens = g.metadata.get("tokenizer.ggml.tokens")
    vocab = g.arch_key("vocab_size") or (len(tokens) if isinstance(tokens, list) else None)
    if vocab is None and "token_embd.weight" in g.tensors:
        vocab = g.tensors["token_embd.weight"].shape[0]
    head_dim = g.arch_key("attention.key_length") or g.arch_key("rope.dimension_count") or hidden // heads
    config = {
        "model_type": spec.model_type,
        "architectures": [spec.architecture],
        "vocab_size": vocab,
        "hidden_size": hidden,
        "intermediate_size": _required(g, "feed_forward_length"),
        "num_hidden_layers": _required(g, "block_count"),
        "num_attention_heads": heads,
        "num_key_value_heads": g.arch_key("attention.head_count_kv", heads),
        "head_dim": head_dim,
        "max_position_embeddings": g.arch_key("context_length", 2048),
        "rms_norm_eps": g.arch_key("attention.layer_norm_rms_epsilon", 1e-6),
        "rope_theta": float(g.arch_key("rope.freq_base", 10000.0)),
        "hidden_act": "silu",
        "attention_bias": "blk.0.attn_q.bias" in g.tensors,
        "mlp_bias": "blk.0.ffn_up.bias" in g.tensors,
        # llama.cpp writes no output.weight when the head reuses the embedding matrix.
        "tie_word_embeddings": "output.weight" not in g.tensors,
    }
    scaling = _rope_scaling(g)
    if scaling is not None:
        config["rope_scaling"] = scaling
    for name, key in (("bos", "bos_token_id"), ("eos", "eos_token_id"), ("padding", "pad_token_id")):
        value = g.metadata.get(f"tokenizer.ggml.{name}_token_id")
        if value is not None:
            config[key] = value
    return config


def _rope_scaling(g: GGUFFile) -> dict | None:
    kind = g.arch_key("rope.scaling.type")
    factor = g.arch_key("rope.scaling.factor")
    if kind in (None, "none") or not factor or factor == 1.0:
        return None
    if kind not in ("linear", "yarn"):
        raise ConfigError(f"{g.path}: rope.scaling.type {kind!r} is not supported; loom reads linear and yarn")
    out = {"rope_type": kind, "factor": float(factor)}
    original = g.arch_key("rope.scaling.original_context_length")
    if original:
        out["original_max_position_embeddings"] = int(original)
    return out


def state_dict(g: GGUFFile, config: Any = None) -> dict:
    """Every tensor under its HF name, dequantised, with q/k rows in HF order.

    `config` (a dict or Config) gives the head counts; the file's own metadata otherwise.
    Tensors with names loom does not know keep their GGUF name (the load reports them).
    """
    spec = _arch(g)
    if config is None:
        config = config_dict(g)
    get = config.get if isinstance(config, dict) else lambda k, d=None: getattr(config, k, d)
    heads = get("num_attention_heads")
    kv_heads = get("num_key_value_heads") or heads
    if "rope_freqs.weight" in g.tensors:
        # Llama 3.1 files carry their RoPE scaling as per-frequency factors, not as metadata.
        logger.warning("%s: rope_freqs.weight (per-frequency RoPE factors) is not applied by loom; "
                       "set config.rope_scaling (rope_type 'llama3') to match the original model", g.path)
    out = {}
    file_map = g.open_map()
    base = _map_address(file_map)
    for name in g.tensors:
        target = hf_name(name)
        tensor = g.tensor(name, file_map)
        if base <= tensor.untyped_storage().data_ptr() < base + len(file_map):  # a view of the file (F32/F16)
            tensor = tensor.clone()
        _release(file_map, g.tensors[name])
        if spec.permute_qk and target is not None:
            if ".self_attn.q_proj." in target:
                tensor = unpermute_qk(tensor, heads, where=f"{g.path}: {name}")
            elif ".self_attn.k_proj." in target:
                tensor = unpermute_qk(tensor, kv_heads, where=f"{g.path}: {name}")
        out[target or name] = tensor
    return out


def _map_address(file_map: mmap.mmap) -> int:
    import torch

    return torch.frombuffer(file_map, dtype=torch.uint8, count=1).untyped_storage().data_ptr()


def _release(file_map: mmap.mmap, info: GGUFTensorInfo) -> None:
    """Drop the pages of a tensor already read from the private map, so that the file's bytes
    do not stay in the process's memory next to the dequantised weights."""
    page = mmap.PAGESIZE
    start = info.offset // page * page
    stop = (info.offset + info.nbytes) // page * page  # whole pages only: neighbours may share the last
    if stop > start and hasattr(file_map, "madvise"):
        file_map.madvise(mmap.MADV_DONTNEED, start, stop - start)


def unpermute_qk(w, n_heads: int, *, where: str = "tensor"):
    """Undo llama.cpp's per-head row interleave of q/k projections (weights or biases).

    Its converter maps HF row `h*D + j*D/2 + i` (half j of head h's rotary pairs) to
    GGUF row `h*D + 2*i + j`; this maps it back.
    """
    rows = w.shape[0]
    if rows % (2 * n_heads):
        raise CheckpointError(f"{where}: {rows} rows do not split into {n_heads} heads of pairs")
    d = rows // n_heads
    return w.reshape(n_heads, d // 2, 2, *w.shape[1:]).transpose(1, 2).reshape(w.shape)


def permute_qk(w, n_heads: int):
    """llama.cpp's converter order, the inverse of `unpermute_qk` (for writing test files)."""
    d = w.shape[0] // n_heads
    return w.reshape(n_heads, 2, d // 2, *w.shape[1:]).transpose(1, 2).reshape(w.shape)


# -- tokenizer ---------------------------------------------------------------------------------

# How llama.cpp splits text before BPE, by `tokenizer.ggml.pre`: (split regex, digits one by one,
# match whole words first). A regex of None is GPT-2's, which ByteLevel applies itself. The
# regexes are those of the models' own tokenizer.json files.
_LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
                 r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
_QWEN2_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
                r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
_GPT4O_SPLIT = (r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
                r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
                r"|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")
PRE_TOKENIZERS: dict[str, tuple[str | None, bool, bool]] = {
    **{k: (None, False, False) for k in ("default", "gpt-2", "gpt2", "phi-2", "olmo", "jais")},
    **{k: (None, True, False) for k in ("smollm", "starcoder", "refact", "codeshell", "command-r",
                                        "exaone", "minerva-7b")},
    **{k: (_LLAMA3_SPLIT, False, True) for k in ("llama3", "llama-v3", "llama-bpe", "falcon3",
                                                 "pixtral", "dbrx", "smaug-bpe")},
    **{k: (_QWEN2_SPLIT, False, False) for k in ("qwen2", "deepseek-r1-qwen")},
    **{k: (_GPT4O_SPLIT, False, False) for k in ("gpt-4o", "llama4")},
}
_CONTROL, _USER_DEFINED = 3, 4   # llama.cpp token types


@functools.lru_cache(maxsize=1)
def byte_alphabet() -> dict[int, str]:
    """GPT-2's byte -> printable character map: printable Latin-1 bytes stand for themselves,
    the other 68 bytes take the characters from U+0100 on, in byte order."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), 256)]
    table, extra = {b: chr(b) for b in keep}, 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return dict(sorted(table.items()))


def tokenizer_parts(g: GGUFFile):
    """(tokenizers.Tokenizer, tokenizer_config dict) for the file's byte-level BPE vocabulary."""
    from tokenizers import AddedToken, Regex, decoders, pre_tokenizers, processors
    from tokenizers import Tokenizer as Backend
    from tokenizers.models import BPE

    md = g.metadata
    kind = md.get("tokenizer.ggml.model")
    if kind != "gpt2":
        raise TokenizerError(
            f"{g.path}: tokenizer.ggml.model is {kind!r}; loom builds byte-level BPE ('gpt2') "
            f"tokenizers from GGUF. Load the model's tokenizer.json instead."
        )
    tokens, merges = md.get("tokenizer.ggml.tokens"), md.get("tokenizer.ggml.merges")
    if not isinstance(tokens, list) or not isinstance(merges, list):
        raise TokenizerError(f"{g.path}: a byte-level BPE needs tokenizer.ggml.tokens and tokenizer.ggml.merges")
    pre = md.get("tokenizer.ggml.pre", "default")
    if pre not in PRE_TOKENIZERS:
        logger.warning("%s: pre-tokenizer %r is not known to loom; splitting text as GPT-2 does", g.path, pre)
    split, digits, whole_words = PRE_TOKENIZERS.get(pre, PRE_TOKENIZERS["default"])
    alphabet = byte_alphabet()
    chars = set(alphabet.values())
    # Tokens are spelled in the byte alphabet; a few files store some in plain UTF-8.
    vocab = {t if set(t) <= chars else "".join(alphabet[b] for b in t.encode("utf-8")): i
             for i, t in enumerate(tokens)}
    pairs = [tuple(m.split(" ")) for m in merges]
    bad = next((m for m, p in zip(merges, pairs) if len(p) != 2), None)
    if bad is not None:
        raise TokenizerError(f"{g.path}: merge {bad!r} in tokenizer.ggml.merges is not two tokens")
    backend = Backend(BPE(vocab, pairs, fuse_unk=False, byte_fallback=False, ignore_merges=whole_words))
    steps = [pre_tokenizers.Digits(individual_digits=True)] if digits else []
    if split is not None:
        steps.append(pre_tokenizers.Split(Regex(split), behavior="isolated"))
    steps.append(pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=split is None))
    backend.pre_tokenizer = steps[0] if len(steps) == 1 else pre_tokenizers.Sequence(steps)
    backend.decoder = decoders.ByteLevel()
    types = md.get("tokenizer.ggml.token_type") or []
    # Control tokens (<|im_start|>) match whole; one spelled outside the byte alphabet is a
    # mislabelled piece of text, not a control token.
    backend.add_special_tokens([AddedToken(t, special=True, normalized=False)
                                for t, k in zip(tokens, types) if k == _CONTROL and set(t) <= chars])
    backend.add_tokens([AddedToken(t, special=False, normalized=False)
                        for t, k in zip(tokens, types) if k == _USER_DEFINED and t in vocab])
    config = _tokenizer_config(g, tokens)
    backend.post_processor = _post_processor(config, backend, processors)
    return backend, config


def _tokenizer_config(g: GGUFFile, tokens: list[str]) -> dict[str, Any]:
    md = g.metadata
    config: dict[str, Any] = {"tokenizer_class": "PreTrainedTokenizerFast",
                              "clean_up_tokenization_spaces": False}
    for name, key in (("bos_token", "bos_token_id"), ("eos_token", "eos_token_id"),
                      ("unk_token", "unknown_token_id"), ("pad_token", "padding_token_id")):
        index = md.get(f"tokenizer.ggml.{key}")
        if isinstance(index, int) and 0 <= index < len(tokens):
            config[name] = tokens[index]
    config["add_bos_token"] = bool(md.get("tokenizer.ggml.add_bos_token", False))
    config["add_eos_token"] = bool(md.get("tokenizer.ggml.add_eos_token", False))
    template = md.get("tokenizer.chat_template")
    named = {k.removeprefix("tokenizer.chat_template."): v for k, v in md.items()
             if k.startswith("tokenizer.chat_template.") and isinstance(v, str)}
    if named:
        config["chat_template"] = {**({"default": template} if template else {}), **named}
    elif isinstance(template, str):
        config["chat_template"] = template
    return config


def _post_processor(config: dict, backend, processors):
    """BOS/EOS around each sequence as the file's add_bos_token / add_eos_token say."""
    ends = [(config.get("bos_token"), config["add_bos_token"], True),
            (config.get("eos_token"), config["add_eos_token"], False)]
    before = [t for t, on, first in ends if on and first and t is not None]
    after = [t for t, on, first in ends if on and not first and t is not None]

    def seq(name: str, type_id: int) -> str:
        return " ".join([*(f"{t}:{type_id}" for t in before), f"${name}:{type_id}",
                         *(f"{t}:{type_id}" for t in after)])

    specials = [(t, backend.token_to_id(t)) for t in dict.fromkeys(before + after)]
    return processors.TemplateProcessing(single=seq("A", 0), pair=f"{seq('A', 0)} {seq('B', 1)}",
                                         special_tokens=specials)


__all__ = [
    "GGUFFile", "GGUFTensorInfo", "SUPPORTED_TYPES", "ARCHITECTURES", "PRE_TOKENIZERS",
    "byte_alphabet", "config_dict", "dequantize", "hf_name", "permute_qk", "read_gguf",
    "resolve_gguf", "state_dict", "tokenizer_parts", "unpermute_qk",
]
