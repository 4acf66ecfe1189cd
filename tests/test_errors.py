"""The exception tree is true: one root, every class raised by the core, and the command line
turns each into one line on stderr (builtin exceptions wrapped where they leave the core)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import mmradar.errors as errors
from mmradar.cli import main
from mmradar.errors import MMRadarError, RecordingError

SERVICE = Path(errors.__file__).resolve().parent


def _classes() -> list[type[MMRadarError]]:
    return [getattr(errors, name) for name in errors.__all__]


def test_one_root_and_the_docstring_draws_every_class() -> None:
    assert all(issubclass(cls, MMRadarError) for cls in _classes())
    drawn = re.findall(r"[├└]── (\w+)", errors.__doc__ or "")
    assert sorted(drawn) == sorted(c.__name__ for c in _classes() if c is not MMRadarError)
    subclasses = {c.__name__ for c in _classes()}
    for cls in _classes():  # no class of the tree is defined outside errors.py
        assert cls.__module__ == "mmradar.errors", cls
        assert {s.__name__ for s in cls.__subclasses__()} <= subclasses


def test_every_leaf_is_raised_by_the_core() -> None:
    source = "\n".join(p.read_text("utf-8") for p in SERVICE.rglob("*.py") if p.name != "errors.py")
    bases = {b for cls in _classes() for b in cls.__mro__[1:]}
    for cls in _classes():
        if cls in bases:
            continue  # a branch: raised as one of its leaves, caught as itself
        assert re.search(rf"raise {cls.__name__}\(", source), f"{cls.__name__} is never raised"


def test_an_unreadable_recording_is_one_line_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    newer = tmp_path / "newer.jsonl"
    newer.write_text('{"k":"header","t":1,"version":99,"feeds":[]}\n')
    assert main(["replay", "--fast", "--no-progress", str(newer)]) == 1
    assert capsys.readouterr().err == (
        f"mmradar: {newer}: recording format version 99 is newer than this mmradar reads (2)\n"
    )
    assert main(["replay", "--fast", "--no-progress", str(tmp_path)]) == 1
    assert capsys.readouterr().err == f"mmradar: no recording to replay in {tmp_path}\n"


def test_a_file_that_cannot_be_opened_is_a_recording_error(tmp_path: Path) -> None:
    from mmradar.record import RecordingReader

    with pytest.raises(RecordingError, match="cannot open") as info:
        RecordingReader(tmp_path / "missing.jsonl")
    assert isinstance(info.value.__cause__, FileNotFoundError)


def test_an_unwritable_scorecard_fails_before_any_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    out = blocker / "scorecard"  # a directory under a file: cannot be created
    argv = ["score", "--scenarios", "sweep", "--seeds", "1", "--out", str(out)]
    assert main([*argv, "--no-plot", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"mmradar: {out}: cannot create the directory: ")
    assert err.count("\n") == 1
