"""Configuration as data: defaults live in defaults.toml (one place), a user TOML overrides them, CLI flags
override both. Each stage reads its own section."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any, Mapping

DEFAULTS_PATH = Path(__file__).with_name("defaults.toml")


def defaults() -> dict:
    with open(DEFAULTS_PATH, "rb") as fh:
        return tomllib.load(fh)


def _merge(base: dict, extra: Mapping) -> dict:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def read_toml(path: Path, what: str = "") -> dict:
    """A TOML file's content; ValueError naming `what` and the file when it is not TOML or not UTF-8 text."""
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{what}{path}: not valid TOML ({exc})") from None
    except UnicodeDecodeError as exc:       # TOML is UTF-8; say where the bad byte is
        raise ValueError(f"{what}{path}: encoding: byte 0x{exc.object[exc.start]:02x} at offset {exc.start} is "
                         "not UTF-8 (TOML files are UTF-8 text)") from None


def load(section: str, path: str | Path | None = None, overrides: Mapping[str, Any] | None = None) -> dict:
    """The section's defaults, updated by the user's TOML file (same section name) and then by `overrides`
    (CLI flags; None values mean "not given" and are ignored). Unknown keys in the file are an error so a
    typo never silently falls back to a default."""
    config = defaults().get(section, {})
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config file {path} does not exist")
        user = read_toml(path, "config file ")
        user = user.get(section, user)
        unknown = sorted(set(user) - set(config))
        if unknown:
            raise ValueError(f"config file {path}: unknown keys in [{section}]: {', '.join(unknown)}; "
                             f"known keys: {', '.join(sorted(config))}")
        config = _merge(config, user)
    if overrides:
        config = _merge(config, {k: v for k, v in overrides.items() if v is not None})
    return config


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if value is None:
        return '""'
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def dumps(config: Mapping[str, Any], section: str | None = None) -> str:
    """TOML text of a (possibly nested) config, so a run directory records exactly what was used."""
    scalars = {k: v for k, v in config.items() if not isinstance(v, Mapping)}
    tables = {k: v for k, v in config.items() if isinstance(v, Mapping)}
    lines = [f"[{section}]"] if section else []
    lines += [f"{k} = {_toml_value(v)}" for k, v in scalars.items()]
    for name, table in tables.items():
        lines += ["", dumps(table, f"{section}.{name}" if section else name)]
    return "\n".join(lines) + "\n"


def write_section(path: str | Path, section: str, settings: Mapping[str, Any], why: str = "") -> Path:
    """`settings` as the TOML section `section` of a new file `path`, for a driver (loop, demo) to pass a stage
    its settings as data (`--config path`): the stage checks the keys as for any user file, and the file records
    what was asked. Written atomically."""
    from .store import atomic_write_text

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, (f"# {why}\n" if why else "") + dumps(settings, section))
    return path

