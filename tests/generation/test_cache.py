"""The KV cache protocol: update / get_seq_length / reorder / crop, dynamic and static."""

from __future__ import annotations

import pytest
import torch

from loom.errors import InputError
from loom.nn.cache import DynamicCache, StaticCache
from tests.generation.common import PAD, llama_pair, prompts
from tests.helpers import assert_close, left_pad


def kv(B=2, H=3, T=4, D=5, start=0.0):
    k = torch.arange(B * H * T * D, dtype=torch.float32).view(B, H, T, D) + start
    return k, -k


@pytest.mark.parametrize("make", [DynamicCache, lambda: StaticCache(10)], ids=["dynamic", "static"])
def test_protocol(make):
    cache = make()
    assert int(cache.get_seq_length()) == 0
    k1, v1 = kv(T=4)
    k2, v2 = kv(T=1, start=1000.0)
    for layer in range(2):
        keys, values = cache.update(layer, k1, v1)
    assert int(cache.get_seq_length()) == 4 and int(cache.get_seq_length(1)) == 4
    for layer in range(2):
        keys, values = cache.update(layer, k2, v2)
    S = 10 if isinstance(cache, StaticCache) else 5
    assert keys.shape == (2, 3, S, 5) and int(cache.get_seq_length()) == 5
    assert torch.equal(keys[:, :, :4], k1) and torch.equal(keys[:, :, 4:5], k2)
    assert torch.equal(values[:, :, 4:5], v2)
    cache.reorder(torch.tensor([1, 1]))
    assert torch.equal(cache.keys[0][0, :, :5], torch.cat([k1, k2], 2)[1])
    cache.crop(3)
    assert int(cache.get_seq_length()) == 3
    cache.crop(-1)
    assert int(cache.get_seq_length()) == 2
    keys, _ = cache.update(0, k2, v2)  # writing goes on after the kept tokens
    assert torch.equal(keys[:, :, 2:3], k2)
    with pytest.raises(InputError, match="crop"):
        cache.crop(7)


def test_static_cache_limits():
    cache = StaticCache(5)
    cache.update(0, *kv(T=4))
    with pytest.raises(InputError, match="max_cache_len=5 is full"):
        cache.update(0, *kv(T=2))
    with pytest.raises(InputError, match="batch 2, the input has batch 1"):
        cache.update(0, *kv(B=1, T=1))
    with pytest.raises(InputError, match="before layer 1"):
        cache.update(2, *kv(T=1))
    with pytest.raises(InputError, match="max_cache_len must be a positive int"):
        StaticCache(0)
    seen = cache.get_seq_length()
    cache.update(0, *kv(T=1))
    assert int(seen) == 4  # a snapshot, not the live counter


def test_static_cache_in_a_model_equals_dynamic(tmp_path):
    model, _ = llama_pair(tmp_path)
    rows = prompts((6, 3))
    ids, mask = left_pad(rows, PAD)
    nxt = torch.tensor([[9], [11]])
    with torch.no_grad():
        dyn = model(ids, attention_mask=mask, use_cache=True)
        step_d = model(nxt, attention_mask=torch.cat([mask, torch.ones(2, 1, dtype=torch.long)], 1),
                       past_key_values=dyn.past_key_values)
        static = StaticCache(12)
        wide = torch.ones(2, 12, dtype=torch.long)
        wide[:, :6] = mask
        first = model(ids, attention_mask=wide, past_key_values=static)
        step_s = model(nxt, attention_mask=wide, past_key_values=static)
        full = model(torch.cat([ids, nxt], 1), attention_mask=torch.cat([mask, torch.ones(2, 1, dtype=torch.long)], 1))
    real = mask.bool()
    assert_close(first.logits[real], dyn.logits[real], 1e-5, "prefill")
    assert_close(step_s.logits, step_d.logits, 1e-5, "static vs dynamic step")
    assert_close(step_s.logits[:, -1], full.logits[:, -1], 1e-5, "cached step vs full forward")
    assert static.get_seq_length() == 7 and first.past_key_values is static
