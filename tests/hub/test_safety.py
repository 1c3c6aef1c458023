"""Safety: paths outside the repo are refused, damaged downloads never enter the cache, and
the token appears in no log line and no error."""

from __future__ import annotations

import json
import logging
import traceback

import pytest

import loom
from loom import hub as loom_hub
from tests.hub.conftest import repo_files, tiny_model


def all_files(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() or p.is_symlink())


@pytest.mark.parametrize("bad", ["../../evil.safetensors", "/tmp/evil.safetensors", "sub/../../evil.safetensors"])
def test_an_index_naming_a_path_outside_the_repo_is_refused(hub, tmp_path, bad):
    files = repo_files(tiny_model(), None, tmp_path / "src")
    index = {"metadata": {}, "weight_map": {"bert.embeddings.word_embeddings.weight": bad}}
    hub.add_commit("acme/evil", {"config.json": files["config.json"],
                                 "model.safetensors.index.json": json.dumps(index).encode()})
    work = tmp_path / "work"
    with pytest.raises(loom.CheckpointError, match="a path outside the checkpoint; refused"):
        loom.BertForMaskedLM.from_pretrained("acme/evil", cache_dir=work / "cache")
    assert not hub.requests("evil.safetensors")
    assert all(f.startswith("cache/") for f in all_files(work)) and not list(tmp_path.rglob("evil*"))
    with pytest.raises(loom.HubError, match="a path outside the repo acme/evil; refused"):
        loom_hub.resolve("acme/evil", bad, cache_dir=work / "cache")


def test_a_listing_naming_a_path_outside_the_repo_is_refused(hub, tmp_path):
    hub.add_commit("acme/evil", {"config.json": b"{}", "../outside.txt": b"x"})
    with pytest.raises(loom.HubError, match=r"names '\.\./outside\.txt', a path outside the repo"):
        loom_hub.download("acme/evil", cache_dir=tmp_path / "work" / "cache")
    assert not hub.requests("resolve") and not list(tmp_path.rglob("outside*"))
    assert not (tmp_path / "work" / "cache" / "models--acme--evil" / "snapshots").exists()


@pytest.mark.parametrize("path,mode,why", [
    ("model.safetensors", "flip", r"sha256 [0-9a-f]{64}, the Hub says"),
    ("model.safetensors", "truncate", r"\d+ bytes received, the Hub says \d+"),
    ("config.json", "flip", r"git sha1 [0-9a-f]{40}, the Hub says"),
])
def test_a_damaged_download_is_discarded_and_reported(hub, tmp_path, path, mode, why):
    model = tiny_model()
    hub.add_commit("acme/tiny", repo_files(model, None, tmp_path / "src"))
    hub.corrupt("acme/tiny", path, mode)
    cache = tmp_path / "cache"
    with pytest.raises(loom.CorruptDownloadError, match=rf"{path} of acme/tiny .*{why}.*discarded"):
        loom.BertForMaskedLM.from_pretrained("acme/tiny", cache_dir=cache)
    storage = cache / "models--acme--tiny"
    assert not [f for f in all_files(storage) if f.startswith("blobs/") and path == "config.json"]
    assert not any(f.endswith(".incomplete") or f.endswith(path) for f in all_files(storage))
    hub.corrupt_blobs.clear()  # the Hub serves the right bytes again: a new load succeeds
    again = loom.BertForMaskedLM.from_pretrained("acme/tiny", cache_dir=cache)
    assert again.config == model.config


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines = []

    def emit(self, record):
        self.lines.append(self.format(record))


def _failing_calls(hub, tmp_path, secret: str, wrong: str) -> list[Exception]:
    """Push and load with the right token, then the ways a call fails; returns the errors."""
    tiny_model().push_to_hub("acme/private", private=True, token=secret)
    loom.BertForMaskedLM.from_pretrained("acme/private", token=secret, cache_dir=tmp_path / "c")
    errors = []
    for token, fault in ((wrong, None), (secret, 500), (secret, 401), (secret, 400), (wrong, "push")):
        hub.faults.clear()
        if isinstance(fault, int):
            hub.fail(fault, times=None)
        try:
            if fault == "push":
                tiny_model().push_to_hub("acme/private", token=token)
            else:
                loom.BertForMaskedLM.from_pretrained("acme/private", token=token, cache_dir=tmp_path / "d")
        except loom.HubError as e:
            errors.append(e)
    return errors


@pytest.mark.parametrize("leaky_server", [False, True])
def test_the_token_is_in_no_log_and_no_error(hub, tmp_path, leaky_server):
    secret, wrong = "hf_SeCrEt123token", "hf_WrOnG456token"
    hub.tokens = {secret: "write"}
    # A leaky server repeats the Authorization header in its errors: loom must not pass it on.
    hub.echo_auth = leaky_server
    records = _Records()
    # Everything (httpx, huggingface_hub, loom) with an honest server; loom's own with a leaky one
    # (the HTTP library's debug log of the answer's headers shows what such a server sent).
    watched = [logging.getLogger("loom")] if leaky_server else [logging.getLogger()]
    old = [(lg, lg.level) for lg in watched]
    for lg in watched:
        lg.addHandler(records)
        lg.setLevel(logging.DEBUG)
    try:
        errors = _failing_calls(hub, tmp_path, secret, wrong)
    finally:
        for lg, level in old:
            lg.removeHandler(records)
            lg.setLevel(level)
    assert [type(e).__name__ for e in errors] == ["UnauthorizedError", "NetworkError", "UnauthorizedError",
                                                  "NetworkError", "UnauthorizedError"]
    text = "\n".join(records.lines + ["".join(traceback.format_exception(e)) + repr(e) for e in errors])
    assert "HTTP 500" in text and "kept failing" in text and "answered HTTP 400: simulated 400" in text
    assert ("you sent Bearer ***" in text) is leaky_server  # the server's words, with the token masked
    assert secret not in text and wrong not in text
    assert any(r.authorized for r in hub.requests("HEAD"))  # the token was sent to the Hub ...
    assert not any(r.authorized for r in hub.requests("lfs-cdn"))  # ... and not to the CDN
