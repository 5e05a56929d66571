"""``search`` and ``reindex``."""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from app.commands import Command, write_json
from storage import Archive
from storage.jobs import JobControl, Progress
from storage.search.query import parse
from storage.search.results import KINDS


def _search_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "query",
        help='words, "phrases", prefix*, -exclude, OR, role:, user:, '
        "session:, kind:, source:, before:, after:",
    )
    parser.add_argument(
        "--mode",
        choices=("keyword", "semantic", "hybrid"),
        default=None,
        help="default: setting search.default_mode",
    )
    parser.add_argument("--limit", type=_count, default=20, help="hits to show (default 20)")
    parser.add_argument("--offset", type=_count, default=0, help="hits to skip (default 0)")
    parser.add_argument("--user", action="append", default=None)
    parser.add_argument("--session", action="append", default=None)
    parser.add_argument("--role", action="append", default=None)
    parser.add_argument("--kind", action="append", default=None, choices=KINDS)


def _count(text: str) -> int:
    """A whole number of 0 or more (argparse names the option in its usage error)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return value


async def _cmd_search(archive: Archive, args: argparse.Namespace, out: TextIO) -> int:
    filters = {
        name: getattr(args, name)
        for name in ("user", "session", "role", "kind")
        if getattr(args, name)
    }
    if not filters:
        # A query of only exclusions: say what to add (the search would say there is nothing
        # to search for). With --role and the like it is a search, so it is not checked then.
        parse(args.query).check_searchable()
    results = await archive.search(args.query, args.mode, args.limit, args.offset, **filters)
    if args.json:
        data = results.to_dict()
        data["hits"] = [
            {
                k: h[k]
                for k in (
                    "kind",
                    "user_id",
                    "session_id",
                    "message_id",
                    "doc_id",
                    "chunk",
                    "page",
                    "char_start",
                    "char_end",
                    "role",
                    "title",
                    "timestamp",
                    "score",
                    "snippet",
                    "highlights",
                )
            }
            for h in data["hits"]
        ]
        write_json(out, data)
        return 0
    if results.degraded:
        print(f"note: {results.degraded}", file=sys.stderr)
    shown = f"{args.offset + 1}-{args.offset + len(results.hits)}" if results.hits else "0"
    out.write(f"{results.count_text()} ({results.mode}); showing {shown}\n\n")
    for hit in results.hits:
        where = (
            f"{hit.user_id}/{hit.session_id or 'library'}"
            + (f" #{hit.message_id}" if hit.message_id else "")
            + (f" {hit.doc_id} chunk {hit.chunk}" if hit.doc_id else "")
            + (f" p.{hit.page}" if hit.page else "")
        )
        out.write(f"[{hit.kind}] {hit.title or '(untitled)'}  {where}  score {hit.score:.3f}\n")
        out.write("    " + _marked(hit.snippet, hit.highlights).replace("\n", " ") + "\n\n")
    return 0


def _marked(snippet: str, ranges: list[tuple[int, int]]) -> str:
    """The snippet with matches in [brackets] (a terminal shows no highlight colours in pipes)."""
    out, last = [], 0
    for start, end in ranges:
        out.append(snippet[last:start] + "[" + snippet[start:end] + "]")
        last = end
    return "".join(out) + snippet[last:]


def _progress_printer(out: TextIO, quiet: bool) -> JobControl:
    def show(progress: Progress) -> None:
        if quiet:
            return
        total = f"/{progress.total}" if progress.total is not None else ""
        print(
            f"\rindexing {progress.done}{total} {progress.current[:60]:<60}",
            end="",
            file=sys.stderr,
            flush=True,
        )

    return JobControl("reindex", show)


async def _cmd_reindex(archive: Archive, args: argparse.Namespace, out: TextIO) -> int:
    control = _progress_printer(out, args.json)
    report = await archive.reindex(control)
    if args.json:
        write_json(out, report.to_dict())
    else:
        print(file=sys.stderr)
        out.write(
            f"reindexed {report.sources_indexed} sources: {report.documents_added:,} "
            f"documents, {report.vectors_added:,} vectors in {report.seconds:.1f} s\n"
        )
    return 0


COMMANDS = [
    Command("search", "search messages, documents, contexts and titles", _cmd_search, _search_args),
    Command("reindex", "rebuild the search indexes from the files", _cmd_reindex),
]
