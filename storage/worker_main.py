"""Entry point of a job's worker process: ``python -m storage.worker_main IN_FD OUT_FD``.

A module of its own so that ``storage.worker`` is imported under its real name in the worker
(what it sends back pickles as ``storage.worker...``, not ``__main__...``)."""

import sys

from storage.worker import worker_main

if __name__ == "__main__":
    worker_main(int(sys.argv[1]), int(sys.argv[2]))
