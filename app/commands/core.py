"""The archive's own commands: init, stats, users, sessions, show, verify, compact."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

import orjson

from app.commands import Command, UsageError, dump, write_json
from storage import Archive

EXIT_ERROR = 1


async def _cmd_init(archive: Archive, args: argparse.Namespace, out: TextIO) -> int:
    if args.json:
        write_json(out, {"archive": str(archive.root), "format_version": archive.format_version})
    else:
        out.write(f"archive ready at {archive.root} (format version {archive.format_version})\n")
    return 0


async def _cmd_stats(archive: Archive, args: argparse.Namespace, out: TextIO) -> int:
    stats = await archive.stats()
    if args.json:
        write_json(out, stats.to_dict())
    else:
        for key, value in stats.to_dict().items():
            out.write(f"{key:>10}  {value:,}\n")
    return 0


async def _cmd_users(archive: Archive, args: argparse.Namespace, out: TextIO) -> int:
    users = await archive.list_users()
    if args.json:
        write_json(out, users)
    else:
        for user in users:
            out.write(f"{user.user_id:<24} {user.display_name}\n")
    return 0


async def _cmd_sessions(archive: Archive, args: argparse.Namespace, out: TextIO) -> int:
    sessions = await archive.list_sessions(
        args.user, args.limit, args.offset, session_type=args.session_type
    )
    if args.json:
        write_json(out, sessions)
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
        out.write('{"session": ' + dump(session).decode() + ', "messages": [')
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
        write_json(out, report.to_dict())
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
            raise UsageError("compact --session needs --user")
        done = (
            [(args.user, args.session)]
            if await archive.compact_session(args.user, args.session)
            else []
        )
    else:
        done = await archive.compact_idle(args.idle_days)
    if args.json:
        write_json(out, {"compacted": [{"user": u, "session": s} for u, s in done]})
    else:
        for u, s in done:
            out.write(f"compacted {u}/{s}\n")
        out.write(f"{len(done)} sessions compacted\n")
    return 0


def _user_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--user", required=True)


def _sessions_args(parser: argparse.ArgumentParser) -> None:
    _user_args(parser)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--offset", type=int, default=0)
    parser.add_argument(
        "--type",
        dest="session_type",
        default=None,
        help="only chat/panel/debate/problem_solving sessions",
    )


def _show_args(parser: argparse.ArgumentParser) -> None:
    _user_args(parser)
    parser.add_argument("session_id", metavar="SESSION_ID")
    parser.add_argument("--tail", type=int, default=None, help="only the last N messages")


def _verify_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--repair",
        action="store_true",
        help="fix what is safe to fix: stale counts, torn tails, leftovers",
    )


def _compact_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--user")
    parser.add_argument("--session", help="compact this session now (needs --user)")
    parser.add_argument(
        "--idle-days",
        type=float,
        default=None,
        help="compact sessions idle this many days (default: setting storage.compact_after_days)",
    )


COMMANDS = [
    Command("init", "create a new, empty archive in DIR", _cmd_init, creates_archive=True),
    Command("stats", "count users, sessions, messages, documents", _cmd_stats),
    Command("users", "list users", _cmd_users),
    Command("sessions", "list a user's sessions, newest first", _cmd_sessions, _sessions_args),
    Command("show", "print a session and its messages", _cmd_show, _show_args),
    Command(
        "verify",
        "check every file; report torn lines, corrupt records, orphan files",
        _cmd_verify,
        _verify_args,
    ),
    Command("compact", "compress idle sessions' messages (zstd)", _cmd_compact, _compact_args),
]
