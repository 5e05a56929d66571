"""``flatchat import PATH --user U``: bring in ChatGPT, Claude, Open WebUI, Jan and Flatfile
Chat Database exports. Progress goes to stderr, the report to stdout."""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

from app.commands import Command, write_json
from storage import Archive
from storage.errors import NothingImportedError
from storage.importers import ImportReport, import_archive
from storage.jobs import JobControl, Progress

EXIT_ERROR = 1
TITLE_WIDTH = 48


def _progress_printer(err: TextIO) -> Any:
    def show(progress: Progress) -> None:
        percent = f"{progress.fraction * 100:5.1f}%" if progress.fraction is not None else "  ..."
        title = progress.current[:TITLE_WIDTH]
        err.write(f"\r\x1b[2Kimporting {percent}  {title}")
        err.flush()

    return show


async def _cmd_import(archive: Archive, args: argparse.Namespace, out: TextIO) -> int:
    err = sys.stderr
    if not args.dry_run and not await archive.user_exists(args.user):
        await archive.create_user(args.user)
        if not args.json:
            err.write(f"created user {args.user!r}\n")
    control = JobControl("import", None if args.json else _progress_printer(err))
    try:
        report = await import_archive(
            archive, args.path, args.user, control=control, dry_run=args.dry_run
        )
    except NothingImportedError as exc:
        if not args.json:
            err.write("\n")
        if isinstance(exc.report, ImportReport):
            _write_report(exc.report, args, out)
        raise
    if not args.json:
        err.write("\n")
    _write_report(report, args, out)
    return EXIT_ERROR if report.failed else 0


def _write_report(report: ImportReport, args: argparse.Namespace, out: TextIO) -> None:
    if args.json:
        write_json(out, report.to_dict())
        return
    for c in report.conversations:
        if c.status == "failed" or (c.status == "skipped" and c.reason):
            out.write(f"{c.status:<8} {c.source_id}  {c.title or '(untitled)'}: {c.reason}\n")
    for name in report.ignored_files:
        out.write(f"ignored  {name}\n")
    for p in report.personas:
        out.write(f"persona  {p.get('persona_id')} {p['status']}\n")
    verb = "would import" if report.dry_run else "imported"
    out.write(
        f"{report.format}: {verb} {report.imported} new conversations, "
        f"updated {report.updated}, skipped {report.skipped}, failed {report.failed} "
        f"({report.messages_added:,} messages added)\n"
    )
    if report.report_path:
        out.write(f"report saved to {report.report_path}\n")


def _import_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", metavar="PATH", help="a ZIP, a folder or a file")
    parser.add_argument("--user", required=True, help="import into this user (created if new)")
    parser.add_argument(
        "--dry-run", action="store_true", help="show what would be imported; write nothing"
    )


COMMANDS = [
    Command(
        "import",
        "import chat history: ChatGPT, Claude, Open WebUI, Jan, Flatfile Chat Database",
        _cmd_import,
        _import_args,
    )
]
