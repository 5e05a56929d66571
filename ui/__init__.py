"""Flatchat's Qt layer: item models, views, widgets and dialogs (no file-format knowledge)."""
