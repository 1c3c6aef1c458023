"""Find a checkpoint file: a local folder first, else the Hugging Face cache or a download.

One function, `resolve`, turns `(path_or_repo_id, filename, revision, ...)` into a local path.
It is cache-first: when `revision` is a commit hash and the file for it is cached, no network
request is made. `HF_HUB_OFFLINE=1` or `local_files_only=True` never touch the network, and
a file that is then missing raises `OfflineError` naming it and saying how to get it.
`huggingface_hub` is imported on first use, never by `import loom`.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import (
    EntryNotFoundError,
    GatedRepoError,
    NetworkError,
    OfflineError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)


def is_offline() -> bool:
    """True when `HF_HUB_OFFLINE` (or the older `TRANSFORMERS_OFFLINE`) asks for no network."""
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}:
            return True
    return False


def is_local(path_or_repo_id: str | os.PathLike) -> bool:
    return os.path.isdir(path_or_repo_id)


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
    repo_id = str(path_or_repo_id)
    not_found = EntryNotFoundError(
        f"{repo_id!r} is neither an existing folder nor a valid Hub repo id (namespace/name)"
    )
    if repo_id.startswith((".", "/", "~")) or repo_id.count("/") > 1:
        raise not_found
    offline = local_files_only or is_offline()
    import huggingface_hub as hf
    from huggingface_hub import errors as hf_errors

    try:
        path = hf.hf_hub_download(
            repo_id,
            filename,
            subfolder=subfolder or None,
            revision=revision,
            cache_dir=cache_dir,
            local_files_only=offline,
            token=token,
        )
        return Path(path)
    except hf_errors.LocalEntryNotFoundError as e:
        if offline:
            if not required:
                return None
            why = "local_files_only=True" if local_files_only else "HF_HUB_OFFLINE is set"
            raise OfflineError(
                f"{rel} of {repo_id} (revision {revision or 'main'}) is not in the cache"
                f" ({cache_dir or 'the default Hugging Face cache'}) and {why}. Download it"
                f" first with network access, e.g. `loom download {repo_id}`, or pass a local"
                f" folder."
            ) from None
        raise NetworkError(f"could not download {rel} from {repo_id}: {e}") from None
    except hf_errors.HFValidationError:
        raise not_found from None
    except hf_errors.GatedRepoError:
        raise GatedRepoError(
            f"{repo_id} is gated: accept its terms on the Hub and pass token= (or log in)"
        ) from None
    except hf_errors.RepositoryNotFoundError:
        raise RepositoryNotFoundError(
            f"repository {repo_id} not found, or it is private and no valid token was given"
        ) from None
    except hf_errors.RevisionNotFoundError:
        raise RevisionNotFoundError(f"revision {revision!r} not found in {repo_id}") from None
    except hf_errors.EntryNotFoundError:
        if not required:
            return None
        raise EntryNotFoundError(
            f"{rel} not found in {repo_id} (revision {revision or 'main'})"
        ) from None
    except hf_errors.HfHubHTTPError as e:
        raise NetworkError(f"downloading {rel} from {repo_id} failed: {e}") from None
    except OSError as e:  # connection errors surface as OSError subclasses
        raise NetworkError(f"downloading {rel} from {repo_id} failed: {e}") from None
