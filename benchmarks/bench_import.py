"""Import a generated ChatGPT export: time, messages/s and peak memory.

    .venv/bin/python benchmarks/bench_import.py                  # 10,000 conversations × 50
    .venv/bin/python benchmarks/bench_import.py --conversations 2000 --messages 50

The export is written as ChatGPT writes ``conversations.json`` (one JSON array), streamed, so
generating it costs no memory either. Peak memory is the import process's max RSS growth,
measured in a fresh child process so generation and the parent do not count.

``--index``: import with search indexing on: after the import, one index refresh makes every
imported message searchable (tantivy + model2vec vectors), as the GUI does after an import job.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from storage import Archive  # noqa: E402
from storage.importers import import_path  # noqa: E402
from tests.storage.export_factory import linear_conversations, write_chatgpt_export  # noqa: E402

USER = "bench"
RESULTS = Path(__file__).resolve().parent / "results"


def index_after_import(archive: Archive) -> dict[str, float]:
    """Bring the search index up to date after the import; the refresh's own timings."""
    report = asyncio.run(archive.refresh_index())
    return {
        "index_s": round(report.seconds, 2),
        "embed_s": round(report.embed_seconds, 2),
        "indexed_documents": report.documents_added,
    }


def child(archive_dir: str, export: str, index: bool) -> None:
    """Run in a fresh process: import, print timings and peak RSS as JSON."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    archive = asyncio.run(Archive.open(archive_dir, create=True))
    asyncio.run(archive.create_user(USER))
    start = time.perf_counter()
    report = import_path(archive, export, USER)
    imported = time.perf_counter() - start
    indexing = index_after_import(archive) if index else {}
    total = time.perf_counter() - start
    again_start = time.perf_counter()
    again = import_path(archive, export, USER)
    reimport = time.perf_counter() - again_start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = {
        "conversations": report.imported,
        "messages": report.messages_added,
        "import_s": round(imported, 2),
        "total_s": round(total, 2),
        "messages_per_s": round(report.messages_added / imported),
        "reimport_s": round(reimport, 2),
        "reimport_added": again.messages_added,
        "peak_rss_mb": round(peak / 1024, 1),
        "rss_growth_mb": round((peak - before) / 1024, 1),
        **indexing,
    }
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=50, help="messages per conversation")
    parser.add_argument("--index", action="store_true", help="indexing on (see the docstring)")
    parser.add_argument("--child", nargs=2, metavar=("ARCHIVE", "EXPORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child, args.index)
        return
    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
        export = Path(tmp) / "conversations.json"
        start = time.perf_counter()
        size = write_chatgpt_export(export, linear_conversations(args.conversations, args.messages))
        print(
            f"export: {args.conversations:,} conversations, {size / 1e6:,.0f} MB, "
            f"written in {time.perf_counter() - start:.1f} s",
            file=sys.stderr,
        )
        cmd = [sys.executable, __file__, "--child", str(Path(tmp) / "archive"), str(export)]
        if args.index:
            cmd.append("--index")
        done = subprocess.run(cmd, check=True, capture_output=True, text=True)
        result = {"export_mb": round(size / 1e6), "indexing": args.index}
        result.update(json.loads(done.stdout))
        print(json.dumps(result, indent=2))
        out = RESULTS / f"bench_import{'_indexed' if args.index else ''}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
