"""Content-keyed files: what makes a per-day job cheap when only one of its station-days changed.

Snakemake reruns a job when one of its inputs changes and deletes every output of the job before
it runs. A job that covers a whole day of a network (one model load for 150 station-days instead of
150 process start-ups) would then recompute 149 station-days that did not change. Each station-day
result is therefore also kept under a key computed from what determines it (the bytes of its raw
waveforms, the settings, the code version); a rerun finds it by key and copies it into place.
Snakemake has no such cache of its own (its ``between-workflow caching`` keys whole jobs, not
parts of one), hence this module.

Entries are ``{root}/{name}.{key}{suffix}``; storing a key removes the older keys of the same
name, so the cache holds one version per station-day and picker, a few kB each.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import quakesnake
from quakesnake.tabular import atomic_write

KEY_LENGTH = 24  # hex digits of sha256: collisions are not a concern at 10^6 entries


def file_digest(path, chunk_size: int = 1 << 22) -> str:
    """sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk_size):
            digest.update(block)
    return digest.hexdigest()


def content_key(*parts) -> str:
    """A key over JSON-serialisable ``parts`` and the package version (new code, new results)."""
    text = json.dumps([quakesnake.__version__, *parts], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:KEY_LENGTH]


class ContentCache:
    """Files under ``root`` found by (name, key, suffix)."""

    def __init__(self, root):
        self.root = Path(root)

    def path(self, name: str, key: str, suffix: str) -> Path:
        return self.root / f"{name}.{key}{suffix}"

    def get(self, name: str, key: str, suffixes: tuple[str, ...]) -> dict[str, Path] | None:
        """The entry's files by suffix, or None unless every one of them is there."""
        paths = {suffix: self.path(name, key, suffix) for suffix in suffixes}
        return paths if all(p.is_file() for p in paths.values()) else None

    def put(self, name: str, key: str, files: dict[str, Path], *, move: bool = False) -> dict[str, Path]:
        """Store ``files`` (by suffix) as the entry (name, key), dropping other keys of ``name``.

        Each file is copied (or moved) to a temporary name first and renamed into place, so a
        killed job never leaves a half entry that a later run would take for a whole one.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        for old in self.root.glob(f"{name}.*"):
            if old.name.split(".")[len(name.split("."))] != key:
                old.unlink(missing_ok=True)
        stored = {}
        for suffix, source in files.items():
            target = self.path(name, key, suffix)
            atomic_write(target, lambda partial, source=source: shutil.move(str(source), partial) if move
                         else shutil.copyfile(source, partial))
            stored[suffix] = target
        return stored


def copy_into_place(source, target) -> None:
    """Copy ``source`` to ``target`` atomically (temporary name, then rename)."""
    atomic_write(target, lambda partial: shutil.copyfile(source, partial))
