"""The compiled decoding path: static cache + torch.compile, compiled once in an explicit
warm-up, the same tokens as eager decoding, and never a silent recompilation.

On these shared 2-core CPUs the warm-up (one inductor compilation of a 2-layer model, C++
kernels included) took 20 to 56 s per model, so the test is marked slow (it still runs in
the default suite).
"""

from __future__ import annotations

import pytest
import torch

from loom.errors import InputError
from tests.generation.common import PAD, gpt2_pair, llama_pair, prompts
from tests.helpers import left_pad


@pytest.mark.slow
@pytest.mark.parametrize("make,batch", [(llama_pair, 1), (gpt2_pair, 2)], ids=["llama-batch1", "gpt2-batch2"])
def test_compiled_generation_equals_eager(tmp_path, make, batch):
    model, _ = make(tmp_path)
    ids, mask = left_pad(prompts((6, 3)[:batch]), PAD)
    eager = model.generate(ids, attention_mask=mask, max_new_tokens=10)
    beams = model.generate(ids[:1], max_new_tokens=6, num_beams=2)
    model.compile_for_generation(batch_size=batch, max_length=20)
    assert model.generate(ids, attention_mask=mask, max_new_tokens=10).tolist() == eager.tolist()
    shorter = model.generate(ids, attention_mask=mask, max_new_tokens=4)  # same shapes: no new compilation
    assert shorter.tolist() == eager[:, :ids.shape[1] + 4].tolist()
    if batch == 2:  # two beams of one prompt fill the compiled batch
        assert model.generate(ids[:1], max_new_tokens=6, num_beams=2).tolist() == beams.tolist()
    other = prompts((6, 3, 5)[:3 - batch])
    with pytest.raises(InputError, match=f"compiled for generation with batch_size={batch}"):
        model.generate(left_pad(other, PAD)[0], max_new_tokens=4)
    with pytest.raises(InputError, match="max_length=20"):
        model.generate(ids, attention_mask=mask, max_new_tokens=16)
    model.uncompile_for_generation()
    assert model.generate(ids[:1], max_new_tokens=4).tolist() == eager[:1, :ids.shape[1] + 4].tolist()


def test_compile_arguments(tmp_path):
    model, _ = llama_pair(tmp_path)
    with pytest.raises(InputError, match="batch_size must be a positive int"):
        model.compile_for_generation(batch_size=0, max_length=8)
    assert "_compiled_generation" not in model.__dict__
    assert isinstance(model.generate(torch.tensor([[4, 5]]), max_new_tokens=2), torch.Tensor)
