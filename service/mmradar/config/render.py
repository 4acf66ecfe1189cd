"""Rendering from the schema: the effective configuration, the key reference, the default file.

Three texts are generated from the declarations of :mod:`mmradar.config.schema` (and
:class:`~mmradar.signals.params.SignalSettings`), so a key is documented where it is declared
and nowhere else:

* :func:`format_settings`: the effective configuration ``mmradar check-config`` prints, written
  with ``tomli-w``;
* the key tables of docs/configuration.md (:func:`key_table`) and, there, the effective
  configuration of the built-in default;
* the commented reference in ``mmradar/defaults/default.toml`` (:func:`commented_reference`).

The committed files hold the generated parts between marker lines (``>>> generated: NAME`` and
``<<< generated: NAME``); the prose around them is written by hand. Regenerate them with::

    python -m mmradar.config --write

``--check`` exits 1 when a committed file differs from what the schema generates (a test runs
the same comparison).
"""

from __future__ import annotations

import argparse
import re
import textwrap
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import msgspec
import tomli_w

from ..table import FieldSpec, Table, field_specs
from .load import ENV_SECTIONS, SHARD_ENV_VAR, env_var, load_settings
from .schema import (
    KNOWN_EXCHANGES,
    ConfigFile,
    FeedSettings,
    FlightRecorderSettings,
    HttpTable,
    LogSettings,
    Settings,
    SignalSettings,
    WebhookTable,
)

__all__ = [
    "DEFAULT_TOML",
    "DOCS_PAGE",
    "TABLES",
    "commented_reference",
    "format_settings",
    "generated_files",
    "key_table",
    "main",
    "regenerate",
]

DEFAULT_TOML: Final = Path(__file__).resolve().parent.parent / "defaults" / "default.toml"
"""The built-in default configuration (inside the package)."""

DOCS_PAGE: Final = Path(__file__).resolve().parents[3] / "docs" / "configuration.md"
"""The key reference (in a source checkout)."""

#: Each table of the file: its name as written and its declaration.
TABLES: Final[Mapping[str, type[Table]]] = {
    "http": HttpTable,
    "feeds": FeedSettings,
    "webhooks": WebhookTable,
    "signals": SignalSettings,
    "log": LogSettings,
    "flight_recorder": FlightRecorderSettings,
}


# --------------------------------------------------------------------------------------------
# The effective configuration
# --------------------------------------------------------------------------------------------


def _values(table: Any, cls: type[Table] | None = None) -> dict[str, Any]:
    """The keys of ``table`` (an instance of ``cls``, or anything with its attributes) that
    have a value, in declaration order."""
    specs = field_specs(cls or type(table))
    return {s.name: v for s in specs if (v := getattr(table, s.name)) is not None}


def format_settings(settings: Settings) -> str:
    """Render the effective configuration as TOML that :func:`~mmradar.config.load_settings`
    accepts.

    Secrets are never printed: a webhook URL written with ``${NAME}`` is printed as written;
    any other webhook URL is masked after the host (``https://hooks.slack.com/***``), so such a
    webhook does not survive a round trip. Everything else does: loading the output gives
    equal settings.

    Args:
        settings: the settings to render.

    Returns:
        TOML text, ending in a newline.
    """
    header = [
        "# mmradar effective configuration (environment overrides applied; webhook secrets masked)"
    ]
    doc: dict[str, Any] = {}
    if settings.shard.count > 1:
        owned = [f"{f.exchange} {s}" for f in settings.feeds for s in f.symbols]
        header.append(
            f"# this replica (shard {settings.shard}) owns {len(owned)} of the configured "
            "pairs: " + (", ".join(owned) if owned else "none")
        )
        doc["shard"] = str(settings.shard)
    doc["http"] = {"listen": settings.http.listen}
    doc["feeds"] = [_values(feed) for feed in settings.configured_feeds or settings.feeds]
    if settings.webhooks:
        doc["webhooks"] = [
            {**_values(hook, WebhookTable), "url": hook.display_url} for hook in settings.webhooks
        ]
    doc["signals"] = _values(settings.signals)
    doc["log"] = _values(settings.log)
    doc["flight_recorder"] = _values(settings.flight_recorder)
    return "\n".join(header) + "\n\n" + tomli_w.dumps(doc)


# --------------------------------------------------------------------------------------------
# What a key's declaration says, as text
# --------------------------------------------------------------------------------------------


def _literal(value: Any) -> str:
    """A TOML value on one line (``tomli-w`` writes each item; lists stay inline)."""
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_literal(item) for item in value) + "]"
    return tomli_w.dumps({"v": value}).removeprefix("v = ").rstrip("\n")


def _default_text(spec: FieldSpec) -> str:
    text = spec.extra.get("default_text")
    if text is not None:
        return str(text)
    return _literal(spec.default)


def _bounds(meta: msgspec.Meta) -> str:
    """``Meta(gt=0)`` as "> 0", ``Meta(gt=0, le=1)`` as "in (0, 1]"."""
    if meta.gt is not None and meta.le is not None:
        return f"in ({meta.gt:g}, {meta.le:g}]"
    signs = (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="))
    return ", ".join(
        f"{sign} {getattr(meta, n):g}" for n, sign in signs if getattr(meta, n) is not None
    )


_KINDS: Final[Mapping[Any, str]] = {bool: "true | false", int: "integer", float: "number"}


def _allowed(spec: FieldSpec) -> str:
    """The values a key accepts, e.g. "number > 0", "list of strictly increasing integers > 0"."""
    extra = spec.extra
    if "choices" in extra:
        return " | ".join(str(choice) for choice in extra["choices"])
    if spec.item_type is not None:
        items = {int: "integers", str: "strings"}.get(spec.item_type, "values")
        if extra.get("increasing"):
            items = f"strictly increasing {items}"
        if spec.item_meta.min_length:
            items = f"non-empty {items}"
        head = "non-empty list of" if spec.meta.min_length else "list of"
        return f"{head} {items} {_bounds(spec.item_meta)}".strip()
    kind = _KINDS.get(spec.type, "string")
    if spec.meta.min_length:
        return f"non-empty {kind}"
    return f"{kind} {_bounds(spec.meta)}".strip()


# --------------------------------------------------------------------------------------------
# docs/configuration.md
# --------------------------------------------------------------------------------------------


def key_table(name: str) -> str:
    """The Markdown table of one table's keys (``name`` as in :data:`TABLES`, or ``top``)."""
    specs: Sequence[FieldSpec]
    if name == "top":
        specs = [s for s in field_specs(ConfigFile) if s.name == "shard"]
    else:
        specs = field_specs(TABLES[name])
    rows = ["| key | default | accepts | unit | meaning |", "|---|---|---|---|---|"]
    for spec in specs:
        cells = [
            f"`{spec.name}`",
            f"`{_default_text(spec)}`" if "default_text" not in spec.extra else _default_text(spec),
            _allowed(spec).replace("|", "\\|"),
            spec.extra.get("unit", ""),
            spec.description.replace("|", "\\|"),
        ]
        rows.append("| " + " | ".join(cells) + " |")
    if name == "top":
        note = f"Environment override: `{SHARD_ENV_VAR}`."
    elif name in ENV_SECTIONS:
        example = env_var(name, specs[0].name)
        note = f"Environment overrides: `{env_var(name, '<KEY>')}`, e.g. `{example}`."
    else:
        note = "No environment overrides (an array of tables)."
    return "\n".join(rows) + "\n\n" + note


def _docs_block(name: str) -> str:
    """A generated block of docs/configuration.md: a key table, or (``effective``) what
    ``mmradar check-config`` prints for the built-in default."""
    if name != "effective":
        return key_table(name)
    settings = load_settings(None, env={}, supported=KNOWN_EXCHANGES)
    return f"```toml\n{format_settings(settings)}```"


# --------------------------------------------------------------------------------------------
# defaults/default.toml
# --------------------------------------------------------------------------------------------


def commented_reference(name: str) -> str:
    """Every key of a table as TOML comments: its description, then ``key = default``."""
    lines: list[str] = []
    for spec in field_specs(TABLES[name]):
        if lines:
            lines.append("#")
        lines += textwrap.wrap(spec.description, 97, initial_indent="# ", subsequent_indent="# ")
        notes = [spec.extra.get("unit", ""), _allowed(spec)]
        note = "; ".join(n for n in notes if n)
        if "default_text" in spec.extra:
            lines.append(f"# {spec.name} = ...  # {spec.extra['default_text']}; {note}")
        else:
            lines.append(f"# {spec.name} = {_literal(spec.default)}  # {note}")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# The committed files
# --------------------------------------------------------------------------------------------

_Marker = tuple[str, str]
_TOML_MARKERS: Final[_Marker] = ("# >>> generated: {name}", "# <<< generated: {name}")
_MD_MARKERS: Final[_Marker] = ("<!-- >>> generated: {name} -->", "<!-- <<< generated: {name} -->")


def _fill(text: str, markers: _Marker, render: Callable[[str], str]) -> str:
    """``text`` with the part between each pair of markers replaced by ``render(name)``."""
    begin, end = (re.escape(m).replace(r"\{name\}", r"(?P<name>[a-z_]+)") for m in markers)
    pattern = re.compile(rf"^{begin}\n.*?^{end.replace('(?P<name>', '(?P<end>')}$", re.M | re.S)

    def block(match: re.Match[str]) -> str:
        name = match["name"]
        if match["end"] != name:
            raise ValueError(f"marker for {name!r} closed as {match['end']!r}")
        start, stop = (m.format(name=name) for m in markers)
        return f"{start}\n{render(name)}\n{stop}"

    return pattern.sub(block, text)


def generated_files() -> dict[Path, Callable[[str], str]]:
    """Each committed file with generated parts, and the function regenerating its text."""
    return {
        DEFAULT_TOML: lambda text: _fill(text, _TOML_MARKERS, commented_reference),
        DOCS_PAGE: lambda text: _fill(text, _MD_MARKERS, _docs_block),
    }


def regenerate(*, write: bool) -> list[Path]:
    """The committed files that differ from what the schema generates (rewritten if ``write``)."""
    stale = []
    for path, render in generated_files().items():
        text = path.read_text(encoding="utf-8")
        fresh = render(text)
        if fresh != text:
            stale.append(path)
            if write:
                path.write_text(fresh, encoding="utf-8")
    return stale


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mmradar.config [--write | --check]``."""
    parser = argparse.ArgumentParser(
        prog="python -m mmradar.config",
        description="Regenerate the parts of default.toml and docs/configuration.md that are "
        "generated from the configuration schema.",
    )
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="rewrite the files that differ")
    mode.add_argument("--check", action="store_true", help="exit 1 if a file differs")
    args = parser.parse_args(argv)
    stale = regenerate(write=args.write)
    for path in stale:
        print(f"{'rewrote' if args.write else 'out of date'}: {path}")
    return 1 if stale and args.check else 0
