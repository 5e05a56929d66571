"""Document ingestion (ARCHITECTURE §7): sniff, extract, chunk, analyse and store files.

``await ingest(archive, paths, user_id, session_id)`` runs the job; the pieces (sniffing,
extractors, chunking, analysis) are usable on their own.
"""

from storage.ingest.chunking import Chunk, chunk_text
from storage.ingest.extract import Extracted, Extractor, default_extractors
from storage.ingest.job import (
    CHUNKS_SUFFIX,
    TEXT_SUFFIX,
    ZST_SUFFIX,
    FileResult,
    IngestCancelled,
    IngestReport,
    StoredDocument,
    ingest,
    ingest_sync,
)
from storage.ingest.sniff import Sniffed, sniff

__all__ = [
    "CHUNKS_SUFFIX",
    "TEXT_SUFFIX",
    "ZST_SUFFIX",
    "Chunk",
    "Extracted",
    "Extractor",
    "FileResult",
    "IngestCancelled",
    "IngestReport",
    "Sniffed",
    "StoredDocument",
    "chunk_text",
    "default_extractors",
    "ingest",
    "ingest_sync",
    "sniff",
]
