"""``flatchat ingest PATH… --user U [--session S]``: store files as documents, extract and
chunk their text.

Prints one line per file (ingested / duplicate / unsupported / failed, with the reason), or
with ``--json`` ``{"files": [{"path", "status", "doc_id", "reason", "warnings"}], "skipped":
[…]}``. A progress bar goes to stderr when it is a terminal. Exit status: 0 when at least one
file was stored or recognised (a batch with some failures still succeeded for the rest; the
output says which failed); 1 when nothing was found to ingest or every file failed; 2 for a
usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TextIO

from app.commands import Command, UsageError, write_json
from storage import Archive
from storage.ingest import IngestReport, ingest
from storage.jobs import JobControl, Progress

EXIT_ERROR = 1
BAR_WIDTH = 30
NAME_WIDTH = 40


class _Bar:
    """A one-line progress bar redrawn in place on a terminal; silent otherwise."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.enabled = stream.isatty()

    def __call__(self, progress: Progress) -> None:
        if not self.enabled or not progress.total:
            return
        filled = int(BAR_WIDTH * (progress.fraction or 0))
        name = progress.current[-NAME_WIDTH:]
        self.stream.write(
            f"\r[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {progress.done}/{progress.total} "
            f"{name:<{NAME_WIDTH}}"
        )
        self.stream.flush()

    def finish(self) -> None:
        if self.enabled:
            self.stream.write("\r" + " " * (BAR_WIDTH + NAME_WIDTH + 20) + "\r")
            self.stream.flush()


async def _cmd_ingest(archive: Archive, args: argparse.Namespace, out: TextIO) -> int:
    if not args.paths:
        raise UsageError("ingest needs at least one PATH")
    bar = _Bar(sys.stderr)
    control = JobControl("ingest", bar)
    try:
        report = await ingest(archive, args.paths, args.user, args.session, control=control)
    except asyncio.CancelledError:  # Ctrl-C: stop the worker before the next file
        control.cancel()
        raise
    finally:
        bar.finish()
    if args.json:
        write_json(out, report.to_dict())
    else:
        _print_summary(report, out)
    failed = report.count("failed")
    return EXIT_ERROR if failed == len(report.files) else 0


def _print_summary(report: IngestReport, out: TextIO) -> None:
    for f in report.files:
        detail = f.doc_id or ""
        if f.reason:
            detail = f"{detail}: {f.reason}" if detail else f.reason
        out.write(f"{f.status:<11} {f.path}  {detail}\n")
        for warning in f.warnings:
            out.write(f"{'':<11}   warning: {warning}\n")
    for s in report.skipped:
        out.write(f"{'skipped':<11} {s.path}  {s.reason}\n")
    counts = ", ".join(
        f"{report.count(status)} {status}"
        for status in ("ingested", "duplicate", "unsupported", "failed")
    )
    out.write(f"{len(report.files)} files: {counts}\n")


def _ingest_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", metavar="PATH", help="files or folders to ingest")
    parser.add_argument("--user", required=True)
    parser.add_argument(
        "--session", default=None, help="attach to this session (default: the user's library)"
    )


COMMANDS = [
    Command(
        "ingest",
        "store files and folders as documents; extract, chunk and analyse their text",
        _cmd_ingest,
        _ingest_args,
    )
]
