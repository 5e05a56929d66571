from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import orjson
import pytest

from storage.files import read_model, write_model
from storage.models import (
    DocumentRecord,
    Message,
    PanelInsight,
    PanelMessage,
    Persona,
    Record,
    Session,
    SituationalContext,
    UserProfile,
)

NOW = "2026-01-26T10:15:00.123456+00:00"
SAMPLES: list[tuple[type[Record], dict[str, Any]]] = [
    (
        Message,
        {
            "message_id": "m1",
            "role": "user",
            "content": "hi ✓",
            "timestamp": NOW,
            "attachments": ["a.png"],
            "metadata": {"model": "x"},
            "parent_id": "m0",
        },
    ),
    (
        PanelMessage,
        {
            "message_id": "m2",
            "role": "expert",
            "content": "I agree",
            "timestamp": NOW,
            "persona_id": "expert",
            "response_to": "m1",
            "consensus_level": 0.8,
        },
    ),
    (
        Session,
        {
            "session_id": "s1",
            "user_id": "u",
            "title": "T",
            "session_type": "debate",
            "created_at": NOW,
            "updated_at": NOW,
            "message_count": 3,
            "metadata": {"tags": ["a"], "pinned": True},
        },
    ),
    (
        UserProfile,
        {
            "user_id": "u",
            "username": "U",
            "created_at": NOW,
            "updated_at": NOW,
            "preferences": {"theme": "dark"},
            "metadata": {},
        },
    ),
    (
        DocumentRecord,
        {
            "doc_id": "d1",
            "filename": "d1",
            "original_name": "a b.pdf",
            "mime_type": "application/pdf",
            "size": 10,
            "sha256": "ab" * 32,
            "uploaded_at": NOW,
            "uploaded_by": "u",
            "analysis": {"pages": 2},
            "metadata": {},
        },
    ),
    (
        SituationalContext,
        {
            "summary": "s",
            "key_points": ["k"],
            "entities": {"t": ["x"]},
            "timestamp": NOW,
            "confidence": 0.5,
            "message_range": [0, 4],
            "metadata": {},
        },
    ),
    (
        Persona,
        {
            "id": "p",
            "name": "P",
            "description": "d",
            "traits": ["calm"],
            "expertise": ["maths"],
            "communication_style": "terse",
            "is_global": True,
            "owner_id": None,
            "created_at": NOW,
            "updated_at": NOW,
            "metadata": {},
        },
    ),
    (
        PanelInsight,
        {
            "id": "i1",
            "panel_id": "s1",
            "type": "conclusion",
            "content": "c",
            "supporting_messages": ["m1"],
            "consensus_level": 1.0,
            "created_at": NOW,
            "created_by": "p",
            "metadata": {},
        },
    ),
]


@pytest.mark.parametrize(("model", "data"), SAMPLES, ids=[m.__name__ for m, _ in SAMPLES])
def test_round_trip_through_a_file_keeps_every_field(
    tmp_path: Path, model: type[Record], data: dict[str, Any]
) -> None:
    data = {**data, "future_field": {"nested": [1, 2]}}
    record = model.model_validate(data)
    path = tmp_path / "record.json"
    write_model(path, record)
    again = read_model(path, model)
    assert again == record
    on_disk = orjson.loads(path.read_bytes())
    assert on_disk["future_field"] == {"nested": [1, 2]}
    for key, value in data.items():
        if key.endswith(("_at", "timestamp")):
            assert dt.datetime.fromisoformat(on_disk[key]) == dt.datetime.fromisoformat(value)
        else:
            assert on_disk[key] == value


def test_unknown_fields_survive_a_copy_with_update() -> None:
    message = Message.model_validate({"role": "user", "content": "a", "x-extra": 1})
    edited = message.model_copy(update={"content": "b"})
    assert edited.to_dict()["x-extra"] == 1


def test_offset_less_timestamps_are_local_time_and_written_with_offset() -> None:
    message = Message.model_validate({"role": "user", "timestamp": "2025-07-22T17:34:44.328585"})
    assert message.timestamp.tzinfo is not None
    naive = dt.datetime(2025, 7, 22, 17, 34, 44, 328585)
    assert message.timestamp == naive.astimezone()
    written = message.to_dict()["timestamp"]
    assert dt.datetime.fromisoformat(written.replace("Z", "+00:00")).utcoffset() is not None


def test_aliases_of_the_original_system() -> None:
    assert Message.model_validate({"id": "m", "role": "user"}).message_id == "m"
    assert Session.model_validate({"id": "s", "user_id": "u"}).session_id == "s"
    persona = Persona.model_validate(
        {
            "persona_id": "dr._sarah_wilson",
            "name": "Dr. Sarah Wilson",
            "expertise_areas": ["analysis"],
            "behavioral_traits": {"communication_style": "precise", "values": ["accuracy"]},
        }
    )
    assert persona.id == "dr._sarah_wilson"
    assert persona.expertise == ["analysis"]
    assert persona.communication_style == "precise"
    assert persona.traits == ["accuracy"]
    assert persona.to_dict()["persona_id"] == "dr._sarah_wilson"  # the alias is kept too
    panel = Session.model_validate(
        {"session_id": "p", "user_id": "u", "metadata": {"session_type": "panel"}}
    )
    assert panel.is_panel


def test_parent_id_is_left_out_when_absent() -> None:
    assert "parent_id" not in Message(role="user").to_dict()
    assert Message(role="user", parent_id="x").to_dict()["parent_id"] == "x"


def test_records_are_immutable() -> None:
    message = Message(role="user")
    with pytest.raises(ValueError, match="frozen"):
        message.content = "x"  # type: ignore[misc]


@pytest.mark.parametrize("bad", [{"role": ""}, {"role": "user", "timestamp": "yesterday"}])
def test_invalid_records_are_rejected(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Message.model_validate(bad)
