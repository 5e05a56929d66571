from __future__ import annotations

import pytest

from storage.errors import SettingsError
from storage.settings import SCHEMA_VERSION, Settings, resolve_settings


def test_defaults() -> None:
    settings = resolve_settings({}, {})
    assert settings == Settings()
    assert settings.schema_version == SCHEMA_VERSION
    assert settings.document.max_bytes == 200 * 1024 * 1024


def test_precedence_defaults_archive_environment_flags() -> None:
    archive = {"storage": {"lock_timeout": 3, "compact_after_days": 7}}
    env = {"FLATCHAT_STORAGE__LOCK_TIMEOUT": "4", "FLATCHAT_SEARCH__STEMMING": "true",
           "UNRELATED": "x", "FLATCHAT_ARCHIVE": "/somewhere"}
    settings = resolve_settings(archive, env, {"storage": {"lock_timeout": "5"}})
    assert settings.storage.lock_timeout == 5  # flags win
    assert settings.storage.compact_after_days == 7  # from archive.json
    assert settings.search.stemming is True  # from the environment
    assert resolve_settings(archive, env).storage.lock_timeout == 4
    assert resolve_settings(archive, {}).storage.lock_timeout == 3


@pytest.mark.parametrize(("archive", "env", "key", "source"), [
    ({"storage": {"lock_timeout": -1}}, {}, "storage.lock_timeout", "archive.json"),
    ({}, {"FLATCHAT_VECTOR__BATCH_SIZE": "many"}, "vector.batch_size",
     "environment FLATCHAT_VECTOR__BATCH_SIZE"),
    ({}, {"FLATCHAT_SEARCH__DEFAULT_MODE": "psychic"}, "search.default_mode",
     "environment FLATCHAT_SEARCH__DEFAULT_MODE"),
    ({"storage": {"typo_key": 1}}, {}, "storage.typo_key", "archive.json"),
    ({"vector": {"embedder": "hashng"}}, {}, "vector.embedder", "archive.json"),
    ({}, {"FLATCHAT_VECTOR__EMBEDDER": "Model2Vec"}, "vector.embedder",
     "environment FLATCHAT_VECTOR__EMBEDDER"),
    ({"nonsense": {}}, {}, "nonsense", "archive.json"),
    ({"schema_version": 99}, {}, "schema_version", "archive.json"),
])
def test_invalid_settings_name_key_and_source(
        archive: dict[str, object], env: dict[str, str], key: str, source: str) -> None:
    with pytest.raises(SettingsError) as info:
        resolve_settings(archive, env)
    assert info.value.key == key
    assert f"invalid setting {key} (from {source})" in str(info.value)


def test_the_embedder_is_one_of_the_known_kinds() -> None:
    with pytest.raises(SettingsError) as info:
        resolve_settings({}, {}, {"vector": {"embedder": "hashng"}})
    assert info.value.key == "vector.embedder"
    assert "(from command line)" in str(info.value)
    assert "'model2vec' or 'hashing'" in str(info.value)
    assert resolve_settings({}, {}, {"vector": {"embedder": "hashing"}}).vector.embedder == (
        "hashing")
