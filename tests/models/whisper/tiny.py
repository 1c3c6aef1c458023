"""Tiny random Whisper models built with `transformers` (the reference), saved for loom to load.

Vocabulary of 100: text 0-49, <|endoftext|> 50 (eos, bos, pad), <|startoftranscript|> 51,
languages 52-54, <|translate|> 56, <|transcribe|> 57, <|notimestamps|> 61, timestamps 62-99:
the order of the real vocabulary, so that the timestamp rules see the same layout.
"""

from __future__ import annotations

import torch
import transformers

import loom
from loom.models.whisper.languages import LANGUAGES

VOCAB, EOS, START, NO_TIMESTAMPS = 100, 50, 51, 61
LANG_TO_ID = {"<|en|>": 52, "<|fr|>": 53, "<|de|>": 54}
TASK_TO_ID = {"translate": 56, "transcribe": 57}
MEL = 8


def reference_config(**overrides) -> transformers.WhisperConfig:
    base = dict(vocab_size=VOCAB, num_mel_bins=MEL, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
                decoder_attention_heads=4, encoder_ffn_dim=24, decoder_ffn_dim=24, d_model=16,
                max_source_positions=50, max_target_positions=40, pad_token_id=EOS, bos_token_id=EOS,
                eos_token_id=EOS, decoder_start_token_id=START, suppress_tokens=None, begin_suppress_tokens=None,
                attn_implementation="eager")
    return transformers.WhisperConfig(**{**base, **overrides})


def make_reference(seed: int = 2, std: float = 1.0, multilingual: bool = True, **overrides):
    """A reference model with weights drawn wide enough that greedy decoding varies."""
    torch.manual_seed(seed)
    ref = transformers.WhisperForConditionalGeneration(reference_config(**overrides)).eval()
    with torch.no_grad():
        for name, p in ref.named_parameters():
            if name != "model.encoder.embed_positions.weight":  # the sinusoids stay
                p.normal_(0.0, std if p.dim() > 1 else 0.1)
    if multilingual:
        gen = ref.generation_config
        gen.lang_to_id, gen.task_to_id = dict(LANG_TO_ID), dict(TASK_TO_ID)
        gen.no_timestamps_token_id, gen.is_multilingual = NO_TIMESTAMPS, True
    return ref


def make_pair(tmp_path, cls: str = "WhisperForConditionalGeneration", name: str = "ref", **kwargs):
    """(loom model, reference model, folder) with the same weights and generation config."""
    ref = make_reference(**kwargs)
    if cls == "WhisperModel":
        ref = ref.model
    folder = tmp_path / name
    ref.save_pretrained(folder)
    return getattr(loom, cls).from_pretrained(folder), ref, folder


def features(B: int = 2, frames: int = 100, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, MEL, frames, generator=g)


def decoder_ids(B: int = 2, T: int = 7, seed: int = 3) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 50, (B, T), generator=g)
    ids[:, 0] = START
    return ids


def byte_alphabet() -> list[str]:
    """The 256 printable stand-ins of byte-level BPE for the bytes 0-255."""
    printable = [*range(33, 127), *range(161, 173), *range(174, 256)]
    extra = iter(range(256, 512))
    return sorted(chr(b) if b in printable else chr(next(extra)) for b in range(256))


def save_reference_tokenizer(path):
    """transformers' WhisperTokenizer on a small byte-level BPE vocabulary with Whisper's
    special tokens (the 100 languages included) and the 1501 timestamp tokens, saved to `path`."""
    vocab = {c: i for i, c in enumerate(byte_alphabet())}
    merges = [("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("Ġ", "a"), ("i", "n"), ("Ġ", "c"), ("Ġc", "a")]
    for a, b in merges:
        vocab[a + b] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    specials = ["<|startoftranscript|>", *(f"<|{code}|>" for code in LANGUAGES), "<|translate|>", "<|transcribe|>",
                "<|startoflm|>", "<|startofprev|>", "<|nospeech|>", "<|notimestamps|>"]
    ref = transformers.WhisperTokenizer(vocab=vocab, merges=merges, pad_token="<|endoftext|>",
                                        additional_special_tokens=specials)
    ref.add_tokens([f"<|{i * 0.02:.2f}|>" for i in range(1501)])
    ref.save_pretrained(path)
    return path
