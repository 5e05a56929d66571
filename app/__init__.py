"""Flatchat's composition root: entry points, settings, wiring, the qasync loop."""
