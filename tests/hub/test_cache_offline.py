"""Cache-first loads: zero requests for a cached pinned commit, offline loads by branch name,
the cache as fallback when the Hub is down, force_download, progress bars."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys

import pytest
import torch

import loom
from loom import hub as loom_hub
from tests.hub.conftest import FAST, logits, repo_files, tiny_model, tiny_tokenizer


@pytest.fixture
def published(hub, tmp_path):
    model, tokenizer = tiny_model(), tiny_tokenizer(tmp_path / "tok")
    oid = hub.add_commit("acme/tiny", repo_files(model, tokenizer, tmp_path))
    return model, tokenizer, oid


def load(revision=None, cache=None, **kwargs):
    model = loom.AutoModelForMaskedLM.from_pretrained("acme/tiny", revision=revision, cache_dir=cache, **kwargs)
    tok = loom.AutoTokenizer.from_pretrained("acme/tiny", revision=revision, cache_dir=cache, **kwargs)
    return model, tok


def test_warm_cache_and_pinned_commit_make_no_request(hub, published, tmp_path):
    model, tokenizer, oid = published
    cache = tmp_path / "cache"
    load(oid, cache)
    probed = {r.path for r in hub.requests("HEAD")}
    assert "/acme/tiny/resolve/%s/added_tokens.json" % oid in probed  # absent files were asked once
    hub.clear_log()
    again, tok = load(oid, cache)
    assert hub.requests() == [], [str(r) for r in hub.requests()]
    assert torch.equal(logits(again, tok), logits(model, tokenizer))
    # By branch name, one HEAD per load names the commit; every file then comes from the cache.
    load("main", cache)
    assert [str(r) for r in hub.requests()] == ["HEAD /acme/tiny/resolve/main/config.json",
                                               "HEAD /acme/tiny/resolve/main/tokenizer.json"]


def test_offline_loads_the_cached_commit_of_a_branch(hub, published, tmp_path, monkeypatch):
    model, tokenizer, oid = published
    cache = tmp_path / "cache"
    load(None, cache)
    hub.add_commit("acme/other", {"config.json": b"{}"})
    hub.stop()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    again, tok = load("main", cache)
    assert torch.equal(logits(again, tok), logits(model, tokenizer))
    with pytest.raises(loom.OfflineError, match=r"config\.json of acme/other .*not in the cache.*HF_HUB_OFFLINE"):
        loom.AutoModel.from_pretrained("acme/other", cache_dir=cache)
    with pytest.raises(loom.OfflineError, match=r"config\.json of acme/tiny \(revision dev\)"):
        loom.AutoModel.from_pretrained("acme/tiny", revision="dev", cache_dir=cache)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    with pytest.raises(loom.OfflineError, match="local_files_only=True"):
        loom.AutoConfig.from_pretrained("acme/other", cache_dir=cache, local_files_only=True)
    assert load("main", cache, local_files_only=True)[0].config == model.config


def test_hub_down_falls_back_to_the_cache_then_fails_fast(hub, published, tmp_path, caplog):
    model, tokenizer, oid = published
    cache = tmp_path / "cache"
    load(None, cache)
    # A cache filled by another tool has no markers of absent files: optional files that are
    # not cached then count as absent once the load has fallen back to the cache.
    shutil.rmtree(cache / "models--acme--tiny" / ".no_exist")
    hub.clear_log()
    hub.fail(503, times=None)
    with caplog.at_level(logging.WARNING, logger="loom.hub"):
        again, tok = load(None, cache)
    assert torch.equal(logits(again, tok), logits(model, tokenizer))
    assert caplog.text.count(f"from the cache at commit {oid}") == 2  # once per load
    assert len(hub.requests()) == 2 * FAST.attempts  # the first file of each load, retried; no more
    hub.stop()  # connections are now refused: no retries, the cache again
    assert load("main", cache)[0].config == model.config
    with pytest.raises(loom.NetworkError, match=r"config\.json of acme/new: cannot connect to http://127"):
        loom.AutoModel.from_pretrained("acme/new", cache_dir=cache)


def test_force_download_fetches_again_once_per_file(hub, published, tmp_path):
    model, _, oid = published
    cache = tmp_path / "cache"
    loom.BertForMaskedLM.from_pretrained("acme/tiny", revision=oid, cache_dir=cache)
    hub.clear_log()
    again = loom.BertForMaskedLM.from_pretrained("acme/tiny", revision=oid, cache_dir=cache, force_download=True)
    assert [str(r).split("/")[-1] for r in hub.requests("GET")] == ["config.json", hub.commit_of(
        "acme/tiny").files["model.safetensors"].sha256]
    assert again.config == model.config
    with pytest.raises(loom.InputError, match="force_download=True needs the network"):
        loom.BertForMaskedLM.from_pretrained("acme/tiny", cache_dir=cache, force_download=True,
                                             local_files_only=True)


def test_progress_bar_for_large_files_only_and_it_can_be_turned_off(hub, published, tmp_path, monkeypatch):
    from huggingface_hub.utils import disable_progress_bars, enable_progress_bars

    bars = []

    def recording_bar(**kwargs):
        bar = real(**kwargs)
        bars.append(bar)
        return bar

    real = loom_hub.progress_bar
    monkeypatch.setattr(loom_hub, "progress_bar", recording_bar)
    size = len(hub.commit_of("acme/tiny").files["model.safetensors"].data)
    monkeypatch.setattr(loom_hub, "LARGE_FILE", size)  # the weights are "large", the JSON files not
    load(None, tmp_path / "c1")
    assert [(b.desc, b.total, b.n) for b in bars] == [("model.safetensors", size, size)]
    disable_progress_bars(loom_hub.PROGRESS_NAME)
    try:
        load(None, tmp_path / "c2")
    finally:
        enable_progress_bars(loom_hub.PROGRESS_NAME)
    assert len(bars) == 2 and bars[1].disable is True


def test_a_cached_pinned_file_needs_no_huggingface_hub_import(hub, published, tmp_path):
    _, _, oid = published
    cache = tmp_path / "cache"
    loom_hub.resolve("acme/tiny", "config.json", revision=oid, cache_dir=cache)
    code = ("import sys; from loom import hub; "
            f"p = hub.resolve('acme/tiny', 'config.json', revision='{oid}', cache_dir=sys.argv[1]); "
            "print(p.name, 'huggingface_hub' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(cache)], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["config.json", "False"]
