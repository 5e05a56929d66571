"""A separate process that works on an archive, for the multi-process and crash tests.

    python tests/storage/worker.py ARCHIVE append USER SESSION COUNT TAG
    python tests/storage/worker.py ARCHIVE metadata USER SESSION COUNT TAG
    python tests/storage/worker.py ARCHIVE edit USER SESSION MESSAGE_ID TEXT
    python tests/storage/worker.py ARCHIVE chaos USER SESSION SEED
    python tests/storage/worker.py ARCHIVE search MODE QUERY

``search`` brings the index up to date (as every search does) and prints the hit count and
the message ids found, one line: ``<total> <id> <id>...``.

``chaos`` loops forever mixing appends, batch appends, edits (rewrites), metadata updates and
compaction, printing ``ack <message_id>`` after each append returns; the test kills it.
"""

from __future__ import annotations

import asyncio
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from storage import Archive, Message


async def append(archive: Archive, user: str, session: str, count: int, tag: str) -> None:
    for i in range(count):
        await archive.add_message(
            user, session, Message(message_id=f"{tag}-{i}", role="user", content=f"{tag} says {i}")
        )


async def metadata(archive: Archive, user: str, session: str, count: int, tag: str) -> None:
    for i in range(count):
        await archive.update_session(user, session, metadata={f"{tag}-{i}": i})


async def search(archive: Archive, mode: str, query: str) -> None:
    results = await archive.search(query, mode, limit=50)  # type: ignore[arg-type]
    print(results.total, *(h.message_id for h in results.hits), flush=True)


async def chaos(archive: Archive, user: str, session: str, seed: int) -> None:
    rng = random.Random(seed)
    acked: list[str] = []
    n = 0
    while True:
        action = rng.random()
        if action < 0.55:
            n += 1
            mid = f"s{seed}-{n}"
            await archive.add_message(
                user,
                session,
                Message(
                    message_id=mid, role="user", content=f"{mid} " + "x" * rng.randint(0, 3000)
                ),
            )
            acked.append(mid)
            print(f"ack {mid}", flush=True)
        elif action < 0.7:
            batch = []
            for _ in range(rng.randint(2, 20)):
                n += 1
                batch.append(
                    Message(
                        message_id=f"s{seed}-{n}",
                        role="assistant",
                        content="y" * rng.randint(0, 500),
                    )
                )
            await archive.add_messages(user, session, batch)
            for m in batch:
                acked.append(m.message_id)
                print(f"ack {m.message_id}", flush=True)
        elif action < 0.85 and acked:
            await archive.edit_message(
                user, session, rng.choice(acked), content=f"edited {rng.random()}"
            )
        elif action < 0.95:
            await archive.update_session(user, session, metadata={"n": n})
        else:
            await archive.compact_session(user, session)


async def main(argv: list[str]) -> None:
    root, command, *args = argv
    archive = await Archive.open(root)
    if command == "search":
        await search(archive, *args)
        return
    user, session, *rest = args
    if command == "append":
        await append(archive, user, session, int(rest[0]), rest[1])
    elif command == "metadata":
        await metadata(archive, user, session, int(rest[0]), rest[1])
    elif command == "edit":
        await archive.edit_message(user, session, rest[0], content=rest[1])
    elif command == "chaos":
        await chaos(archive, user, session, int(rest[0]))
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
