"""The one error hierarchy of loom.

Every message names the file, key or argument involved, what was expected, what was found,
and, where there is one, the fix. Catch `LoomError` to catch them all.
"""

from __future__ import annotations


class LoomError(Exception):
    """Base class of every error loom raises on purpose."""


class ConfigError(LoomError, ValueError):
    """A configuration file or value is missing, malformed or inconsistent."""


class UnknownModelTypeError(ConfigError):
    """A `model_type` that loom has no architecture for."""


class CheckpointError(LoomError):
    """A weight file is missing, corrupt, unsafe, or does not fit the model."""


class ShapeMismatchError(CheckpointError):
    """A tensor in the checkpoint has another shape than the model's parameter."""


class UnsafeCheckpointError(CheckpointError):
    """A checkpoint would need to run code (a pickle with globals) to load."""


class TokenizerError(LoomError, ValueError):
    """Tokenizer files are missing or malformed, or the call's arguments do not fit."""


class InputError(LoomError, ValueError):
    """An argument of a call has the wrong type, shape or value."""


class HubError(LoomError):
    """Resolving or downloading from the Hub failed."""


class EntryNotFoundError(HubError, FileNotFoundError):
    """A file is not in the folder or the repository."""


class RepositoryNotFoundError(HubError):
    """The repository does not exist, or the token cannot see it."""


class RevisionNotFoundError(HubError):
    """The branch, tag or commit does not exist in the repository."""


class GatedRepoError(HubError):
    """The repository needs accepted terms or an authorised token."""


class OfflineError(HubError):
    """The file is needed but not cached, and the network may not be used."""


class NetworkError(HubError):
    """The Hub could not be reached, or kept failing."""


class UnauthorizedError(HubError):
    """The Hub refused the token: invalid, or without the access the call needs."""


class CorruptDownloadError(HubError):
    """A downloaded file does not match the size or hash the Hub announced; it was discarded."""


__all__ = [
    "LoomError",
    "ConfigError",
    "UnknownModelTypeError",
    "CheckpointError",
    "ShapeMismatchError",
    "UnsafeCheckpointError",
    "TokenizerError",
    "InputError",
    "HubError",
    "EntryNotFoundError",
    "RepositoryNotFoundError",
    "RevisionNotFoundError",
    "GatedRepoError",
    "OfflineError",
    "NetworkError",
    "UnauthorizedError",
    "CorruptDownloadError",
]
