"""Where a model's weights are on this machine, and preparing local copies.

`model_name_or_path` in every rendered config is what the template says: a hub
id such as `Qwen/Qwen3-1.7B` or a path. The one setting that points it at
local weights is the model cache (`$ORCH_MODEL_CACHE`, default `<root>/models`):
a hub id resolves to `<cache>/<hub id>` when that folder exists, else to the
Hugging Face cache (`$HF_HOME`), read offline. Nothing is downloaded at run time.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from orchestrator.project import MODEL_CACHE_ENV, Project


class ModelSource(str, Enum):
    LOCAL = "local path"
    MODEL_CACHE = "model cache"
    HF_CACHE = "Hugging Face cache"
    MISSING_LOCAL = "missing local path"
    NOT_CACHED = "hub id not cached"


@dataclass(frozen=True)
class ResolvedModel:
    """Where `name_or_path` points on this machine."""

    name_or_path: str
    source: ModelSource
    path: Path | None

    @property
    def available(self) -> bool:
        return self.path is not None

    def download_hint(self, project: Project) -> str:
        """How to put this model where jobs will find it."""
        target = project.model_cache / self.name_or_path
        return (
            f"on a machine with network: `huggingface-cli download {self.name_or_path} "
            f"--local-dir {target}` (or into the cluster's $HF_HOME), "
            f"or point ${MODEL_CACHE_ENV} at a cache that has it"
        )


def looks_like_hub_id(value: str) -> bool:
    """`org/name` with no path markers: a hub id rather than a file path."""
    parts = value.split("/")
    return len(parts) == 2 and all(parts) and not value.startswith((".", "~")) and "\\" not in value


def resolve_model(project: Project, name_or_path: str) -> ResolvedModel:
    """Find `name_or_path` as a local folder, in the model cache or in the HF cache."""
    if not looks_like_hub_id(name_or_path):
        path = project.resolve(Path(name_or_path).expanduser())
        source = ModelSource.LOCAL if path.is_dir() else ModelSource.MISSING_LOCAL
        return ResolvedModel(name_or_path, source, path if path.is_dir() else None)
    cached = project.model_cache / name_or_path
    if (cached / "config.json").is_file():
        return ResolvedModel(name_or_path, ModelSource.MODEL_CACHE, cached)
    local = project.resolve(name_or_path)
    if (local / "config.json").is_file():
        return ResolvedModel(name_or_path, ModelSource.LOCAL, local)
    snapshot = _hf_cache_snapshot(name_or_path)
    if snapshot is not None:
        return ResolvedModel(name_or_path, ModelSource.HF_CACHE, snapshot)
    return ResolvedModel(name_or_path, ModelSource.NOT_CACHED, None)


def _hf_cache_snapshot(repo_id: str) -> Path | None:
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, "config.json")
    return Path(found).parent if isinstance(found, str) else None
