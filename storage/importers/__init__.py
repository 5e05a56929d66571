"""Import the chat history people already have: ChatGPT, Claude, Open WebUI, Jan and the
original Flatfile Chat Database archives, detected by shape, converted losslessly and stored
idempotently (ARCHITECTURE §7). No Qt here."""

from storage.importers.job import (
    FORMATS_TRIED,
    detect_export,
    export_format,
    import_archive,
    import_path,
)
from storage.importers.model import Conversation, ConversationResult, ImportReport
from storage.importers.writer import SOURCE_FILE, read_source

__all__ = [
    "FORMATS_TRIED",
    "SOURCE_FILE",
    "Conversation",
    "ConversationResult",
    "ImportReport",
    "detect_export",
    "export_format",
    "import_archive",
    "import_path",
    "read_source",
]
