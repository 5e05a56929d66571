"""The ``flatchat`` command line: ``flatchat --archive DIR COMMAND [--json]``.

Human-readable output by default, ``--json`` for scripts. Errors go to stderr with a non-zero
exit status: 1 for an error in the archive or input, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any, TextIO

import orjson

from app.wiring import open_services
from storage import Archive, StorageError
from storage.models import Record

log = logging.getLogger("flatchat")

EXIT_ERROR = 1
EXIT_USAGE = 2


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable JSON output")


def build_parser() -> argparse.ArgumentParser:
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
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("init", help="create a new, empty archive in DIR")
    _add_common(p)
    p = sub.add_parser("stats", help="count users, sessions, messages, documents")
    _add_common(p)
    p = sub.add_parser("users", help="list users")
    _add_common(p)
    p = sub.add_parser("sessions", help="list a user's sessions, newest first")
    p.add_argument("--user", required=True)
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--offset", type=int, default=0)
    p.add_argument(
        "--type",
        dest="session_type",
        default=None,
        help="only chat/panel/debate/problem_solving sessions",
    )
    _add_common(p)
    p = sub.add_parser("show", help="print a session and its messages")
    p.add_argument("--user", required=True)
    p.add_argument("session_id", metavar="SESSION_ID")
    p.add_argument("--tail", type=int, default=None, help="only the last N messages")
    _add_common(p)
    p = sub.add_parser(
        "verify", help="check every file; report torn lines, corrupt records, orphan files"
    )
    p.add_argument(
        "--repair",
        action="store_true",
        help="fix what is safe to fix: stale counts, torn tails, leftovers",
    )
    _add_common(p)
    p = sub.add_parser("compact", help="compress idle sessions' messages (zstd)")
    p.add_argument("--user")
    p.add_argument("--session", help="compact this session now (needs --user)")
    p.add_argument(
        "--idle-days",
        type=float,
        default=None,
        help="compact sessions idle this many days (default: setting storage.compact_after_days)",
    )
    _add_common(p)
    return parser


def _parse_overrides(items: Sequence[str]) -> dict[str, dict[str, Any]]:
    overrides: dict[str, dict[str, Any]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        group, dot, name = key.partition(".")
        if not sep or not dot or not group or not name:
            raise _UsageError(f"--set expects GROUP.KEY=VALUE, got {item!r}")
        overrides.setdefault(group.strip(), {})[name.strip()] = value
    return overrides


class _UsageError(Exception):
    pass


def _dump(value: Any) -> bytes:
    return orjson.dumps(value, default=_default, option=orjson.OPT_INDENT_2)


def _default(value: Any) -> Any:
    if isinstance(value, Record):
        return value.to_dict()
    if hasattr(value, "to_dict"):
        return value.to_dict()
    raise TypeError(f"cannot encode {type(value).__name__}")


def _write_json(out: TextIO, value: Any) -> None:
    out.write(_dump(value).decode() + "\n")


async def _run(args: argparse.Namespace, out: TextIO) -> int:
    if not args.archive:
        raise _UsageError("no archive: pass --archive DIR or set FLATCHAT_ARCHIVE")
    overrides = _parse_overrides(args.settings)
    services = await open_services(args.archive, create=args.command == "init", overrides=overrides)
    async with services.resolve(Archive) as archive:
        handler = _COMMANDS[args.command]
        return await handler(archive, args, out)


async def _cmd_init(archive: Archive, args: argparse.Namespace, out: TextIO) -> int:
    if args.json:
        _write_json(out, {"archive": str(archive.root), "format_version": archive.format_version})
    else:
        out.write(f"archive ready at {archive.root} (format version {archive.format_version})\n")
    return 0


async def _cmd_stats(archive: Archive, args: argparse.Namespace, out: TextIO) -> int:
    stats = await archive.stats()
    if args.json:
        _write_json(out, stats.to_dict())
    else:
        for key, value in stats.to_dict().items():
            out.write(f"{key:>10}  {value:,}\n")
    return 0


async def _cmd_users(archive: Archive, args: argparse.Namespace, out: TextIO) -> int:
    users = await archive.list_users()
    if args.json:
        _write_json(out, users)
    else:
        for user in users:
            out.write(f"{user.user_id:<24} {user.display_name}\n")
    return 0


async def _cmd_sessions(archive: Archive, args: argparse.Namespace, out: TextIO) -> int:
    sessions = await archive.list_sessions(
        args.user, args.limit, args.offset, session_type=args.session_type
    )
    if args.json:
        _write_json(out, sessions)
        return 0
    for s in sessions:
        when = s.updated_at.astimezone().strftime("%Y-%m-%d %H:%M")
        out.write(
            f"{when}  {s.message_count:>6}  {s.session_type:<8} {s.session_id}  "
            f"{s.title or '(untitled)'}\n"
        )
    return 0


async def _cmd_show(archive: Archive, args: argparse.Namespace, out: TextIO) -> int:
    session = await archive.get_session(args.user, args.session_id)
    if args.tail is not None:
        messages: Any = await archive.get_messages(
            args.user, args.session_id, args.tail, 0, from_end=True
        )
    else:
        messages = archive.iter_messages(args.user, args.session_id)
    if args.json:
        # Streamed so a 100,000-message session prints in constant memory.
        out.write('{"session": ' + _dump(session).decode() + ', "messages": [')
        first = True
        async for message in _aiter(messages):
            out.write(("\n" if first else ",\n") + orjson.dumps(message.to_dict()).decode())
            first = False
        out.write("\n]}\n")
        return 0
    out.write(f"# {session.title or '(untitled)'}\n")
    out.write(
        f"  session {session.session_id} · {session.session_type} · user {session.user_id}"
        f" · {session.message_count} messages · updated "
        f"{session.updated_at.astimezone():%Y-%m-%d %H:%M}\n\n"
    )
    async for message in _aiter(messages):
        when = message.timestamp.astimezone().strftime("%Y-%m-%d %H:%M:%S")
        out.write(f"[{when}] {message.role}:\n")
        for line in (message.content or "").splitlines() or [""]:
            out.write(f"    {line}\n")
        out.write("\n")
    return 0


async def _aiter(messages: Any) -> Any:
    if isinstance(messages, list):
        for message in messages:
            yield message
    else:
        async for message in messages:
            yield message


async def _cmd_verify(archive: Archive, args: argparse.Namespace, out: TextIO) -> int:
    report = await archive.verify(repair=args.repair)
    if args.json:
        _write_json(out, report.to_dict())
    else:
        for p in report.problems:
            where = f"{p.path}:{p.line}" if p.line is not None else p.path
            fixed = " [repaired]" if p.repaired else ""
            out.write(f"{p.severity:<7} {where}: {p.problem}{fixed}\n")
        state = "ok" if report.ok else "PROBLEMS FOUND"
        out.write(
            f"{state}: {report.checked_files} files checked, {len(report.problems)} problems\n"
        )
    return 0 if report.ok else EXIT_ERROR


async def _cmd_compact(archive: Archive, args: argparse.Namespace, out: TextIO) -> int:
    if args.session:
        if not args.user:
            raise _UsageError("compact --session needs --user")
        done = (
            [(args.user, args.session)]
            if await archive.compact_session(args.user, args.session)
            else []
        )
    else:
        done = await archive.compact_idle(args.idle_days)
    if args.json:
        _write_json(out, {"compacted": [{"user": u, "session": s} for u, s in done]})
    else:
        for u, s in done:
            out.write(f"compacted {u}/{s}\n")
        out.write(f"{len(done)} sessions compacted\n")
    return 0


_COMMANDS = {
    "init": _cmd_init,
    "stats": _cmd_stats,
    "users": _cmd_users,
    "sessions": _cmd_sessions,
    "show": _cmd_show,
    "verify": _cmd_verify,
    "compact": _cmd_compact,
}


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    out = out or sys.stdout
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(levelname)s %(name)s: %(message)s",
    )
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return asyncio.run(_run(args, out))
    except _UsageError as exc:
        parser.print_usage(sys.stderr)
        print(f"flatchat: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except StorageError as exc:
        print(f"flatchat: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:  # `flatchat show … | head`
        return 0
