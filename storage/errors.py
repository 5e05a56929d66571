"""The exceptions the storage core raises.

Every error a user can act on is a subclass of :class:`StorageError` and says what was wrong and
where (an id, a path, a line number). Anything else escaping the core is a bug.
"""

from __future__ import annotations

from pathlib import Path


class StorageError(Exception):
    """Base class of every error the storage core raises on purpose.

    Picklable whatever a subclass's ``__init__`` takes (the message and the attributes are
    restored as they were), so a job's error crosses from a worker process intact."""

    def __reduce__(self) -> tuple[object, ...]:
        return (_restore_error, (type(self), self.args, self.__dict__))


def _restore_error(
    cls: type[StorageError], args: tuple[object, ...], state: dict[str, object]
) -> StorageError:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class InvalidIdError(StorageError, ValueError):
    """An id that cannot safely become a file or folder name."""

    def __init__(self, kind: str, value: object, reason: str) -> None:
        self.kind = kind
        self.value = value
        self.reason = reason
        super().__init__(f"invalid {kind} id {value!r}: {reason}")


class NotFoundError(StorageError, LookupError):
    """A user, session, message, persona or document that does not exist."""

    def __init__(self, kind: str, ident: str, where: str | Path | None = None) -> None:
        self.kind = kind
        self.ident = ident
        self.where = str(where) if where is not None else None
        suffix = f" (looked in {self.where})" if self.where else ""
        super().__init__(f"{kind} {ident!r} not found{suffix}")


class AlreadyExistsError(StorageError):
    """Creating something whose id is already taken."""

    def __init__(self, kind: str, ident: str, where: str | Path) -> None:
        self.kind = kind
        self.ident = ident
        self.where = str(where)
        super().__init__(f"{kind} {ident!r} already exists at {self.where}")


class CorruptRecordError(StorageError):
    """A JSON record or JSONL line that cannot be parsed or does not match its schema."""

    def __init__(self, path: str | Path, detail: str, line: int | None = None) -> None:
        self.path = str(path)
        self.line = line
        self.detail = detail
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"corrupt record in {where}: {detail}")


class MessageTooLargeError(StorageError):
    """A message whose encoded size is over the configured limit; nothing was written."""

    def __init__(self, size: int, limit: int, message_id: str | None = None) -> None:
        self.size = size
        self.limit = limit
        label = f"message {message_id!r}" if message_id else "message"
        super().__init__(
            f"{label} is {size:,} bytes encoded, over the limit of {limit:,} bytes "
            "(setting storage.max_message_bytes); nothing was written"
        )


class DocumentTooLargeError(StorageError):
    """A document over the configured size limit; nothing was written."""

    def __init__(self, name: str, size: int, limit: int) -> None:
        self.name = name
        self.size = size
        self.limit = limit
        super().__init__(
            f"document {name!r} is {size:,} bytes, over the limit of {limit:,} bytes "
            "(setting document.max_bytes); nothing was written"
        )


class DuplicateDocumentError(StorageError):
    """The same bytes are already stored in this documents folder."""

    def __init__(self, name: str, existing_doc_id: str, where: str | Path) -> None:
        self.name = name
        self.existing_doc_id = existing_doc_id
        self.where = str(where)
        super().__init__(
            f"document {name!r} has the same content as {existing_doc_id!r} "
            f"already stored in {self.where}"
        )


class LockTimeoutError(StorageError):
    """Another process held a lock on the archive for longer than the configured timeout."""

    def __init__(self, path: str | Path, timeout: float) -> None:
        self.path = str(path)
        self.timeout = timeout
        super().__init__(
            f"archive is locked by another process: could not acquire {self.path} "
            f"within {timeout:g} s (setting storage.lock_timeout)"
        )


class ReadOnlyArchiveError(StorageError):
    """The archive folder (or a file in it) cannot be written."""

    def __init__(self, path: str | Path, detail: str = "") -> None:
        self.path = str(path)
        extra = f": {detail}" if detail else ""
        super().__init__(f"archive is read-only, cannot write {self.path}{extra}")


class IndexUnavailableError(StorageError):
    """The search index's folder cannot be made or used (it is a file, or not writable). The
    archive's own files are untouched; search works again once the folder can be used."""

    def __init__(self, path: str | Path, error: OSError) -> None:
        self.path = str(path)
        if isinstance(error, NotADirectoryError | FileExistsError):
            detail = "a file is in the way of its folder; move it away and the index is rebuilt"
        else:
            detail = error.strerror or str(error)
        super().__init__(f"the search index in {self.path} cannot be used: {detail}")


class UnsupportedFormatError(StorageError):
    """``archive.json`` names a format version newer than this program understands."""

    def __init__(self, path: str | Path, found: object, supported: int) -> None:
        self.path = str(path)
        self.found = found
        self.supported = supported
        super().__init__(
            f"{self.path} has format_version {found!r}; this Flatchat reads format versions "
            f"up to {supported}. Upgrade Flatchat to open this archive."
        )


class NotAnArchiveError(StorageError):
    """A folder that is not an archive, opened without ``create=True``."""

    def __init__(self, path: str | Path, detail: str) -> None:
        self.path = str(path)
        super().__init__(f"{self.path} is not a Flatchat archive: {detail}")


class SettingsError(StorageError, ValueError):
    """An invalid setting, naming the key and where the value came from."""

    def __init__(self, key: str, source: str, detail: str) -> None:
        self.key = key
        self.source = source
        super().__init__(f"invalid setting {key} (from {source}): {detail}")


class DocumentError(StorageError):
    """A file that cannot be ingested as a document: says which file and why. Nothing of it
    was stored; the other files of the batch go on."""

    def __init__(self, path: str | Path, detail: str) -> None:
        self.path = str(path)
        self.detail = detail
        super().__init__(f"{self.path}: {detail}")


class EmptyDocumentError(DocumentError):
    """A file of 0 bytes: there is nothing to keep."""


class UnreadableDocumentError(DocumentError):
    """A file that vanished, is not a regular file, or may not be read (permissions)."""


class EncryptedDocumentError(DocumentError):
    """A password-protected document (a PDF) whose text cannot be read without the password."""


class CorruptDocumentError(DocumentError):
    """A document whose content does not match its type: a truncated PDF, a DOCX that is not
    a zip or unpacks to more than the cap (a zip bomb), binary bytes named ``.txt``."""


class ImportFormatError(StorageError):
    """An export file that cannot be read: not JSON, truncated, or not the shape its format
    needs. Says which file, what was wrong and, where known, the byte offset."""

    def __init__(self, path: str | Path, detail: str, offset: int | None = None) -> None:
        self.path = str(path)
        self.detail = detail
        self.offset = offset
        where = f"{self.path} at byte {offset:,}" if offset is not None else self.path
        super().__init__(f"cannot import {where}: {detail}")


class UnknownExportFormatError(ImportFormatError):
    """Input whose shape matches none of the export formats we import."""

    def __init__(self, path: str | Path, tried: list[str], detail: str = "") -> None:
        self.tried = list(tried)
        extra = f" ({detail})" if detail else ""
        super().__init__(path, f"not a known chat export; formats tried: {', '.join(tried)}{extra}")


class UnsafeArchiveError(ImportFormatError):
    """A ZIP that would write outside its folder (zip-slip) or unpack to far more than it
    holds (a zip bomb). Nothing of it was imported."""

    def __init__(self, path: str | Path, member: str, detail: str) -> None:
        self.member = member
        super().__init__(path, f"unsafe ZIP member {member!r}: {detail}; nothing was imported")


class NothingImportedError(StorageError):
    """An import that found no conversation it could import (an empty export, or every
    conversation skipped or failed): never reported as a success. ``report`` says why."""

    def __init__(self, path: str | Path, detail: str, report: object = None) -> None:
        self.path = str(path)
        self.report = report
        super().__init__(f"imported 0 conversations from {self.path}: {detail}")
