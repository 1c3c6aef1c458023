"""Each way a Hub call fails is its own loom error, and its message says what to do."""

from __future__ import annotations

import pickle

import pytest

import loom
from loom import hub as loom_hub
from tests.hub.conftest import repo_files, tiny_model


@pytest.fixture
def repos(hub, tmp_path):
    files = repo_files(tiny_model(), None, tmp_path)
    hub.add_commit("acme/public", files)
    hub.add_commit("acme/private", files, private=True)
    hub.add_commit("acme/gated", files, gated=True)
    hub.tokens = {"hf_ok": "write", "hf_reader": "read", "hf_accepted": "read"}
    hub.gated_ok = {"hf_accepted"}
    return tmp_path / "cache"


@pytest.mark.parametrize("repo,kwargs,error,message", [
    ("acme/nope", {}, loom.RepositoryNotFoundError,
     r"repository acme/nope not found at http://127\.0\.0\.1:\d+, or it is private .*pass token="),
    ("acme/private", {}, loom.RepositoryNotFoundError, r"private and the saved token \(or none\) cannot see it"),
    ("acme/gated", {}, loom.GatedRepoError, r"acme/gated is gated: accept its terms at http://.*/acme/gated"),
    ("acme/gated", {"token": "hf_reader"}, loom.GatedRepoError, r"then pass token=.*the token given was refused"),
    ("acme/public", {"token": "hf_bad"}, loom.UnauthorizedError, r"refused the token given \(HTTP 401\)"),
    ("acme/public", {"revision": "nope"}, loom.RevisionNotFoundError,
     r"revision 'nope' not found in acme/public: pass a branch, tag or commit that exists"),
    ("acme/public", {"subfolder": "sub"}, loom.EntryNotFoundError, r"sub/config\.json not found in acme/public"),
    ("not a repo!", {}, loom.EntryNotFoundError, r"neither an existing folder nor a valid Hub repo id"),
])
def test_error_types_and_messages(repos, repo, kwargs, error, message):
    with pytest.raises(error, match=message):
        loom.BertForMaskedLM.from_pretrained(repo, cache_dir=repos, **kwargs)


def test_allowed_tokens_load_private_and_gated_repos(repos):
    assert loom.AutoConfig.from_pretrained("acme/private", token="hf_reader", cache_dir=repos)
    assert loom.AutoConfig.from_pretrained("acme/gated", token="hf_accepted", cache_dir=repos)


def test_push_without_write_access(repos, hub):
    with pytest.raises(loom.UnauthorizedError, match=r"creating acme/new: the Hub refused the token given \(HTTP 403\).*write"):
        tiny_model().config.push_to_hub("acme/new", token="hf_reader")
    assert "acme/new" not in hub.repos
    with pytest.raises(loom.UnauthorizedError, match=r"HTTP 401"):
        tiny_model().config.push_to_hub("acme/public")  # no token at all
    info = tiny_model().config.push_to_hub("acme/new", token="hf_ok")
    assert hub.commit_of("acme/new").oid == info.oid


def test_bad_arguments(repos, tmp_path):
    with pytest.raises(loom.InputError, match="revision must be a branch, tag or commit"):
        loom.AutoConfig.from_pretrained("acme/public", revision=3, cache_dir=repos)
    with pytest.raises(loom.InputError, match=r"revision '\.\./x' is not a branch"):
        loom.AutoConfig.from_pretrained("acme/public", revision="../x", cache_dir=repos)
    with pytest.raises(loom.InputError, match="nothing to push"):
        loom.hub_push.upload_folder(tmp_path / "missing", "acme/public")
    rev = loom_hub.pin("acme/public", "v1")
    assert isinstance(rev, loom_hub.Revision) and rev == "v1" and rev.commit is None
    rev.commit = "a" * 40
    again = pickle.loads(pickle.dumps(rev))
    assert (again, again.repo_id, again.commit) == ("v1", "acme/public", "a" * 40)
    assert loom_hub.pin("acme/public", rev) is rev and loom_hub.pin("acme/other", rev).commit is None


def test_a_bare_repo_name_goes_to_the_token_owner(repos, hub):
    info = tiny_model().config.push_to_hub("bare", token="hf_ok")
    assert hub.commit_of("user/bare").oid == info.oid and "/user/bare/commit/" in info
