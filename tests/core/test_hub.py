"""hub.resolve: local folders first, cache-first for pinned revisions, offline errors."""

from __future__ import annotations

import pytest
import torch

import loom
from loom import hub

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def fill_cache(cache, repo_id: str, files: dict[str, bytes], commit: str = COMMIT, branch: str = "main"):
    """Lay out files as huggingface_hub's cache does: snapshots/<commit>/<file>, refs/<branch>."""
    root = cache / f"models--{repo_id.replace('/', '--')}"
    snap = root / "snapshots" / commit
    snap.mkdir(parents=True)
    for name, data in files.items():
        (snap / name).write_bytes(data)
    (root / "refs").mkdir()
    (root / "refs" / branch).write_text(commit)


@pytest.fixture
def unreachable_hub(monkeypatch):
    # Any request would go to a closed loopback port and fail at once.
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)


def test_pinned_cached_revision_needs_no_network(tmp_path, unreachable_hub):
    torch.manual_seed(0)
    model = loom.BertModel(loom.BertConfig(vocab_size=30, hidden_size=8, num_hidden_layers=1,
                                           num_attention_heads=2, intermediate_size=8))
    model.save_pretrained(tmp_path / "src")
    files = {p.name: p.read_bytes() for p in (tmp_path / "src").iterdir()}
    fill_cache(tmp_path / "cache", "acme/tiny", files)
    again = loom.AutoModel.from_pretrained("acme/tiny", revision=COMMIT, cache_dir=tmp_path / "cache")
    ids = torch.tensor([[1, 2, 3]])
    with torch.no_grad():
        assert torch.equal(again(input_ids=ids).last_hidden_state, model.eval()(input_ids=ids).last_hidden_state)


def test_offline_uses_cached_branch_and_names_missing_file(tmp_path, monkeypatch):
    fill_cache(tmp_path / "cache", "acme/tiny", {"config.json": b'{"model_type": "bert"}'})
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    cfg = loom.AutoConfig.from_pretrained("acme/tiny", cache_dir=tmp_path / "cache")
    assert isinstance(cfg, loom.BertConfig)
    with pytest.raises(loom.OfflineError, match=r"model\.safetensors.*acme/tiny|no weights"):
        hub.resolve("acme/tiny", "model.safetensors", cache_dir=tmp_path / "cache")
    assert hub.resolve("acme/tiny", "tokenizer.json", cache_dir=tmp_path / "cache", required=False) is None


def test_network_failure_is_a_loom_error(tmp_path, unreachable_hub):
    with pytest.raises(loom.HubError, match="acme/tiny"):
        hub.resolve("acme/tiny", "config.json", cache_dir=tmp_path / "cache")


def test_local_folder_and_subfolder(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "config.json").write_text("{}")
    assert hub.resolve(tmp_path, "config.json", subfolder="sub") == tmp_path / "sub" / "config.json"
    assert hub.resolve(tmp_path, "config.json", required=False) is None
    with pytest.raises(loom.EntryNotFoundError, match=r"sub/missing\.json not found in the folder"):
        hub.resolve(tmp_path, "missing.json", subfolder="sub")
