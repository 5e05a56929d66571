"""Stream (or load) a whole session in a fresh process and report its peak RSS growth.

    python tests/storage/memory_probe.py ARCHIVE USER SESSION forward|backward|all

Prints ``<messages seen> <peak RSS growth in KiB>``. A fresh process, so that nothing another
test allocated hides the peak.
"""

from __future__ import annotations

import asyncio
import gc
import resource
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from storage import Archive


def peak_kib() -> int:
    """This process's peak resident set (VmHWM). Not ru_maxrss: Linux carries that over from
    the parent across fork and exec, so a child of a big pytest process starts with its peak."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # not Linux


def reset_peak() -> None:
    """Start the peak from the current resident set (Linux 4.0+), when the kernel allows."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        return  # the peak then includes start-up, which only makes the test stricter


async def main(root: str, user: str, session: str, mode: str) -> None:
    archive = await Archive.open(root)
    await archive.get_messages(user, session, 10)  # warm imports, threads and caches
    gc.collect()
    reset_peak()
    before = peak_kib()
    seen = 0
    if mode == "all":
        seen = len(await archive.get_all_messages(user, session))
    else:
        async for _message in archive.iter_messages(user, session, reverse=mode == "backward"):
            seen += 1
    print(seen, peak_kib() - before)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
