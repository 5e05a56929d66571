"""The settings model: one pydantic model with groups, a schema version, and layered sources.

Precedence: defaults < ``archive.json`` "settings" < environment ``FLATCHAT_<GROUP>__<KEY>`` <
explicit overrides (command-line flags). An invalid value fails at start with
:class:`SettingsError` naming the key and where the value came from.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from storage.errors import SettingsError

SCHEMA_VERSION = 1
ENV_PREFIX = "FLATCHAT_"
MiB = 1024 * 1024


def _byte_size(default: int, ge: int, title: str, description: str) -> Any:
    """A setting that is a size in bytes (its unit said for a settings view)."""
    return Field(
        default=default,
        ge=ge,
        title=title,
        description=description,
        json_schema_extra={"unit": "bytes"},
    )


class _Group(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class StorageSettings(_Group):
    max_message_bytes: int = _byte_size(8 * MiB, 1024, "Largest message", "largest encoded message")
    compact_after_days: float = Field(
        default=30.0,
        ge=0,
        title="Compact sessions idle for",
        description="compact sessions idle this long (0 = never)",
        json_schema_extra={"unit": "days"},
    )
    lock_timeout: float = Field(
        default=30.0,
        gt=0,
        description="seconds to wait for a lock",
        json_schema_extra={"unit": "s"},
    )


class SearchSettings(_Group):
    default_mode: Literal["keyword", "semantic", "hybrid"] = "hybrid"
    stemming: bool = False
    page_size: int = Field(default=50, ge=1, le=1000)


class VectorSettings(_Group):
    enabled: bool = True
    # The kinds storage.search.embedder.load_embedder knows: a typo must not pick model2vec.
    embedder: Literal["model2vec", "hashing"] = "model2vec"
    batch_size: int = Field(default=1024, ge=1, le=65536)


class DocumentSettings(_Group):
    max_bytes: int = _byte_size(200 * MiB, 1, "Largest file", "largest file ingested")
    compress_text_above: int = _byte_size(
        1 * MiB,
        0,
        "Compress text above",
        "extracted text longer than this is stored compressed (zstd)",
    )


class RuntimeSettings(_Group):
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "WARNING"
    worker_threads: int = Field(default=4, ge=1, le=64)


class Settings(_Group):
    schema_version: int = SCHEMA_VERSION
    storage: StorageSettings = StorageSettings()
    search: SearchSettings = SearchSettings()
    vector: VectorSettings = VectorSettings()
    document: DocumentSettings = DocumentSettings()
    runtime: RuntimeSettings = RuntimeSettings()


GROUPS = ("storage", "search", "vector", "document", "runtime")


def _merge(
    base: dict[str, Any], layer: Mapping[str, Any], source: str, origins: dict[str, str]
) -> None:
    for group, values in layer.items():
        if group == "schema_version":
            if values != SCHEMA_VERSION:
                raise SettingsError(
                    "schema_version",
                    source,
                    f"is {values!r}; this Flatchat understands settings schema {SCHEMA_VERSION}",
                )
            continue
        if group not in GROUPS:
            raise SettingsError(group, source, f"unknown group; known groups: {', '.join(GROUPS)}")
        if not isinstance(values, Mapping):
            raise SettingsError(group, source, "must be an object of key: value")
        target = base.setdefault(group, {})
        for key, value in values.items():
            target[key] = value
            origins[f"{group}.{key}"] = source


def env_layer(environ: Mapping[str, str]) -> dict[str, dict[str, str]]:
    layer: dict[str, dict[str, str]] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        group, _, key = name[len(ENV_PREFIX) :].partition("__")
        layer.setdefault(group.lower(), {})[key.lower()] = value
    return layer


def resolve_settings(
    archive_settings: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build the settings from every source, validating once and naming a bad key."""
    merged: dict[str, Any] = {}
    origins: dict[str, str] = {}
    _merge(merged, archive_settings or {}, "archive.json", origins)
    env = os.environ if environ is None else environ
    for group, values in env_layer(env).items():
        for key in values:
            origins_name = f"environment {ENV_PREFIX}{group.upper()}__{key.upper()}"
            _merge(merged, {group: {key: values[key]}}, origins_name, origins)
    _merge(merged, overrides or {}, "command line", origins)
    try:
        return Settings.model_validate(merged)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        key = ".".join(str(p) for p in err.get("loc", ()))
        source = origins.get(key, "defaults")
        raise SettingsError(key, source, err.get("msg", "invalid value")) from exc
