"""Document ingestion throughput: a folder of mixed documents into a fresh archive.

Run from the repository root::

    .venv/bin/python benchmarks/bench_ingest.py            # ~600 files, ~40 MB
    .venv/bin/python benchmarks/bench_ingest.py --quick    # ~120 files

The folder is generated: prose text files, Markdown, CSV, DOCX (python-docx, with a table) and
multi-page PDFs (written by hand, text in Helvetica), plus copies of the real documents in
``../shared/data/docs/`` made unique (so duplicate detection does not skip them). Everything is
ingested by one :func:`storage.ingest.ingest_sync` call, and the time is split by stage:

- read: reading, hashing, duplicate check and sniffing;
- extract: text extraction (pypdf, python-docx, html.parser, decoding);
- chunk: cutting into ~200-word chunks; analyse: counts, language, keywords;
- store: writing the original, ``.txt``/``.txt.zst``, ``.chunks.jsonl`` and the record
  (each atomically, with fsync);
- embed and index: making the stored chunks searchable, as ``archive.ingest`` does at the end
  of the job: one index refresh, split into embedding (model2vec, in the vector index) and the
  rest (tantivy keyword index, vector segments, state).

Peak memory is the process's peak RSS (``ru_maxrss``), with the RSS before ingesting next to it.
Results go to ``benchmarks/results/bench_ingest.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import random
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import docx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from storage import Archive
from storage.ingest import ingest_sync

RESULTS_DIR = Path(__file__).resolve().parent / "results"
SHARED_DOCS = Path(__file__).resolve().parents[2] / "shared" / "data" / "docs"
WORDS = [
    *[
        "archive",
        "engine",
        "ledger",
        "quill",
        "number",
        "pattern",
        "river",
        "mountain",
        "letter",
        "window",
        "garden",
        "season",
    ],
    *[
        "signal",
        "answer",
        "method",
        "theory",
        "measure",
        "harbour",
        "market",
        "village",
        "winter",
        "silver",
        "bridge",
    ],
    *["lantern", "question", "history", "machine", "paper", "record", "summer", "valley"],
]


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(6, 22))]
    return " ".join(words).capitalize() + "."


def _prose(rng: random.Random, words: int) -> list[str]:
    paragraphs, count = [], 0
    while count < words:
        paragraph = " ".join(_sentence(rng) for _ in range(rng.randint(2, 7)))
        count += len(paragraph.split())
        paragraphs.append(paragraph)
    return paragraphs


def _pdf(pages: list[list[str]]) -> bytes:
    """A minimal valid PDF: one Helvetica text stream per page."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    kids = []
    for lines in pages:
        body = (
            "BT /F1 10 Tf 40 800 Td 12 TL "
            + " ".join(
                "(" + line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ") Tj T*"
                for line in lines
            )
            + " ET"
        )
        stream = body.encode("latin-1")
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
        content = len(objects)
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents %d 0 R "
            b"/Resources << /Font << /F1 3 0 R >> >> >>" % content
        )
        kids.append(len(objects))
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
        b" ".join(b"%d 0 R" % k for k in kids),
        len(kids),
    )
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for n, obj in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % n + obj + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(
        b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    )
    return out.getvalue()


def _docx(rng: random.Random, words: int) -> bytes:
    document = docx.Document()
    document.add_heading(_sentence(rng)[:-1], level=1)
    for paragraph in _prose(rng, words):
        document.add_paragraph(paragraph)
    table = document.add_table(rows=5, cols=3)
    for row in table.rows:
        for cell in row.cells:
            cell.text = _sentence(rng)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def generate(folder: Path, scale: int, seed: int = 1) -> dict[str, int]:
    """Write the mixed folder; returns the number of files of each kind."""
    rng = random.Random(seed)
    counts: dict[str, int] = {}

    def put(kind: str, name: str, data: bytes) -> None:
        (folder / kind).mkdir(parents=True, exist_ok=True)
        (folder / kind / name).write_bytes(data)
        counts[kind] = counts.get(kind, 0) + 1

    for n in range(40 * scale):
        put("text", f"notes{n}.txt", "\n\n".join(_prose(rng, rng.randint(500, 8000))).encode())
    for n in range(10 * scale):
        body = "\n\n".join(f"## {_sentence(rng)}\n\n{p}" for p in _prose(rng, 3000))
        put("markdown", f"page{n}.md", f"# Title {n}\n\n{body}".encode())
    for n in range(5 * scale):
        rows = "\n".join(
            ",".join([str(i), *(rng.choice(WORDS) for _ in range(6))]) for i in range(2000)
        )
        put("csv", f"table{n}.csv", f"id,a,b,c,d,e,f\n{rows}\n".encode())
    for n in range(20 * scale):
        put("docx", f"report{n}.docx", _docx(rng, rng.randint(500, 5000)))
    for n in range(20 * scale):
        lines = [line for p in _prose(rng, rng.randint(2000, 12000)) for line in _wrap(p)]
        pages = [lines[i : i + 60] for i in range(0, len(lines), 60)]
        put("pdf", f"paper{n}.pdf", _pdf(pages))
    if SHARED_DOCS.is_dir():
        for n in range(5 * scale):
            for path in sorted(SHARED_DOCS.iterdir()):
                put("shared", f"{n}-{path.name}", _unique_copy(path, n))
    return counts


def _wrap(paragraph: str, width: int = 95) -> list[str]:
    lines, line = [], ""
    for word in paragraph.split():
        if len(line) + len(word) + 1 > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return [*lines, line]


def _unique_copy(path: Path, n: int) -> bytes:
    data = path.read_bytes()
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        return data + b"\n%% copy %d\n" % n  # after %%EOF: readers ignore it
    if suffix == ".docx":
        return data + b"\0" * (n + 1)  # zip readers find the directory from the end
    return data + f"\n<!-- copy {n} -->\n".encode() if suffix == ".html" else data + b"\n%d\n" % n


def run(scale: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="flatchat-bench-ingest-"))
    try:
        source = work / "source"
        started = time.perf_counter()
        counts = generate(source, scale)
        generated = time.perf_counter() - started
        total_bytes = sum(p.stat().st_size for p in source.rglob("*") if p.is_file())
        archive = asyncio.run(Archive.open(work / "archive", create=True))
        asyncio.run(archive.create_user("bench"))
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        report = ingest_sync(archive, [source], "bench")
        refresh = asyncio.run(archive.refresh_index())
        elapsed = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    finally:
        shutil.rmtree(work, ignore_errors=True)
    files = len(report.files)
    stages = {k: v for k, v in report.timings.items() if k != "after_store"}
    return {
        "files": files,
        "files_by_kind": counts,
        "bytes": total_bytes,
        "status": {s: report.count(s) for s in ("ingested", "duplicate", "unsupported", "failed")},
        "generate_seconds": round(generated, 2),
        "seconds": round(elapsed, 3),
        "mb_per_second": round(total_bytes / 1e6 / elapsed, 2),
        "files_per_second": round(files / elapsed, 1),
        "stages_seconds": {k: round(v, 3) for k, v in stages.items()},
        "embed_seconds": round(refresh.embed_seconds, 3),
        "index_seconds": round(refresh.seconds - refresh.embed_seconds, 3),
        "chunks_indexed": refresh.documents_added,
        "chunks_embedded_per_second": round(refresh.vectors_added / refresh.embed_seconds)
        if refresh.embed_seconds
        else None,
        "rss_before_ingest_mb": round(rss_before / 1024, 1),
        "peak_rss_mb": round(peak / 1024, 1),
    }


def to_markdown(result: dict[str, Any], command: str) -> str:
    seconds = result["seconds"]
    rows = [
        f"| {stage} | {value:.3f} | {100 * value / seconds:.0f}% |"
        for stage, value in result["stages_seconds"].items()
    ]
    for stage in ("embed", "index"):
        value = result[f"{stage}_seconds"]
        rows.append(f"| {stage} | {value:.3f} | {100 * value / seconds:.0f}% |")
    kinds = ", ".join(f"{n} {k}" for k, n in result["files_by_kind"].items())
    return "\n".join(
        [
            "# Ingest benchmark",
            "",
            f"`{command}`",
            "",
            f"{result['files']} files ({kinds}), {result['bytes'] / 1e6:.1f} MB: "
            f"{result['seconds']:.2f} s, **{result['mb_per_second']} MB/s, "
            f"{result['files_per_second']} files/s**. Status: {result['status']}.",
            f"Peak RSS {result['peak_rss_mb']} MB ({result['rss_before_ingest_mb']} MB before "
            "ingesting).",
            f"{result['chunks_indexed']:,} chunks indexed; embedding ran at "
            f"{result['chunks_embedded_per_second']:,} chunks/s.",
            "",
            "| stage | seconds | share |",
            "| --- | --- | --- |",
            *rows,
            "",
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="a fifth of the files")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "bench_ingest")
    args = parser.parse_args(argv)
    result = run(1 if args.quick else 5)
    command = "python benchmarks/bench_ingest.py" + (" --quick" if args.quick else "")
    markdown = to_markdown(result, command)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text(markdown)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    sys.stdout.write(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
