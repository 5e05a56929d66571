"""The archive: a folder of JSON/JSONL files, opened with :meth:`Archive.open`."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from storage.base import threaded
from storage.context import ContextMixin
from storage.documents import DocumentsMixin
from storage.errors import LockTimeoutError, NotAnArchiveError, UnsupportedFormatError
from storage.files import make_dirs, read_model, remove_stale_temp_files, write_model
from storage.jobs import JobControl
from storage.layout import ARCHIVE_JSON, PERSONAS_GLOBAL, USERS
from storage.locks import Locks
from storage.maintenance import MaintenanceMixin, Problem, VerifyReport
from storage.models import ArchiveInfo
from storage.panels import PanelsMixin
from storage.personas import PersonasMixin
from storage.search.api import SearchMixin
from storage.sessions import SessionsMixin
from storage.settings import Settings, resolve_settings
from storage.threads import run_blocking
from storage.users import UsersMixin

if TYPE_CHECKING:
    from storage.importers.model import ImportReport
    from storage.ingest.job import IngestReport

FORMAT_VERSION = 1


class Archive(
    UsersMixin,
    SessionsMixin,
    ContextMixin,
    PersonasMixin,
    PanelsMixin,
    DocumentsMixin,
    MaintenanceMixin,
    SearchMixin,
):
    """An open archive. Every method that touches the disk is a coroutine whose blocking work
    runs in a worker thread; many archives (or processes) may share one folder safely.

    ``archive = await Archive.open(path, create=True)``, or ``async with await
    Archive.open(path) as archive``.
    """

    def __init__(self, root: Path, settings: Settings, info: ArchiveInfo | None) -> None:
        super().__init__(root, settings)
        self.info = info

    @classmethod
    async def open(
        cls,
        path: str | os.PathLike[str],
        *,
        create: bool = False,
        settings: Settings | None = None,
        environ: Mapping[str, str] | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> Archive:
        """Open the archive at ``path``.

        A folder written by the original Flatfile Chat Database v2 (same layout, no
        ``archive.json``) opens as it is. With ``create``, a missing or empty folder becomes a
        new archive. Settings come from ``settings`` if given, else from defaults <
        archive.json < environment < ``overrides``.
        """
        return await run_blocking(cls._open_sync, Path(path), create, settings, environ, overrides)

    @classmethod
    def _open_sync(
        cls,
        root: Path,
        create: bool,
        settings: Settings | None,
        environ: Mapping[str, str] | None,
        overrides: Mapping[str, Any] | None,
    ) -> Archive:
        root = root.expanduser().absolute()
        info_path = root / ARCHIVE_JSON
        if root.exists() and not root.is_dir():
            raise NotAnArchiveError(root, "it is a file, not a folder")
        info: ArchiveInfo | None = None
        if info_path.exists():
            raw_info = read_model(info_path, ArchiveInfo)
            if (
                not isinstance(raw_info.format_version, int)
                or raw_info.format_version > FORMAT_VERSION
            ):
                raise UnsupportedFormatError(info_path, raw_info.format_version, FORMAT_VERSION)
            info = raw_info
        elif (root / USERS).is_dir() or (root / PERSONAS_GLOBAL).is_dir():
            info = None  # the original system's v2 layout: readable as it is
        elif create:
            if root.exists() and any(not n.startswith(".") for n in os.listdir(root)):
                raise NotAnArchiveError(
                    root, "the folder is not empty and holds no archive; choose an empty folder"
                )
            make_dirs(root / USERS)
            info = ArchiveInfo(format_version=FORMAT_VERSION)
            write_model(info_path, info)
        elif not root.exists():
            raise NotAnArchiveError(root, "the folder does not exist")
        else:
            raise NotAnArchiveError(root, "no archive.json and no users/ folder")
        if settings is None:
            settings = resolve_settings(info.settings if info else {}, environ, overrides)
        if os.access(root, os.W_OK):
            remove_stale_temp_files(root)
        return cls(root, settings, info)

    @threaded
    def verify(self, repair: bool = False) -> VerifyReport:
        """Check every file (see MaintenanceMixin.verify) and the search index; with
        ``repair`` a damaged index is rebuilt (it is derived data: nothing is lost)."""
        report: VerifyReport = MaintenanceMixin.verify.sync(self, repair)  # type: ignore[attr-defined]
        try:
            problems = self.index_problems()
        except LockTimeoutError as exc:  # another process writes it: nothing to say of it
            report.problems.append(
                Problem(
                    str(self.layout.index_dir),
                    f"search index not checked: {exc}",
                    severity="warning",
                )
            )
            return report
        if problems and repair:
            self._rebuild(None)
        for problem in problems:
            report.problems.append(
                Problem(
                    str(self.layout.index_dir),
                    f"search index: {problem} (derived data: rebuilt "
                    "on the next search, or now by reindex / verify --repair)",
                    severity="warning",
                    repaired=repair,
                )
            )
        return report

    async def import_archive(
        self,
        path: str | os.PathLike[str],
        user_id: str,
        *,
        control: JobControl | None = None,
        dry_run: bool = False,
    ) -> ImportReport:
        """Import a chat export (ChatGPT, Claude, Open WebUI, Jan, Flatfile v1) as a job:
        see :func:`storage.importers.job.import_path`."""
        from storage.importers.job import import_archive

        return await import_archive(self, path, user_id, control=control, dry_run=dry_run)

    @threaded
    def ingest(
        self,
        paths: Sequence[str | os.PathLike[str]],
        user_id: str,
        session_id: str | None = None,
        *,
        control: JobControl | None = None,
    ) -> IngestReport:
        """Store files and folders as documents of a session (or the user's library) and
        make them searchable: a job with progress and cancel. See
        :func:`storage.ingest.job.ingest_sync` for what happens to each file."""
        from storage.ingest.job import ingest_sync

        report = ingest_sync(self, list(paths), user_id, session_id, control=control)
        # Making the new documents searchable (embedding their chunks) is part of the job: its
        # own stage, with progress and cancel. Cancelled, the next search indexes the rest.
        if control is not None:
            control.start_phase("making the documents searchable", None)
        with self._search_lock():
            self._refresh(control, wait=True, only={(user_id, session_id)})
        return report

    @threaded
    def update_settings(self, changes: Mapping[str, Mapping[str, Any]]) -> Settings:
        """Store setting overrides in ``archive.json`` (merged per group) and return the
        settings now in force. Invalid values raise SettingsError naming the key; nothing is
        written then. Environment variables still override what is stored."""
        with self.locks.archive():
            path = self.layout.archive_json
            info = (
                read_model(path, ArchiveInfo)
                if path.exists()
                else ArchiveInfo(format_version=FORMAT_VERSION)
            )
            stored: dict[str, Any] = {
                g: dict(v) for g, v in info.settings.items() if isinstance(v, Mapping)
            }
            for group, values in changes.items():
                stored.setdefault(group, {}).update(values)
            settings = resolve_settings(stored)  # validates before anything is written
            updated = info.model_copy(update={"settings": stored})
            write_model(path, updated)
        self.info = updated
        self.settings = settings
        self.locks = Locks(self.layout, settings.storage.lock_timeout)  # takes effect now
        return settings

    @property
    def format_version(self) -> int:
        return self.info.format_version if self.info else FORMAT_VERSION

    async def close(self) -> None:
        """Nothing is buffered; closing only drops caches, listeners and the search index's
        folder watch."""
        self._session_cache.clear()
        self.close_search()

    async def __aenter__(self) -> Archive:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"Archive({str(self.root)!r})"
