"""A small typed service registry: singleton, transient and scoped lifetimes.

Only services the product swaps (the embedder, extractors, importers, the archive itself in
tests) go here; everything else is wired with plain constructor calls.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar, cast

T = TypeVar("T")


class Lifetime(enum.Enum):
    SINGLETON = "singleton"  # one instance for the registry's life
    TRANSIENT = "transient"  # a new instance on every resolve
    SCOPED = "scoped"  # one instance per `with registry.scope()` block


class RegistryError(LookupError):
    """Resolving something never registered, or a scoped service outside a scope."""


@dataclass
class _Entry:
    factory: Callable[[Registry], Any]
    lifetime: Lifetime


class Registry:
    def __init__(self) -> None:
        self._entries: dict[type[Any], _Entry] = {}
        self._singletons: dict[type[Any], Any] = {}
        self._scopes: list[dict[type[Any], Any]] = []

    def register(
        self,
        key: type[T],
        factory: Callable[[Registry], T],
        lifetime: Lifetime = Lifetime.SINGLETON,
    ) -> None:
        self._entries[key] = _Entry(factory, lifetime)
        self._singletons.pop(key, None)

    def register_instance(self, key: type[T], instance: T) -> None:
        self._entries[key] = _Entry(lambda _r: instance, Lifetime.SINGLETON)
        self._singletons[key] = instance

    def is_registered(self, key: type[Any]) -> bool:
        return key in self._entries

    def resolve(self, key: type[T]) -> T:
        entry = self._entries.get(key)
        if entry is None:
            known = ", ".join(sorted(k.__name__ for k in self._entries)) or "nothing"
            raise RegistryError(f"{key.__name__} is not registered (registered: {known})")
        if entry.lifetime is Lifetime.TRANSIENT:
            return cast(T, entry.factory(self))
        if entry.lifetime is Lifetime.SINGLETON:
            if key not in self._singletons:
                self._singletons[key] = entry.factory(self)
            return cast(T, self._singletons[key])
        if not self._scopes:
            raise RegistryError(f"{key.__name__} is scoped: resolve it inside registry.scope()")
        scope = self._scopes[-1]
        if key not in scope:
            scope[key] = entry.factory(self)
        return cast(T, scope[key])

    @contextmanager
    def scope(self) -> Iterator[Registry]:
        self._scopes.append({})
        try:
            yield self
        finally:
            self._scopes.pop()
