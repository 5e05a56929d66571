from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from app.registry import Lifetime, Registry, RegistryError
from app.wiring import open_services
from storage import Archive
from storage.settings import Settings


class Service:
    pass


def test_lifetimes() -> None:
    registry = Registry()
    registry.register(Service, lambda r: Service(), Lifetime.SINGLETON)
    assert registry.resolve(Service) is registry.resolve(Service)
    registry.register(Service, lambda r: Service(), Lifetime.TRANSIENT)
    assert registry.resolve(Service) is not registry.resolve(Service)
    registry.register(Service, lambda r: Service(), Lifetime.SCOPED)
    with pytest.raises(RegistryError, match="scoped"):
        registry.resolve(Service)
    with registry.scope():
        first = registry.resolve(Service)
        assert registry.resolve(Service) is first
        with registry.scope():
            assert registry.resolve(Service) is not first
    with registry.scope():
        assert registry.resolve(Service) is not first


def test_unregistered_names_what_is_known() -> None:
    registry = Registry()
    registry.register_instance(int, 3)
    with pytest.raises(RegistryError, match=r"Service is not registered \(registered: int\)"):
        registry.resolve(Service)


def test_open_services_wires_archive_and_settings(archive_dir: Path) -> None:
    registry = asyncio.run(open_services(archive_dir, create=True,
                                         overrides={"search": {"page_size": "20"}}, environ={}))
    assert isinstance(registry.resolve(Archive), Archive)
    assert registry.resolve(Settings).search.page_size == 20
