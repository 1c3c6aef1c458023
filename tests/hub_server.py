"""A Hugging Face Hub-protocol server for tests, on 127.0.0.1 with a random port.

No real Hub is reachable here, so tests start this server and point `HF_ENDPOINT` at it; the
real `huggingface_hub` client (and loom through it) then talks real HTTP to it. It implements
what the client of the installed version calls for loom's verbs:

- repos: `POST /api/repos/create` (409 with the URL when it exists), model info with siblings
  (`GET /api/models/{id}[/revision/{rev}]`, `?blobs=true` adds sizes and LFS data), refs
  (`GET /api/models/{id}/refs`), branches (`POST /api/models/{id}/branch/{name}`),
  `POST /api/validate-yaml`;
- uploads: `POST /api/models/{id}/preupload/{rev}` (regular or LFS per file, the remote oid
  for no-op detection), the LFS batch API (`POST /{id}.git/info/lfs/objects/batch`, then
  `PUT` / verify of each object), `POST /api/models/{id}/commit/{rev}` (NDJSON: header,
  file, lfsFile, deletedFile; `create_pr=1` opens `refs/pr/N`);
- downloads: `GET`/`HEAD /{id}/resolve/{rev}/{path}`: regular files answer 200 with their
  git-sha1 ETag, LFS files a 302 to a "CDN" on another origin (`localhost`) with
  X-Linked-Etag (sha256) and X-Linked-Size; every answer carries X-Repo-Commit; the CDN
  serves byte ranges (206);
- errors as the Hub sends them (X-Error-Code RepoNotFound / RevisionNotFound / EntryNotFound /
  GatedRepo), private and gated repos, tokens;
- on demand: error answers (429 with Retry-After, 5xx) for the next N requests, slow answers,
  corrupted or truncated file bodies, a hook run after a request; and a log of every request.

HTTP/1.0 (one connection per request), so a stopped server refuses at once.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".onnx", ".gguf")
LFS_MIN_SIZE = 10 * 1024 * 1024
_REPO = r"(?P<repo>[^/]+/[^/]+)"


def git_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Blob:
    data: bytes
    lfs: bool

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def oid(self) -> str:
        """What the Hub compares for no-op uploads: sha256 for LFS files, git sha1 otherwise."""
        return self.sha256 if self.lfs else git_sha1(self.data)


@dataclass
class Commit:
    oid: str
    parent: str | None
    message: str
    files: dict[str, Blob]


@dataclass
class Repo:
    id: str
    private: bool = False
    gated: bool = False
    branches: dict[str, str] = field(default_factory=dict)   # name -> commit oid (refs/pr/N too)
    tags: dict[str, str] = field(default_factory=dict)
    commits: dict[str, Commit] = field(default_factory=dict)
    prs: int = 0

    def commit(self, rev: str) -> Commit | None:
        oid = self.branches.get(rev) or self.tags.get(rev) or rev
        return self.commits.get(oid)


@dataclass
class Fault:
    status: int | None          # None: answer normally, only `delay` late
    times: int | None           # None: forever
    match: str | None           # regex on "METHOD /path"
    retry_after: float | None = None
    delay: float = 0.0


@dataclass
class Request:
    method: str
    path: str
    authorized: bool
    headers: dict[str, str]

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


class HubError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, headers or {}


class HubServer:
    """Start with `with HubServer() as hub:` (or start()/stop()); `hub.url` is the endpoint."""

    def __init__(self):
        self.repos: dict[str, Repo] = {}
        self.lfs: dict[str, bytes] = {}
        self.log: list[Request] = []
        self.faults: list[Fault] = []
        self.corrupt_blobs: dict[str, str] = {}   # sha256 or git sha1 -> "flip" | "truncate"
        self.hooks: list[tuple[str, object]] = []  # (regex on "METHOD /path", fn(server)), run once
        self.tokens: dict[str, str] = {}           # token -> "read" | "write"; empty: anyone writes
        self.gated_ok: set[str] = set()            # tokens that accepted gated repos' terms
        self.echo_auth = False                     # put the Authorization header in error answers
        self.lock = threading.RLock()
        self._httpd: ThreadingHTTPServer | None = None

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> HubServer:
        handler = type("Handler", (_Handler,), {"hub": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def cdn(self) -> str:
        """Another origin for LFS bodies, as the real Hub's CDN is: the token is not sent there."""
        return f"http://localhost:{self.port}"

    # -- state for tests -----------------------------------------------------------------

    def create_repo(self, repo_id: str, *, private: bool = False, gated: bool = False) -> Repo:
        with self.lock:
            repo = Repo(repo_id, private=private, gated=gated)
            self.repos[repo_id] = repo
            self._commit(repo, "main", {".gitattributes": Blob(b"*.safetensors filter=lfs\n", False)},
                         "initial commit")
            return repo

    def add_commit(self, repo_id: str, files: dict[str, bytes], *, branch: str = "main",
                   message: str = "add files", lfs: bool | None = None, **repo_kwargs) -> str:
        """Commit `files` directly (no path checks: tests build hostile repos this way)."""
        with self.lock:
            repo = self.repos.get(repo_id) or self.create_repo(repo_id, **repo_kwargs)
            blobs = {p: Blob(d, lfs if lfs is not None else _is_lfs(p, len(d))) for p, d in files.items()}
            return self._commit(repo, branch, blobs, message)

    def commit_of(self, repo_id: str, rev: str = "main") -> Commit:
        return self.repos[repo_id].commit(rev)

    def fail(self, status: int, *, times: int | None = 1, match: str | None = None,
             retry_after: float | None = None) -> None:
        """Answer `status` to the next `times` requests matching `match` (all: None)."""
        self.faults.append(Fault(status, times, match, retry_after))

    def slow(self, seconds: float, *, times: int | None = 1, match: str | None = None) -> None:
        self.faults.append(Fault(None, times, match, delay=seconds))

    def corrupt(self, repo_id: str, path: str, mode: str = "flip", rev: str = "main") -> None:
        """Serve damaged bytes for a file while its metadata stays right."""
        blob = self.commit_of(repo_id, rev).files[path]
        self.corrupt_blobs[blob.sha256 if blob.lfs else git_sha1(blob.data)] = mode

    def after(self, match: str, fn) -> None:
        """Run `fn(server)` once, when the answer to the first request matching `match` is
        decided and before it is sent (so the next request sees the change)."""
        self.hooks.append((match, fn))

    def requests(self, match: str | None = None) -> list[Request]:
        with self.lock:
            return [r for r in self.log if match is None or re.search(match, str(r))]

    def clear_log(self) -> None:
        with self.lock:
            self.log.clear()

    # -- internals -----------------------------------------------------------------------

    def _commit(self, repo: Repo, branch: str, changes: dict[str, Blob | None], message: str,
                parent: str | None = None) -> str:
        parent = parent if parent is not None else repo.branches.get(branch)
        files = dict(repo.commits[parent].files) if parent else {}
        for path, blob in changes.items():
            if blob is None:
                files.pop(path, None)
            else:
                files[path] = blob
        seed = json.dumps([parent, message, len(repo.commits), sorted((p, b.oid) for p, b in files.items())])
        oid = hashlib.sha1(seed.encode()).hexdigest()
        repo.commits[oid] = Commit(oid, parent, message, files)
        repo.branches[branch] = oid
        return oid

    def _take_fault(self, line: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.match is None or re.search(fault.match, line):
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self.faults.remove(fault)
                    return fault
        return None

    def _run_hooks(self, line: str) -> None:
        with self.lock:
            due = [h for h in self.hooks if re.search(h[0], line)]
            for hook in due:
                self.hooks.remove(hook)
        for _, fn in due:
            fn(self)


def _is_lfs(path: str, size: int) -> bool:
    return path.endswith(LFS_SUFFIXES) or size >= LFS_MIN_SIZE


class _Handler(BaseHTTPRequestHandler):
    hub: HubServer
    protocol_version = "HTTP/1.0"

    ROUTES = [
        ("POST", r"/api/repos/create", "create_repo"),
        ("POST", r"/api/validate-yaml", "validate_yaml"),
        ("GET", r"/api/whoami-v2", "whoami"),
        ("POST", rf"/api/models/{_REPO}/preupload/(?P<rev>[^/]+)", "preupload"),
        ("POST", rf"/api/models/{_REPO}/commit/(?P<rev>[^/]+)", "commit"),
        ("POST", rf"/api/models/{_REPO}/branch/(?P<branch>[^/]+)", "create_branch"),
        ("GET", rf"/api/models/{_REPO}/refs", "refs"),
        ("GET", rf"/api/models/{_REPO}(?:/revision/(?P<rev>[^/]+))?", "model_info"),
        ("POST", rf"/{_REPO}\.git/info/lfs/objects/batch", "lfs_batch"),
        ("PUT", r"/lfs-upload/(?P<oid>[0-9a-f]{64})", "lfs_put"),
        ("POST", r"/lfs-verify/(?P<oid>[0-9a-f]{64})", "lfs_verify"),
        ("GET", r"/lfs-cdn/(?P<oid>[0-9a-f]{64})", "cdn"),
        ("GET", rf"/{_REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)", "resolve"),
    ]

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_GET(self):
        self._dispatch("GET")

    def do_HEAD(self):
        self._dispatch("HEAD")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    # -- plumbing ------------------------------------------------------------------------

    def _dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        self.query = parse_qs(parts.query)
        line = self.line = f"{method} {parts.path}"
        hub = self.hub
        with hub.lock:
            hub.log.append(Request(method, parts.path, "authorization" in {k.lower() for k in self.headers},
                                   {k.lower(): v for k, v in self.headers.items()}))
        length = int(self.headers.get("Content-Length") or 0)
        self.body = self.rfile.read(length) if length else b""
        fault = hub._take_fault(line)
        if fault is not None:
            time.sleep(fault.delay)
            if fault.status is not None:
                headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
                return self._error(HubError(fault.status, f"simulated {fault.status}", headers=headers))
        try:
            self._route(method, parts.path)
        except HubError as e:
            self._error(e)
        except (BrokenPipeError, ConnectionResetError):
            return

    def _route(self, method: str, path: str) -> None:
        for want, pattern, name in self.ROUTES:
            if want == method or (want == "GET" and method == "HEAD"):
                m = re.fullmatch(pattern, path)
                if m:
                    args = {k: unquote(v) for k, v in m.groupdict().items() if v is not None}
                    return getattr(self, name)(**args)
        raise HubError(404, f"no route for {method} {path}")

    def _send(self, status: int, body: bytes = b"", headers: dict | None = None,
              content_type: str = "application/json") -> None:
        self.hub._run_hooks(self.line)  # the answer is decided; the hook changes what comes next
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def _json(self, obj, status: int = 200, headers: dict | None = None) -> None:
        self._send(status, json.dumps(obj).encode(), headers)

    def _error(self, e: HubError) -> None:
        message = e.message
        if self.hub.echo_auth:  # a leaky server: tests check loom never repeats this
            message += f" (you sent {self.headers.get('Authorization')})"
        headers = {"X-Error-Message": message, **e.headers}
        if e.code:
            headers["X-Error-Code"] = e.code
        self._json({"error": message}, e.status, headers)

    def _token(self) -> str | None:
        auth = self.headers.get("Authorization") or ""
        return auth[len("Bearer "):] if auth.startswith("Bearer ") else None

    def _repo(self, repo_id: str, *, write: bool = False) -> Repo:
        hub, token = self.hub, self._token()
        if token is not None and hub.tokens and token not in hub.tokens:
            raise HubError(401, "Invalid credentials in Authorization header")
        repo = hub.repos.get(repo_id)
        if repo is None or (repo.private and token is None):
            raise HubError(401 if token is None else 404, "Repository not found", "RepoNotFound")
        if write:
            if hub.tokens and token is None:
                raise HubError(401, "You must be authenticated to write", None)
            if hub.tokens and hub.tokens.get(token) != "write":
                raise HubError(403, "You don't have the rights to write to this repo")
        elif repo.gated and token not in hub.gated_ok:
            raise HubError(401 if token is None else 403, "Access to this repo is gated", "GatedRepo")
        return repo

    def _commit_at(self, repo: Repo, rev: str) -> Commit:
        commit = repo.commit(rev)
        if commit is None:
            raise HubError(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        return commit

    # -- endpoints -----------------------------------------------------------------------

    def create_repo(self) -> None:
        payload = json.loads(self.body or b"{}")
        hub, token = self.hub, self._token()
        if hub.tokens and hub.tokens.get(token) != "write":
            raise HubError(401 if token is None else 403, "You need a write token to create a repo")
        name, org = payload["name"], payload.get("organization") or "user"
        repo_id = f"{org}/{name}"
        with hub.lock:
            if repo_id in hub.repos:
                raise_body = {"error": "You already created this model repo", "url": f"{hub.url}/{repo_id}"}
                return self._json(raise_body, 409)
            hub.create_repo(repo_id, private=bool(payload.get("private")) or payload.get("visibility") == "private")
        self._json({"url": f"{hub.url}/{repo_id}", "name": repo_id, "id": repo_id})

    def whoami(self) -> None:
        token = self._token()
        if token is None or (self.hub.tokens and token not in self.hub.tokens):
            raise HubError(401, "Invalid credentials in Authorization header")
        self._json({"type": "user", "name": "user", "auth": {"type": "access_token"}})

    def validate_yaml(self) -> None:
        self._json({"errors": [], "warnings": []})

    def model_info(self, repo: str, rev: str = "main") -> None:
        r = self._repo(repo)
        commit = self._commit_at(r, rev)
        blobs = "blobs" in self.query
        siblings = []
        for path, blob in sorted(commit.files.items()):
            entry = {"rfilename": path}
            if blobs:
                entry.update(size=len(blob.data), blobId=git_sha1(blob.data))
                if blob.lfs:
                    entry["lfs"] = {"size": len(blob.data), "sha256": blob.sha256, "pointerSize": 130}
            siblings.append(entry)
        self._json({"id": repo, "modelId": repo, "sha": commit.oid, "private": r.private,
                    "gated": r.gated, "siblings": siblings, "tags": [], "lastModified": "2025-01-01T00:00:00.000Z"})

    def refs(self, repo: str) -> None:
        r = self._repo(repo)

        def ref(name, kind, oid):
            return {"name": name, "ref": f"refs/{kind}/{name}", "targetCommit": oid}

        self._json({
            "branches": [ref(n, "heads", o) for n, o in r.branches.items() if not n.startswith("refs/pr/")],
            "tags": [ref(n, "tags", o) for n, o in r.tags.items()],
            "converts": [],
            "pullRequests": [{"name": n, "ref": n, "targetCommit": o}
                             for n, o in r.branches.items() if n.startswith("refs/pr/")],
        })

    def create_branch(self, repo: str, branch: str) -> None:
        r = self._repo(repo, write=True)
        start = json.loads(self.body or b"{}").get("startingPoint") or "main"
        with self.hub.lock:
            if branch in r.branches:
                raise HubError(409, f"Branch {branch} already exists")
            r.branches[branch] = self._commit_at(r, start).oid
        self._json({})

    def preupload(self, repo: str, rev: str) -> None:
        r = self._repo(repo, write=True)
        commit = r.commit(rev) or r.commit("main")
        files = []
        for f in json.loads(self.body)["files"]:
            existing = commit.files.get(f["path"]) if commit else None
            files.append({"path": f["path"], "uploadMode": "lfs" if _is_lfs(f["path"], f["size"]) else "regular",
                          "shouldIgnore": False, "oid": existing.oid if existing else None})
        self._json({"files": files})

    def lfs_batch(self, repo: str) -> None:
        self._repo(repo, write=True)
        objects = []
        for obj in json.loads(self.body)["objects"]:
            entry = {"oid": obj["oid"], "size": obj["size"]}
            if obj["oid"] not in self.hub.lfs:
                entry["actions"] = {"upload": {"href": f"{self.hub.url}/lfs-upload/{obj['oid']}"},
                                    "verify": {"href": f"{self.hub.url}/lfs-verify/{obj['oid']}"}}
            objects.append(entry)
        self._json({"transfer": "basic", "objects": objects})

    def lfs_put(self, oid: str) -> None:
        if hashlib.sha256(self.body).hexdigest() != oid:
            raise HubError(400, "sha256 of the body does not match the object id")
        with self.hub.lock:
            self.hub.lfs[oid] = self.body
        self._json({})

    def lfs_verify(self, oid: str) -> None:
        if oid not in self.hub.lfs:
            raise HubError(404, "object not uploaded")
        self._json({})

    def commit(self, repo: str, rev: str) -> None:
        r = self._repo(repo, write=True)
        lines = [json.loads(line) for line in self.body.splitlines() if line.strip()]
        header, changes = {}, {}
        for item in lines:
            key, value = item["key"], item["value"]
            if key == "header":
                header = value
            elif key == "file":
                changes[_checked(value["path"])] = Blob(base64.b64decode(value["content"]), False)
            elif key == "lfsFile":
                if value["oid"] not in self.hub.lfs:
                    raise HubError(422, f"LFS object {value['oid']} was not uploaded")
                changes[_checked(value["path"])] = Blob(self.hub.lfs[value["oid"]], True)
            elif key in ("deletedFile", "deletedFolder"):
                changes[_checked(value["path"])] = None
        base = self._commit_at(r, rev).oid
        with self.hub.lock:
            branch, pr_url = rev, None
            if self.query.get("create_pr"):
                r.prs += 1
                branch = f"refs/pr/{r.prs}"
                pr_url = f"{self.hub.url}/{repo}/discussions/{r.prs}"
            oid = self.hub._commit(r, branch, changes, header.get("summary", ""), parent=base)
        self._json({"commitUrl": f"{self.hub.url}/{repo}/commit/{oid}", "commitOid": oid,
                    "success": True, "pullRequestUrl": pr_url})

    def resolve(self, repo: str, rev: str, path: str) -> None:
        r = self._repo(repo)
        commit = self._commit_at(r, rev)
        blob = commit.files.get(path)
        headers = {"X-Repo-Commit": commit.oid}
        if blob is None:
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound", headers)
        if blob.lfs:
            headers.update({"Location": f"{self.hub.cdn}/lfs-cdn/{blob.sha256}",
                            "X-Linked-Etag": f'"{blob.sha256}"', "X-Linked-Size": str(len(blob.data)),
                            "ETag": f'"{git_sha1(blob.sha256.encode())}"'})
            return self._send(302, b"", headers)
        headers["ETag"] = f'"{git_sha1(blob.data)}"'
        self._body(blob.data, git_sha1(blob.data), headers)

    def cdn(self, oid: str) -> None:
        data = self.hub.lfs.get(oid)
        if data is None:
            for r in self.hub.repos.values():  # repos made with add_commit hold their own blobs
                data = next((b.data for c in r.commits.values() for b in c.files.values()
                             if b.lfs and b.sha256 == oid), None)
                if data is not None:
                    break
        if data is None:
            raise HubError(404, "no such object")
        self._body(data, oid, {"ETag": f'"{oid}"'})

    def _body(self, data: bytes, key: str, headers: dict) -> None:
        """The file's bytes (damaged on demand), or the range asked for."""
        mode = self.hub.corrupt_blobs.get(key)
        if mode == "flip":
            data = data[: len(data) // 2] + bytes([data[len(data) // 2] ^ 0xFF]) + data[len(data) // 2 + 1:]
        elif mode == "truncate":
            data = data[: max(0, len(data) - 10)]
        headers = {**headers, "Accept-Ranges": "bytes"}
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range") or "")
        if m is None:
            return self._send(200, data, headers, "application/octet-stream")
        start = int(m.group(1))
        end = int(m.group(2)) if m.group(2) else len(data) - 1
        if start >= len(data):
            raise HubError(416, "range not satisfiable", headers={"Content-Range": f"bytes */{len(data)}"})
        headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
        self._send(206, data[start:end + 1], headers, "application/octet-stream")


def _checked(path: str) -> str:
    if path.startswith("/") or ".." in path.split("/"):
        raise HubError(400, f"invalid path {path!r}")
    return path
