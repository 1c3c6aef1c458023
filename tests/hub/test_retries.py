"""Retries: 429/5xx with backoff and Retry-After, timeouts and cut downloads, all bounded in
count and time; a refused connection fails at once."""

from __future__ import annotations

import time

import pytest
import torch

import loom
from loom import hub as loom_hub
from tests.hub.conftest import FAST, repo_files, tiny_model


@pytest.fixture
def published(hub, tmp_path):
    model = tiny_model()
    hub.add_commit("acme/tiny", repo_files(model, None, tmp_path))
    return model


def same_weights(a, b) -> bool:
    ids = torch.tensor([[2, 5, 6, 3]])
    with torch.no_grad():
        return torch.equal(a(input_ids=ids).logits, b(input_ids=ids).logits)


def test_429_twice_then_200_succeeds(hub, published, tmp_path):
    hub.fail(429, times=2, retry_after=0)
    again = loom.BertForMaskedLM.from_pretrained("acme/tiny", cache_dir=tmp_path / "c")
    assert same_weights(again, published)
    assert len(hub.requests(r"HEAD .*config\.json")) == 3


def test_retry_after_is_honoured(hub, published, tmp_path):
    hub.fail(503, times=1, retry_after=0.6, match="config")
    start = time.monotonic()
    loom.AutoConfig.from_pretrained("acme/tiny", cache_dir=tmp_path / "c")
    assert time.monotonic() - start >= 0.6
    assert len(hub.requests(r"HEAD .*config")) == 2 and len(hub.requests(r"GET .*config")) == 1


def test_a_hub_that_keeps_failing_gives_a_network_error_in_bounded_time(hub, published, tmp_path, monkeypatch):
    hub.fail(500, times=None)
    start = time.monotonic()
    with pytest.raises(loom.NetworkError, match=r"kept failing \(HTTP 500\) after 4 attempt\(s\)") as e:
        loom.BertForMaskedLM.from_pretrained("acme/tiny", cache_dir=tmp_path / "c")
    assert time.monotonic() - start < 2.0
    assert len(hub.requests()) == FAST.attempts
    assert "HF_HUB_OFFLINE=1" in str(e.value)
    # A Retry-After longer than loom's wait budget fails at once rather than hang.
    hub.faults.clear()
    hub.clear_log()
    hub.fail(429, times=None, retry_after=3600)
    start = time.monotonic()
    with pytest.raises(loom.NetworkError, match=r"retry after 3600 s, beyond the 3 s loom waits"):
        loom.AutoConfig.from_pretrained("acme/tiny", cache_dir=tmp_path / "c")
    assert time.monotonic() - start < 1.0 and len(hub.requests()) == 1


def test_the_default_policy_bounds_count_and_time(hub, published, tmp_path, monkeypatch):
    default = loom_hub.NetworkPolicy()
    waits = []
    monkeypatch.setattr(loom_hub, "NETWORK", default)
    monkeypatch.setattr(loom_hub, "_sleep", waits.append)  # count the waits, do not take them
    hub.fail(503, times=None)
    with pytest.raises(loom.NetworkError, match=r"after 5 attempt\(s\) and 15\.0 s of waiting"):
        loom.AutoConfig.from_pretrained("acme/tiny", cache_dir=tmp_path / "c")
    assert waits == [1.0, 2.0, 4.0, 8.0] and len(hub.requests()) == default.attempts


def test_failures_during_the_download_are_retried(hub, published, tmp_path, monkeypatch):
    hub.fail(502, times=1, match="lfs-cdn")
    hub.slow(1.0, times=1, match="resolve/.*/config.json")  # longer than the timeout below
    monkeypatch.setattr(loom_hub, "NETWORK", loom_hub.NetworkPolicy(attempts=3, base_delay=0.01, timeout=0.3))
    again = loom.BertForMaskedLM.from_pretrained("acme/tiny", cache_dir=tmp_path / "c")
    assert same_weights(again, published)
    assert len(hub.requests("GET /lfs-cdn")) == 2 and len(hub.requests(r"HEAD .*config\.json")) == 2


def test_a_cut_transfer_resumes_with_a_range_request(hub, published, tmp_path):
    from loom.hub import _Transfer

    blob = hub.commit_of("acme/tiny").files["model.safetensors"]

    class Meta:
        location, size, etag = f"{hub.cdn}/lfs-cdn/{blob.sha256}", len(blob.data), blob.sha256

    path = tmp_path / "part"
    with open(path, "wb") as f:
        f.write(blob.data[:1000])  # what an attempt cut short had already written
        transfer = _Transfer(Meta, f, rel="model.safetensors", token=None)
        transfer.received = 1000
        transfer.hasher.update(blob.data[:1000])
        transfer.attempt()
    assert path.read_bytes() == blob.data and transfer.problem() == ""
    assert hub.requests("lfs-cdn")[-1].headers["range"] == "bytes=1000-"
    assert "authorization" not in hub.requests("lfs-cdn")[-1].headers


def test_a_refused_connection_is_not_retried(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(loom_hub, "_sleep", lambda s: pytest.fail("no retry expected"))
    start = time.monotonic()
    with pytest.raises(loom.NetworkError, match="cannot connect to http://127.0.0.1:9"):
        loom_hub.resolve("acme/tiny", "config.json", cache_dir=tmp_path)
    assert time.monotonic() - start < 1.0


def test_push_retries_what_huggingface_hub_does_not(hub, tmp_path):
    model = tiny_model()
    hub.fail(503, times=2, match="POST /api/repos/create")
    hub.fail(502, times=2, match="/commit/main")  # huggingface_hub posts a commit once
    commit = model.push_to_hub("acme/tiny")
    assert commit.oid == hub.commit_of("acme/tiny").oid
    assert len(hub.requests("POST /api/repos/create")) == 3 and len(hub.requests("/commit/main")) == 3
    # A failed LFS upload (a 4xx: huggingface_hub does not retry it) is a loom error naming the file.
    hub.clear_log()
    hub.fail(400, times=None, match="PUT /lfs-upload/")
    with torch.no_grad():
        model.bert.embeddings.word_embeddings.weight.add_(1.0)
    with pytest.raises(loom.NetworkError, match=r"Error while uploading 'model\.safetensors'.*HTTP 400"):
        model.push_to_hub("acme/tiny")
    assert len(hub.requests("PUT /lfs-upload/")) == 1 and not hub.requests("/commit/")
    assert hub.commit_of("acme/tiny").oid == commit.oid
