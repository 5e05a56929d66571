"""Flatchat's composition root: entry points, settings, wiring, the qasync loop."""

import os

# Before numpy loads: vector rescoring multiplies a few thousand rows, where a second BLAS
# thread costs more to wake (10-20 ms on a busy 2-core laptop) than it saves.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
