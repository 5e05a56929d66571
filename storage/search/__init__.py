"""Search over an archive: a tantivy keyword index and a numpy vector index in ``.index/``."""

from storage.search.results import Hit, SearchMode, SearchResults

__all__ = ["Hit", "SearchMode", "SearchResults"]
