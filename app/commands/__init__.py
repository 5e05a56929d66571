"""``flatchat`` subcommands. Every module here exposes ``COMMANDS``, a list of :class:`Command`;
the CLI discovers them, so a feature adds its commands without touching the others."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TextIO

import orjson

from storage import Archive

Handler = Callable[[Archive, argparse.Namespace, TextIO], Awaitable[int]]


class UsageError(Exception):
    """A command line that cannot be run as given (exit status 2)."""


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    run: Handler
    add_arguments: Callable[[argparse.ArgumentParser], None] = lambda parser: None
    creates_archive: bool = False  # only `init` may create a missing archive


def discover() -> list[Command]:
    commands: list[Command] = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        commands.extend(getattr(module, "COMMANDS", []))
    return commands


def dump(value: Any) -> bytes:
    return orjson.dumps(value, default=_default, option=orjson.OPT_INDENT_2)


def _default(value: Any) -> Any:
    if hasattr(value, "to_dict"):
        return value.to_dict()
    raise TypeError(f"cannot encode {type(value).__name__}")


def write_json(out: TextIO, value: Any) -> None:
    out.write(dump(value).decode() + "\n")
