"""The test Hub speaks the protocol the installed huggingface_hub client expects: checked
with the client itself and with plain HTTP."""

from __future__ import annotations

import hashlib

import httpx2
import pytest
from huggingface_hub import CommitOperationAdd, HfApi, hf_hub_download
from huggingface_hub import errors as hf_errors

from tests.hub_server import git_sha1


def test_upload_regular_and_lfs_then_download_with_the_client(hub, tmp_path):
    api = HfApi(endpoint=hub.url)
    assert api.create_repo("acme/x").repo_id == "acme/x"
    assert api.create_repo("acme/x", exist_ok=True).repo_id == "acme/x"
    weights = bytes(range(256)) * 40
    info = api.create_commit("acme/x", [CommitOperationAdd("config.json", b'{"a": 1}'),
                                        CommitOperationAdd("model.safetensors", weights)],
                             commit_message="first")
    assert hub.requests("POST /acme/x.git/info/lfs/objects/batch") and hub.requests("PUT /lfs-upload/")
    commit = hub.commit_of("acme/x")
    assert info.oid == commit.oid and commit.files["model.safetensors"].lfs
    assert not commit.files["config.json"].lfs
    path = hf_hub_download("acme/x", "model.safetensors", cache_dir=tmp_path, endpoint=hub.url)
    assert open(path, "rb").read() == weights
    model = api.model_info("acme/x", files_metadata=True)
    assert model.sha == commit.oid
    sizes = {s.rfilename: (s.size, s.lfs["sha256"] if s.lfs else None) for s in model.siblings}
    assert sizes["model.safetensors"] == (len(weights), hashlib.sha256(weights).hexdigest())
    api.create_branch("acme/x", branch="dev")
    refs = api.list_repo_refs("acme/x")
    assert {b.name: b.target_commit for b in refs.branches} == {"main": commit.oid, "dev": commit.oid}


def test_resolve_headers_redirects_and_ranges(hub):
    weights = b"\x01" * 3000
    oid = hub.add_commit("acme/x", {"config.json": b"{}", "model.safetensors": weights})
    head = httpx2.head(f"{hub.url}/acme/x/resolve/main/config.json")
    assert head.status_code == 200 and head.headers["X-Repo-Commit"] == oid
    assert head.headers["ETag"] == f'"{git_sha1(b"{}")}"' and head.headers["Content-Length"] == "2"
    lfs = httpx2.head(f"{hub.url}/acme/x/resolve/{oid}/model.safetensors")
    sha = hashlib.sha256(weights).hexdigest()
    assert lfs.status_code == 302 and lfs.headers["X-Linked-Etag"] == f'"{sha}"'
    assert lfs.headers["X-Linked-Size"] == "3000" and lfs.headers["Location"].startswith("http://localhost:")
    part = httpx2.get(lfs.headers["Location"], headers={"Range": "bytes=1000-1099"})
    assert part.status_code == 206 and part.content == weights[1000:1100]
    assert part.headers["Content-Range"] == "bytes 1000-1099/3000"
    missing = httpx2.head(f"{hub.url}/acme/x/resolve/main/nope.json")
    assert missing.headers["X-Error-Code"] == "EntryNotFound" and missing.headers["X-Repo-Commit"] == oid
    assert httpx2.head(f"{hub.url}/acme/x/resolve/v9/config.json").headers["X-Error-Code"] == "RevisionNotFound"
    assert httpx2.head(f"{hub.url}/acme/y/resolve/main/config.json").headers["X-Error-Code"] == "RepoNotFound"


def test_faults_and_request_log(hub):
    hub.add_commit("acme/x", {"config.json": b"{}"})
    hub.fail(429, times=2, retry_after=7, match="config")
    url = f"{hub.url}/acme/x/resolve/main/config.json"
    answers = [httpx2.get(url) for _ in range(3)]
    assert [a.status_code for a in answers] == [429, 429, 200] and answers[0].headers["Retry-After"] == "7"
    assert len(hub.requests("GET /acme/x/resolve")) == 3
    hub.slow(0.5, match="config")
    with pytest.raises(httpx2.ReadTimeout):
        httpx2.get(url, timeout=0.1)
    hub.stop()
    with pytest.raises(httpx2.ConnectError):
        httpx2.get(url)


def test_private_and_gated_repos_as_the_client_sees_them(hub):
    hub.add_commit("acme/private", {"config.json": b"{}"}, private=True)
    hub.add_commit("acme/gated", {"config.json": b"{}"}, gated=True)
    api = HfApi(endpoint=hub.url)
    with pytest.raises(hf_errors.RepositoryNotFoundError):
        api.model_info("acme/private", token=False)
    with pytest.raises(hf_errors.GatedRepoError):
        api.file_exists("acme/gated", "config.json", token=False)
    assert api.model_info("acme/private", token="any").id == "acme/private"
