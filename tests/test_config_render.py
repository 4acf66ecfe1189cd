"""The files generated from the configuration schema match it (:mod:`mmradar.config.render`).

``defaults/default.toml``'s commented reference and the key tables of docs/configuration.md are
generated from the declarations; editing a declaration without regenerating them
(``python -m mmradar.config --write``) fails here.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import msgspec
import pytest

from mmradar.config import format_settings, load_settings
from mmradar.config.render import DEFAULT_TOML, DOCS_PAGE, TABLES, generated_files
from mmradar.signals.params import SignalSettings

REGENERATE = "regenerate with: python -m mmradar.config --write"


@pytest.mark.parametrize("path", [DEFAULT_TOML, DOCS_PAGE], ids=lambda p: p.name)
def test_committed_file_is_what_the_schema_generates(path: Path) -> None:
    render = generated_files()[path]
    text = path.read_text(encoding="utf-8")
    assert render(text) == text, f"{path} is out of date; {REGENERATE}"


def test_every_table_and_key_is_in_the_docs_page() -> None:
    text = DOCS_PAGE.read_text(encoding="utf-8")
    for name, table in TABLES.items():
        assert f"<!-- >>> generated: {name} -->" in text, name
        for field in msgspec.structs.fields(table):
            assert f"| `{field.name}` |" in text, (name, field.name)
    assert "| `shard` |" in text
    assert "<!-- >>> generated: effective -->" in text  # check-config's output for the default


def test_default_toml_has_a_reference_for_every_table_with_defaults() -> None:
    text = DEFAULT_TOML.read_text(encoding="utf-8")
    for name in ("http", "feeds", "signals", "log", "flight_recorder"):
        assert f"# >>> generated: {name}\n" in text, name


def test_the_generator_command_checks_the_files() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mmradar.config", "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stderr == ""


def test_effective_config_lists_every_key_of_the_schema() -> None:
    shown = tomllib.loads(format_settings(load_settings(None, env={})))
    assert set(shown) == {"http", "feeds", "signals", "log", "flight_recorder"}
    for name in ("signals", "log", "flight_recorder"):
        assert list(shown[name]) == [f.name for f in msgspec.structs.fields(TABLES[name])]
    assert shown["signals"]["volatility_windows_seconds"] == list(
        SignalSettings().volatility_windows_seconds
    )
