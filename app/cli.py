"""The ``flatchat`` command line: ``flatchat --archive DIR COMMAND [--json]``; without a
COMMAND it starts the desktop window (``--screenshot PNG`` renders it headless instead).

Human-readable output by default, ``--json`` for scripts. Errors go to stderr with a non-zero
exit status: 1 for an error in the archive or input, 2 for a usage error. The commands live in
:mod:`app.commands`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn, TextIO

from app.commands import Command, UsageError, discover
from app.gui import TABS
from app.wiring import open_services
from storage import Archive, StorageError

EXIT_ERROR = 1
EXIT_USAGE = 2


class _CommandParser(argparse.ArgumentParser):
    """A command's parser. A query that starts with "-" (``search -draft``) reads as an
    unknown option; its error then says to put the query after ``--``."""

    _given: tuple[str, ...] = ()

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        self._given = tuple(sys.argv[1:] if args is None else args)
        return super().parse_known_args(args, namespace)

    def error(self, message: str) -> NoReturn:
        takes_query = any(action.dest == "query" for action in self._actions)
        dashed = [
            a
            for a in self._given
            if a.startswith("-") and a != "-" and a.split("=")[0] not in self._option_string_actions
        ]
        if takes_query and dashed:
            message += f'; a query that starts with "-" goes after "--": {self.prog} -- {dashed[0]}'
        super().error(message)


def build_parser(commands: Sequence[Command]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flatchat", description="Flatchat: your AI chat history and documents, on your disk."
    )
    parser.add_argument(
        "--archive",
        metavar="DIR",
        default=os.environ.get("FLATCHAT_ARCHIVE"),
        help="archive folder (default: $FLATCHAT_ARCHIVE)",
    )
    parser.add_argument(
        "--set",
        metavar="GROUP.KEY=VALUE",
        action="append",
        default=[],
        dest="settings",
        help="override a setting, e.g. storage.lock_timeout=5",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    gui = parser.add_argument_group("desktop window (when no COMMAND is given)")
    gui.add_argument(
        "--screenshot",
        metavar="PNG",
        help="render the window offscreen at 1280x800 after loading, save it, and exit",
    )
    gui.add_argument(
        "--sample",
        action="store_true",
        help="open your own copy of the sample archive (made on first use)",
    )
    gui.add_argument("--select", metavar="SESSION", help="open this session in the window")
    gui.add_argument("--search", metavar="QUERY", help="run this search in the window")
    gui.add_argument("--tab", choices=TABS, help="show this tab of the sidebar")
    gui.add_argument(
        "--settings-dialog",
        action="store_true",
        help="with --screenshot: open the settings dialog and save a picture of it",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_CommandParser)
    for command in commands:
        p = sub.add_parser(command.name, help=command.help, description=command.help)
        command.add_arguments(p)
        p.add_argument("--json", action="store_true", help="machine-readable JSON output")
    return parser


def _parse_overrides(items: Sequence[str]) -> dict[str, dict[str, Any]]:
    overrides: dict[str, dict[str, Any]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        group, dot, name = key.partition(".")
        if not sep or not dot or not group or not name:
            raise UsageError(f"--set expects GROUP.KEY=VALUE, got {item!r}")
        overrides.setdefault(group.strip(), {})[name.strip()] = value
    return overrides


async def _run(command: Command, args: argparse.Namespace, out: TextIO) -> int:
    if not args.archive:
        raise UsageError("no archive: pass --archive DIR or set FLATCHAT_ARCHIVE")
    overrides = _parse_overrides(args.settings)
    services = await open_services(
        args.archive, create=command.creates_archive, overrides=overrides
    )
    async with services.resolve(Archive) as archive:
        return await command.run(archive, args, out)


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    commands = {c.name: c for c in discover()}
    parser = build_parser(list(commands.values()))
    args = parser.parse_args(argv)
    out = out or sys.stdout
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(levelname)s %(name)s: %(message)s",
    )
    if args.command is None:
        from app.gui import run_gui  # Qt is loaded only for the window

        return run_gui(
            args.archive,
            screenshot=args.screenshot,
            select=args.select,
            search=args.search,
            tab=args.tab,
            settings_dialog=args.settings_dialog,
            sample=args.sample,
        )
    try:
        return asyncio.run(_run(commands[args.command], args, out))
    except UsageError as exc:
        parser.print_usage(sys.stderr)
        print(f"flatchat: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except StorageError as exc:
        print(f"flatchat: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:  # `flatchat show … | head`
        return 0
