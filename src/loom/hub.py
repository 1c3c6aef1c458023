"""Find, download and cache the files of Hugging Face Hub repos.

`resolve(path_or_repo_id, filename, ...)` turns a file of a local folder or a Hub repo into a
local path. For a repo, every file of one load comes from one commit: `pin()` wraps the
requested revision in a `Revision` (a `str`, so it passes through every `revision=`
argument), which records the commit named by the Hub's first answer (its `X-Repo-Commit`
header) or by the cache, and fetches every later file at that commit.

Cache-first: a file of a known commit that is cached costs no request, nor does a file the Hub
already said is absent (the cache's `.no_exist` markers). `HF_HUB_OFFLINE=1` or
`local_files_only=True` never touch the network and read a branch's commit from `refs/`.

Downloads keep huggingface_hub's cache layout (`blobs/<etag>`, `snapshots/<commit>/<file>`,
`refs/<branch>`) and its file locks, so both libraries share one cache and processes that
load the same repo at once download each file once. A file is checked against the Hub's
metadata (its size, and the sha256 or git-sha1 its ETag names) before it enters the cache; a
mismatch is discarded and raised as `CorruptDownloadError`.

Retries: 429 and 5xx answers, timeouts and dropped connections are retried with exponential
backoff that honours `Retry-After`, at most `NETWORK.attempts` tries and `NETWORK.max_wait`
seconds of waiting per request. A refused connection is not retried: the cache is the fallback.
The token is never logged nor put in an error message.

`huggingface_hub` is imported on first use, never by `import loom`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import re
import shutil
import time
import uuid
from pathlib import Path, PurePosixPath

from .errors import (
    CorruptDownloadError,
    EntryNotFoundError,
    GatedRepoError,
    HubError,
    InputError,
    NetworkError,
    OfflineError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
    UnauthorizedError,
)

logger = logging.getLogger(__name__)

COMMIT_RE = re.compile(r"[0-9a-f]{40}")
_ETAG_RE = re.compile(r"[0-9A-Za-z_-]{1,128}")  # an ETag names a file in the cache
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# Files at least this big show a progress bar (huggingface_hub's tqdm: HF_HUB_DISABLE_PROGRESS_BARS=1
# or huggingface_hub.utils.disable_progress_bars("loom") turn it off).
LARGE_FILE = 10 * 1024 * 1024
PROGRESS_NAME = "loom.download"
# Weight formats loom does not read, left out by `download`.
_FOREIGN = re.compile(
    r"(^|/)(\.gitattributes|[^/]*\.(h5|msgpack|onnx|onnx_data|ot|tflite|mlmodel|gguf|ckpt|npz|pth?))$"
    r"|^(onnx|coreml|openvino|mlx)/"
)
_SHARD = re.compile(r"(^|/)(model|pytorch_model)-\d+-of-\d+\.(safetensors|bin)$")


@dataclasses.dataclass(frozen=True)
class NetworkPolicy:
    """How hard one request to the Hub tries before it gives up."""

    attempts: int = 5          # tries per request, the first included
    base_delay: float = 1.0    # the first backoff; doubled after each retry, up to max_delay
    max_delay: float = 8.0
    max_wait: float = 60.0     # seconds of waiting per request; a longer Retry-After fails at once
    timeout: float = 10.0      # seconds to connect, or between two reads of an answer


NETWORK = NetworkPolicy()


# -- where things are ---------------------------------------------------------------------

def is_offline() -> bool:
    """True when `HF_HUB_OFFLINE` (or the older `TRANSFORMERS_OFFLINE`) asks for no network."""
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}:
            return True
    return False


def is_local(path_or_repo_id: str | os.PathLike) -> bool:
    return os.path.isdir(path_or_repo_id)


def endpoint() -> str:
    """The Hub's base URL: `HF_ENDPOINT` (read at each call), else https://huggingface.co."""
    return os.environ.get("HF_ENDPOINT", "").strip().rstrip("/") or "https://huggingface.co"


def default_cache() -> Path:
    """huggingface_hub's cache folder, from the same variables (read at each call, and without
    importing huggingface_hub, so that a load from the cache does not pay for that import)."""
    env = os.environ
    home = env.get("HF_HOME") or os.path.join(env.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"),
                                              "huggingface")
    hub = env.get("HF_HUB_CACHE") or env.get("HUGGINGFACE_HUB_CACHE") or os.path.join(home, "hub")
    return Path(os.path.expandvars(hub)).expanduser()


def repo_cache(repo_id: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """The cache folder of a model repo: `<cache>/models--<namespace>--<name>`."""
    return Path(cache_dir or default_cache()).expanduser() / f"models--{repo_id.replace('/', '--')}"


def is_inside(path: str) -> bool:
    """Whether a repo-relative path stays inside the repo (no `..`, not absolute)."""
    if not isinstance(path, str) or not path or "\\" in path or "\x00" in path:
        return False
    pure = PurePosixPath(path)
    return not pure.is_absolute() and ".." not in pure.parts and not re.match(r"^[A-Za-z]:", path)


# -- one revision for one load ------------------------------------------------------------

class Revision(str):
    """A revision of one Hub repo that resolves to one commit for everything loaded with it.

    Its string value is the revision asked for ("main" by default); `commit` is None until the
    Hub's first answer, or the cache, names it. Pass one to several `from_pretrained` calls to
    load a model and its tokenizer from the same commit.
    """

    repo_id: str
    requested: str | None
    commit: str | None

    def __new__(cls, repo_id: str, requested: str | None = None, commit: str | None = None):
        obj = super().__new__(cls, requested or "main")
        obj.repo_id = repo_id
        obj.requested = requested
        if commit is None and requested and COMMIT_RE.fullmatch(requested):
            commit = requested
        obj.commit = commit
        obj.files = {}  # (cache, path in repo) -> local path or None (absent), fetched once per load
        obj.from_cache = False  # the Hub could not be reached: the rest of the load reads the cache
        return obj

    def __reduce__(self):
        return Revision, (self.repo_id, self.requested, self.commit)

    def __repr__(self) -> str:
        return f"Revision({self.repo_id!r}, {str(self)!r}, commit={self.commit!r})"


def pin(path_or_repo_id: str | os.PathLike, revision: str | None = None) -> str | None:
    """The revision to pass to every file of one load: a `Revision` for a Hub repo (the one
    given when it already is one for this repo), `revision` unchanged for a local folder."""
    if revision is not None and not isinstance(revision, str):
        raise InputError(f"revision must be a branch, tag or commit (str), found {type(revision).__name__}")
    if is_local(path_or_repo_id):
        return revision
    repo_id = str(path_or_repo_id)
    if isinstance(revision, Revision):
        if revision.repo_id == repo_id:
            return revision
        revision = revision.requested
    if revision is not None and (not is_inside(revision) or revision.startswith(".")):
        raise InputError(f"revision {revision!r} is not a branch, tag or commit name")
    return Revision(repo_id, revision)


def _set_commit(rev: Revision, commit: str | None, repo_id: str) -> str:
    if not commit or not COMMIT_RE.fullmatch(commit):
        raise HubError(
            f"{endpoint()} answered for {repo_id} without a valid X-Repo-Commit header "
            f"(found {commit!r}): is HF_ENDPOINT a Hugging Face Hub?"
        )
    if rev.commit is None:
        rev.commit = commit
    elif rev.commit != commit:
        raise HubError(f"{endpoint()} answered commit {commit} for {repo_id} pinned to {rev.commit}")
    return commit


# -- resolve ------------------------------------------------------------------------------

def resolve(
    path_or_repo_id: str | os.PathLike,
    filename: str,
    *,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
    token: str | bool | None = None,
    subfolder: str | None = None,
    required: bool = True,
    force_download: bool = False,
) -> Path | None:
    """Return the local path of `filename` in a folder or Hub repo, or None when absent
    and `required` is False."""
    rel = f"{subfolder.strip('/')}/{filename}" if subfolder else filename
    if is_local(path_or_repo_id):
        path = Path(path_or_repo_id) / rel
        if path.is_file():
            return path
        if required:
            raise EntryNotFoundError(f"{rel} not found in the folder {path_or_repo_id}")
        return None
    repo_id = check_repo_id(path_or_repo_id)
    if not is_inside(rel):
        raise HubError(f"{rel!r} is a path outside the repo {repo_id}; refused")
    rev = pin(repo_id, revision)
    cache = Path(cache_dir or default_cache()).expanduser()
    offline = local_files_only or is_offline()
    if force_download and offline:
        why = "local_files_only=True" if local_files_only else "HF_HUB_OFFLINE is set"
        raise InputError(f"force_download=True needs the network, but {why}")
    key = (str(cache), rel)
    if key not in rev.files:
        try:
            rev.files[key] = _fetch(repo_id, rel, rev, cache, token=token, offline=offline,
                                    force=force_download, why_offline=local_files_only)
        except (OfflineError, NetworkError) as e:
            # An optional file that is not cached counts as absent when the network may not be
            # used, or when this load already fell back to the cache because the Hub is down.
            if required or (isinstance(e, NetworkError) and not rev.from_cache):
                raise
            return None
    path = rev.files[key]
    if path is None and required:
        raise EntryNotFoundError(f"{rel} not found in {repo_id} (revision {rev}, commit {rev.commit})")
    return path


# The Hub's rules for repo ids: `name` or `namespace/name`, each 1-96 of [A-Za-z0-9_.-], not
# starting or ending with "-" or ".", without "--" or "..", not ending with ".git".
_REPO_PART = r"(?![.-])[\w.-]{0,95}[\w]|[\w]"
_REPO_ID_RE = re.compile(rf"(?:{_REPO_PART})(?:/(?:{_REPO_PART}))?", re.ASCII)


def check_repo_id(path_or_repo_id) -> str:
    """A valid `namespace/name` (or `name`) repo id, or EntryNotFoundError saying it is neither
    a folder nor a repo id."""
    repo_id = str(path_or_repo_id)
    if (not _REPO_ID_RE.fullmatch(repo_id) or "--" in repo_id or ".." in repo_id
            or repo_id.endswith(".git")):
        raise EntryNotFoundError(
            f"{repo_id!r} is neither an existing folder nor a valid Hub repo id (namespace/name)"
        )
    return repo_id


_UNKNOWN = object()


def _cached(storage: Path, commit: str, rel: str):
    """The cached file of `rel` at `commit`, None when the Hub said it is absent, else _UNKNOWN."""
    pointer = storage / "snapshots" / commit / rel
    if pointer.is_file():
        return pointer
    if (storage / ".no_exist" / commit / rel).is_file():
        return None
    return _UNKNOWN


def _read_ref(storage: Path, revision: str) -> str | None:
    try:
        commit = (storage / "refs" / revision).read_text().strip()
    except OSError:
        return None
    return commit if COMMIT_RE.fullmatch(commit) else None


def _write_ref(storage: Path, revision: str, commit: str) -> None:
    if revision == commit or _read_ref(storage, revision) == commit:
        return
    ref = storage / "refs" / revision
    ref.parent.mkdir(parents=True, exist_ok=True)
    tmp = ref.with_name(f".{ref.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(commit)
    os.replace(tmp, ref)


def _fetch(repo_id, rel, rev: Revision, cache: Path, *, token, offline, force, why_offline):
    storage = repo_cache(repo_id, cache)
    if rev.commit is None and offline:
        rev.commit = _read_ref(storage, str(rev))
    if rev.commit is not None and not force:
        found = _cached(storage, rev.commit, rel)
        if found is not _UNKNOWN:
            return found
    if offline:
        why = "local_files_only=True" if why_offline else "HF_HUB_OFFLINE is set"
        raise OfflineError(
            f"{rel} of {repo_id} (revision {rev}) is not in the cache ({cache}) and {why}."
            f" Download it first with network access, e.g. `loom download {repo_id}`, or pass"
            f" a local folder."
        )
    if rev.from_cache:
        raise NetworkError(f"{rel} of {repo_id} is not in the cache ({cache}) and the Hub at"
                           f" {endpoint()} could not be reached; retry when it can")
    try:
        meta = _head(repo_id, rel, rev, storage, token)
    except NetworkError as e:
        commit = None if force else (rev.commit or _read_ref(storage, str(rev)))
        found = _UNKNOWN if commit is None else _cached(storage, commit, rel)
        if found is _UNKNOWN:
            raise
        logger.warning("%s; loading %s (revision %s) from the cache at commit %s", e, repo_id, rev, commit)
        rev.commit, rev.from_cache = commit, True
        return found
    if meta is None:
        return None
    if not force:
        found = _cached(storage, rev.commit, rel)
        if isinstance(found, Path):
            return found
    return _download(storage, cache, repo_id, rel, rev.commit, meta, token, force)


def _head(repo_id: str, rel: str, rev: Revision, storage: Path, token):
    """The Hub's metadata of `rel` (pinning `rev` to the commit it names), or None when the
    file is absent (recorded in the cache so that the next load does not ask again)."""
    from huggingface_hub import errors as hf_errors
    from huggingface_hub.file_download import get_hf_file_metadata, hf_hub_url

    from . import __version__

    absent = getattr(hf_errors, "RemoteEntryNotFoundError", hf_errors.EntryNotFoundError)  # 404 of a file
    url = hf_hub_url(repo_id, rel, revision=rev.commit or str(rev), endpoint=endpoint())
    try:
        meta = call(lambda: get_hf_file_metadata(url, token=token, timeout=NETWORK.timeout,
                                                 library_name="loom", library_version=__version__,
                                                 endpoint=endpoint()),
                    what=f"{rel} of {repo_id}", repo_id=repo_id, revision=rev, token=token, absent=absent)
    except absent as e:
        commit = e.response.headers.get("X-Repo-Commit") if e.response is not None else None
        if commit and COMMIT_RE.fullmatch(commit):
            _set_commit(rev, commit, repo_id)
            _write_ref(storage, str(rev), commit)
            marker = storage / ".no_exist" / commit / rel
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
        return None
    _set_commit(rev, meta.commit_hash, repo_id)
    _write_ref(storage, str(rev), rev.commit)
    if meta.location == url and str(rev) != rev.commit:  # fetch the bytes of that very commit
        meta = dataclasses.replace(meta, location=hf_hub_url(repo_id, rel, revision=rev.commit,
                                                             endpoint=endpoint()))
    return meta


# -- requests with retries ----------------------------------------------------------------

def _http():
    """The HTTP library huggingface_hub uses (httpx2 from 2.x, httpx in 1.x)."""
    try:
        import httpx2 as http
    except ImportError:  # pragma: no cover - depends on the installed huggingface_hub
        import httpx as http
    return http


def redact(text, token) -> str:
    text = str(text)
    if isinstance(token, str) and token:
        text = text.replace(token, "***")
    return text


def call(fn, *, what: str, repo_id: str, revision=None, token=None, absent=None, retried_by_hf=()):
    """`fn()` with retries on 429 / 5xx / timeouts / dropped connections, bounded by `NETWORK`;
    the Hub's refusals become loom errors. `absent` (an exception type) passes through. An
    answer from a URL containing one of `retried_by_hf` was already retried by huggingface_hub
    and is not retried again, so that the two bounds do not multiply."""
    from huggingface_hub.errors import (
        FileMetadataError,
        HfHubHTTPError,
        HFValidationError,
        OfflineModeIsEnabled,
    )

    http = _http()
    waited, delay, reason, asked = 0.0, NETWORK.base_delay, "", None
    for attempt in range(1, max(1, NETWORK.attempts) + 1):
        try:
            return fn()
        except HfHubHTTPError as e:
            if absent is not None and isinstance(e, absent):
                raise
            status = e.response.status_code if e.response is not None else 0
            if status not in RETRY_STATUSES:
                error = _refusal(e, status, what, repo_id, revision, token)
                break
            reason, asked = f"HTTP {status}", _retry_after(e.response)
            if retried_by_hf and any(part in str(e.response.request.url) for part in retried_by_hf):
                error = _gave_up(what, reason, attempt, waited, None)
                break
        except OfflineModeIsEnabled:
            error = OfflineError(f"{what}: huggingface_hub was imported with HF_HUB_OFFLINE set;"
                                 " unset it before starting Python to use the network")
            break
        except HFValidationError as e:
            error = InputError(f"{what}: {redact(e, token)}")
            break
        except FileMetadataError as e:  # an answer without the Hub's headers
            error = HubError(f"{what}: {redact(e, token)}")
            break
        except http.ConnectError as e:
            error = NetworkError(
                f"{what}: cannot connect to {endpoint()} ({redact(e, token) or 'connection refused'})."
                " Check the network, proxy and HF_ENDPOINT, or set HF_HUB_OFFLINE=1 to use cached files."
            )
            break
        except (http.TimeoutException, http.NetworkError, http.RemoteProtocolError) as e:
            reason, asked = type(e).__name__, None
        except RuntimeError as e:  # huggingface_hub's wrapping of a failed LFS upload
            if not isinstance(e.__cause__, (HfHubHTTPError, http.HTTPError)):
                raise
            error = NetworkError(f"{what}: {redact(e, token)} ({_describe(e.__cause__)}; huggingface_hub"
                                 " retried what could be retried). Retry later or check the network.")
            break
        wait = delay if asked is None else asked
        if attempt >= NETWORK.attempts or waited + wait > NETWORK.max_wait:
            error = _gave_up(what, reason, attempt, waited, asked)
            break
        logger.warning("%s: %s from %s; retry %d of %d in %.1f s", what, reason, endpoint(),
                       attempt, NETWORK.attempts - 1, wait)
        _sleep(wait)
        waited += wait
        delay = min(delay * 2, NETWORK.max_delay)
    raise error


def _describe(e) -> str:
    response = getattr(e, "response", None)
    return f"HTTP {response.status_code}" if response is not None else type(e).__name__


def _sleep(seconds: float) -> None:  # one place for tests to count the waits
    time.sleep(seconds)


def _retry_after(response) -> float | None:
    value = (response.headers.get("Retry-After") or "").strip() if response is not None else ""
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None  # an HTTP date: use the backoff


def _gave_up(what, reason, attempts, waited, asked) -> NetworkError:
    note = ""
    if asked is not None and waited + asked > NETWORK.max_wait:
        note = f"; it asked to retry after {asked:g} s, beyond the {NETWORK.max_wait:g} s loom waits"
    return NetworkError(
        f"{what}: the Hub at {endpoint()} kept failing ({reason}) after {attempts} attempt(s) and "
        f"{waited:.1f} s of waiting{note}. Retry later, check the network, or set HF_HUB_OFFLINE=1 "
        f"to use cached files."
    )


def _refusal(e, status, what, repo_id, revision, token) -> HubError:
    """A loom error for a final (non-retried) error answer of the Hub."""
    from huggingface_hub import errors as hf

    rev = f" (revision {revision})" if revision is not None else ""
    with_token = "the token given" if isinstance(token, str) and token else "the saved token (or none)"
    if isinstance(e, hf.GatedRepoError):
        return GatedRepoError(
            f"{repo_id} is gated: accept its terms at {endpoint()}/{repo_id} with your account, then"
            f" pass token= (or log in with `hf auth login`); {with_token} was refused"
        )
    if isinstance(e, hf.RepositoryNotFoundError):
        return RepositoryNotFoundError(
            f"repository {repo_id} not found at {endpoint()}, or it is private and {with_token} cannot"
            f" see it: check the id, or pass token= of an account with access"
        )
    if isinstance(e, hf.RevisionNotFoundError):
        return RevisionNotFoundError(
            f"revision {str(revision)!r} not found in {repo_id}: pass a branch, tag or commit that"
            f" exists (see {endpoint()}/{repo_id}/tree/main)"
        )
    if isinstance(e, hf.EntryNotFoundError):
        return EntryNotFoundError(f"{what}{rev}: not found")
    if status in (401, 403):
        return UnauthorizedError(
            f"{what}: the Hub refused {with_token} (HTTP {status}): check that it is valid and has"
            f" the access this needs (a write token to push)"
        )
    return NetworkError(f"{what}{rev}: the Hub answered HTTP {status}: {redact(_server_message(e), token)}")


def _server_message(e) -> str:
    response = getattr(e, "response", None)
    if response is None:
        return ""
    return (response.headers.get("X-Error-Message") or "")[:200]


# -- downloading --------------------------------------------------------------------------

def _download(storage: Path, cache: Path, repo_id, rel, commit, meta, token, force) -> Path:
    from huggingface_hub.utils import WeakFileLock

    etag = meta.etag
    if not etag or not _ETAG_RE.fullmatch(etag):
        raise HubError(f"{endpoint()} answered an ETag {etag!r} for {rel} of {repo_id} that cannot"
                       " name a cache file; refused")
    blob = storage / "blobs" / etag
    pointer = storage / "snapshots" / commit / rel
    lock = cache / ".locks" / storage.name / f"{etag}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    blob.parent.mkdir(parents=True, exist_ok=True)
    with WeakFileLock(lock):
        if force or not blob.is_file():
            _fetch_blob(meta, blob, rel=rel, repo_id=repo_id, commit=commit, token=token)
        if force and pointer.is_symlink():
            pointer.unlink()
        if not pointer.exists():
            pointer.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.symlink(os.path.relpath(blob, pointer.parent), pointer)
            except FileExistsError:
                pass
            except OSError:  # no symlinks on this file system: a copy
                shutil.copyfile(blob, pointer)
    return pointer


def _fetch_blob(meta, blob: Path, *, rel, repo_id, commit, token) -> None:
    """Download into a temporary file beside `blob`, check it, then move it into place."""
    tmp = blob.with_name(f"{blob.name}.{uuid.uuid4().hex[:8]}.incomplete")
    what = f"{rel} of {repo_id}"
    try:
        with open(tmp, "wb") as f:
            got = _Transfer(meta, f, rel=rel, token=token)
            try:
                call(got.attempt, what=what, repo_id=repo_id, revision=commit, token=token)
            finally:
                got.close_bar()
        problem = got.problem()
        if problem:
            raise CorruptDownloadError(
                f"{what} (commit {commit}) does not match the Hub's metadata: {problem}. The"
                f" download was discarded; retry, and if it happens again a proxy or mirror"
                f" serves a damaged copy."
            )
        os.replace(tmp, blob)
    finally:
        tmp.unlink(missing_ok=True)


class _Transfer:
    """One file's download: each `attempt()` resumes (HTTP Range) where the last one stopped,
    hashing as bytes arrive, with a progress bar for large files."""

    def __init__(self, meta, file, *, rel: str, token):
        from huggingface_hub.utils import build_hf_headers

        from . import __version__

        self.url, self.size, self.etag, self.file, self.rel = meta.location, meta.size, meta.etag, file, rel
        self.headers = build_hf_headers(token=token, library_name="loom", library_version=__version__)
        self.headers["Accept-Encoding"] = "identity"
        if _origin(self.url) != _origin(endpoint()):  # a CDN: the token stays with the Hub
            self.headers.pop("authorization", None)
        self.received, self.hasher, self.bar = 0, _hasher(self.etag, self.size), None

    def attempt(self) -> None:
        from huggingface_hub.utils import get_session, hf_raise_for_status

        headers = dict(self.headers)
        if self.received:
            headers["Range"] = f"bytes={self.received}-"
        with get_session().stream("GET", self.url, headers=headers, timeout=NETWORK.timeout,
                                  follow_redirects=True) as response:
            if response.status_code >= 400:
                response.read()
                hf_raise_for_status(response)
            if self.received and response.status_code != 206:  # the range was ignored: restart
                self.file.seek(0)
                self.file.truncate()
                self.received, self.hasher = 0, _hasher(self.etag, self.size)
            self._open_bar()
            for chunk in response.iter_bytes(chunk_size=1024 * 1024):
                self.file.write(chunk)
                self.received += len(chunk)
                if self.hasher is not None:
                    self.hasher.update(chunk)
                if self.bar is not None:
                    self.bar.update(len(chunk))
                if self.size is not None and self.received > self.size:
                    break  # more bytes than announced: reported by problem(), not stored

    def close_bar(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def _open_bar(self) -> None:
        if self.bar is None and self.size is not None and self.size >= LARGE_FILE:
            self.bar = progress_bar(total=self.size, initial=self.received, desc=self.rel)
        elif self.bar is not None:
            self.bar.reset(total=self.size)
            self.bar.update(self.received)

    def problem(self) -> str:
        if self.size is not None and self.received != self.size:
            return f"{self.received} bytes received, the Hub says {self.size}"
        if self.hasher is not None and self.hasher.hexdigest() != self.etag:
            kind = "sha256" if len(self.etag) == 64 else "git sha1"
            return f"{kind} {self.hasher.hexdigest()}, the Hub says {self.etag}"
        return ""


def progress_bar(**kwargs):
    """huggingface_hub's tqdm, in the `loom.download` group (disable it like hf's own bars)."""
    from huggingface_hub.utils import tqdm

    return tqdm(unit="B", unit_scale=True, name=PROGRESS_NAME, **kwargs)


def _hasher(etag: str, size: int | None):
    """sha256 for LFS files (64 hex ETag); git's blob sha1 for regular ones (40 hex)."""
    if re.fullmatch(r"[0-9a-f]{64}", etag or ""):
        return hashlib.sha256()
    if re.fullmatch(r"[0-9a-f]{40}", etag or "") and size is not None:
        h = hashlib.sha1()
        h.update(b"blob %d\0" % size)
        return h
    logger.debug("the ETag %r names no known hash: the download is checked by size only", etag)
    return None


def _origin(url: str) -> tuple:
    from urllib.parse import urlparse

    parsed = urlparse(url)
    return parsed.scheme, (parsed.hostname or "").lower(), parsed.port


# -- whole repos --------------------------------------------------------------------------

def download(
    repo_id: str,
    *,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    token: str | bool | None = None,
    local_files_only: bool = False,
    force_download: bool = False,
) -> Path:
    """Fetch what loom needs to load `repo_id` into the cache; return the snapshot folder.

    Every file of the repo's listing at one commit, except weight formats loom does not read,
    `.bin` weights when safetensors exist, and shards that no index names. A listing that
    names a path outside the repo is refused before anything is downloaded.
    """
    repo_id = check_repo_id(repo_id)
    rev = pin(repo_id, revision)
    names = _listing(repo_id, rev, cache_dir, token, local_files_only or is_offline())
    hub = dict(revision=rev, cache_dir=cache_dir, token=token, local_files_only=local_files_only,
               force_download=force_download)
    wanted = [n for n in names if not _FOREIGN.search(n)]
    if any(n.endswith(".safetensors") for n in wanted):
        wanted = [n for n in wanted if not re.search(r"(^|/)pytorch_model[^/]*\.bin(\.index\.json)?$", n)]
    indexed: set[str] = set()
    for index in [n for n in wanted if n.endswith(".index.json")]:
        from .modeling.weights import shard_names

        folder = index.rpartition("/")[0]
        path = resolve(repo_id, index, **hub)
        indexed |= {f"{folder}/{s}" if folder else s for s in shard_names(path)}
    for name in wanted:
        if _SHARD.search(name) and name not in indexed:
            continue
        resolve(repo_id, name, **hub)
    return repo_cache(repo_id, cache_dir) / "snapshots" / rev.commit


def _listing(repo_id: str, rev: Revision, cache_dir, token, offline: bool) -> list[str]:
    """The repo's file names at the pinned commit: from the Hub, or offline from the cache."""
    storage = repo_cache(repo_id, cache_dir)
    if offline:
        rev.commit = rev.commit or _read_ref(storage, str(rev))
        snapshot = storage / "snapshots" / str(rev.commit)
        if rev.commit is None or not snapshot.is_dir():
            raise OfflineError(f"{repo_id} (revision {rev}) is not in the cache ({storage.parent}) and"
                               " the network may not be used; download it with network access first")
        return sorted(p.relative_to(snapshot).as_posix() for p in snapshot.rglob("*") if p.is_file())
    from huggingface_hub import HfApi

    api = HfApi(endpoint=endpoint(), library_name="loom")
    info = call(lambda: api.model_info(repo_id, revision=rev.commit or str(rev), token=token,
                                       timeout=NETWORK.timeout),
                what=f"the file list of {repo_id}", repo_id=repo_id, revision=rev, token=token)
    _set_commit(rev, info.sha, repo_id)
    _write_ref(storage, str(rev), rev.commit)
    names = [s.rfilename for s in info.siblings or []]
    for name in names:
        if not is_inside(name):
            raise HubError(f"the file list of {repo_id} (commit {rev.commit}) names {name!r}, a path"
                           " outside the repo; refused, nothing was downloaded")
    return names


__all__ = [
    "NETWORK", "NetworkPolicy", "Revision", "pin", "resolve", "download", "endpoint",
    "is_offline", "is_local", "repo_cache", "call",
]
