"""Dialogs; all are shown with ``open()``/``show()`` (never ``exec()`` inside async code)."""
