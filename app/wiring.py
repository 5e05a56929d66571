"""Wiring: concrete classes built with plain constructor calls, swappable services registered.

Later issues register the embedder, the document extractors and the importers here; tests pass
fakes to constructors or register their own instances.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from app.registry import Registry
from storage import Archive
from storage.settings import Settings


async def open_services(
    archive_path: str | os.PathLike[str],
    *,
    create: bool = False,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Registry:
    """Open the archive (settings: defaults < archive.json < environment < ``overrides``) and
    return the registry holding it and its settings."""
    archive = await Archive.open(archive_path, create=create, overrides=overrides, environ=environ)
    registry = Registry()
    registry.register_instance(Settings, archive.settings)
    registry.register_instance(Archive, archive)
    return registry
