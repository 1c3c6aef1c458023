"""What image processors and audio feature extractors share: their settings live in
preprocessor_config.json, written atomically as sorted JSON of `to_dict()`. No torch import."""

from __future__ import annotations

import json
import os

from ..hub_push import PushToHubMixin
from ..io import atomic_folder

PREPROCESSOR_FILE = "preprocessor_config.json"


class PreprocessorSettings(PushToHubMixin):
    """Base of `ImageProcessor` and `FeatureExtractor`; subclasses define `to_dict()`."""

    def to_dict(self) -> dict:
        raise NotImplementedError

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def save_pretrained(self, save_directory: str | os.PathLike) -> list[str]:
        """Write preprocessor_config.json atomically (other files in the folder stay)."""
        with atomic_folder(save_directory) as tmp:
            (tmp / PREPROCESSOR_FILE).write_text(self.to_json_string(), encoding="utf-8")
        return [PREPROCESSOR_FILE]

    def __repr__(self) -> str:
        return f"{type(self).__name__} {self.to_json_string()}"


__all__ = ["PreprocessorSettings", "PREPROCESSOR_FILE"]
