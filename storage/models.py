"""The records of an archive, as pydantic models (field names are the on-disk contract).

Records are immutable. Fields we do not know are kept (``extra="allow"``) and written back
unchanged when a record is rewritten, so files written by newer versions or other tools lose
nothing. Timestamps are written with a UTC offset; offset-less values from older archives are
read as local time.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from storage.ids import new_id


def _aware(value: dt.datetime) -> dt.datetime:
    # Offset-less timestamps come from older archives written in the writer's local time.
    return value if value.tzinfo is not None else value.astimezone()


Timestamp = Annotated[dt.datetime, AfterValidator(_aware)]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class SessionType(enum.StrEnum):
    CHAT = "chat"
    PANEL = "panel"
    DEBATE = "debate"
    PROBLEM_SOLVING = "problem_solving"


class PanelType(enum.StrEnum):
    MULTI_PERSONA = "multi_persona"
    FOCUS_GROUP = "focus_group"
    EXPERT_PANEL = "expert_panel"
    BRAINSTORM = "brainstorm"


class InsightType(enum.StrEnum):
    CONCLUSION = "conclusion"
    ANALYSIS = "analysis"
    SUMMARY = "summary"
    RECOMMENDATION = "recommendation"


def _alias(data: Any, canonical: str, *aliases: str) -> Any:
    """Fill ``canonical`` from the first alias present; the alias itself stays (lossless)."""
    if isinstance(data, dict) and canonical not in data:
        for alias in aliases:
            if alias in data:
                return {**data, canonical: data[alias]}
    return data


class Record(BaseModel):
    """Base of every stored record: immutable, unknown fields kept."""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)

    # Optional fields left out of the file when they are None, to keep lines short.
    _omit_if_none: ClassVar[frozenset[str]] = frozenset()

    def to_dict(self) -> dict[str, Any]:
        data = self.model_dump(mode="json")
        for key in self._omit_if_none:
            if data.get(key, 0) is None:
                del data[key]
        return data

    def to_json(self) -> bytes:
        # pydantic's own JSON encoder: twice as fast as to_dict() + orjson on a batch.
        omit = {key for key in self._omit_if_none if getattr(self, key, 0) is None}
        return self.model_dump_json(exclude=omit or None).encode()

    @property
    def extra_fields(self) -> dict[str, Any]:
        return dict(self.__pydantic_extra__ or {})


class Message(Record):
    _omit_if_none: ClassVar[frozenset[str]] = frozenset({"parent_id"})

    message_id: str = Field(default_factory=lambda: new_id("msg"), min_length=1)
    role: str = Field(min_length=1)
    content: str = ""
    timestamp: Timestamp = Field(default_factory=utcnow)
    attachments: list[Any] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    parent_id: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _aliases(cls, data: Any) -> Any:
        return _alias(data, "message_id", "id")


class PanelMessage(Message):
    _omit_if_none: ClassVar[frozenset[str]] = frozenset(
        {"parent_id", "persona_id", "response_to", "consensus_level"}
    )

    persona_id: str | None = None
    response_to: str | None = None
    consensus_level: float | None = Field(default=None, ge=0.0, le=1.0)


class Session(Record):
    session_id: str = Field(min_length=1)
    user_id: str = Field(min_length=1)
    title: str = ""
    session_type: str = SessionType.CHAT.value
    created_at: Timestamp = Field(default_factory=utcnow)
    updated_at: Timestamp = Field(default_factory=utcnow)
    message_count: int = Field(default=0, ge=0)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _aliases(cls, data: Any) -> Any:
        data = _alias(data, "session_id", "id")
        if isinstance(data, dict) and "session_type" not in data:
            # Seed panels recorded their type only in metadata.
            meta_type = (data.get("metadata") or {}).get("session_type")
            if isinstance(meta_type, str):
                data = {**data, "session_type": meta_type}
        return data

    @property
    def is_panel(self) -> bool:
        return self.session_type == SessionType.PANEL

    @property
    def participants(self) -> list[str]:
        value = self.metadata.get("participants") or []
        return [str(p) for p in value] if isinstance(value, list) else []

    @property
    def panel_type(self) -> str | None:
        value = self.metadata.get("panel_type")
        return str(value) if value is not None else None

    @property
    def source(self) -> str:
        """Where the session came from, as one word ("chatgpt", "claude"), or "" when it does
        not say: the original system wrote that word; an import records the conversation it
        came from (``{"format": "chatgpt", "id": ..., "title": ...}``), whose format is it."""
        value = self.metadata.get("source")
        if isinstance(value, dict):
            value = value.get("format")
        return value.strip() if isinstance(value, str) else ""


class UserProfile(Record):
    user_id: str = Field(min_length=1)
    username: str = ""
    created_at: Timestamp = Field(default_factory=utcnow)
    updated_at: Timestamp = Field(default_factory=utcnow)
    preferences: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @property
    def display_name(self) -> str:
        return self.username or self.user_id


class DocumentRecord(Record):
    doc_id: str = Field(min_length=1)
    filename: str = ""
    original_name: str = ""
    mime_type: str = "application/octet-stream"
    size: int = Field(default=0, ge=0)
    sha256: str | None = None
    uploaded_at: Timestamp = Field(default_factory=utcnow)
    uploaded_by: str | None = None
    analysis: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)


class SituationalContext(Record):
    summary: str = ""
    key_points: list[str] = Field(default_factory=list)
    entities: dict[str, list[str]] = Field(default_factory=dict)
    timestamp: Timestamp = Field(default_factory=utcnow)
    confidence: float = Field(default=0.0, ge=0.0, le=1.0)
    message_range: Any = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class Persona(Record):
    id: str = Field(min_length=1)
    name: str = ""
    description: str = ""
    traits: list[str] = Field(default_factory=list)
    expertise: list[str] = Field(default_factory=list)
    communication_style: str = ""
    is_global: bool = False
    owner_id: str | None = None
    created_at: Timestamp = Field(default_factory=utcnow)
    updated_at: Timestamp = Field(default_factory=utcnow)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _aliases(cls, data: Any) -> Any:
        data = _alias(data, "id", "persona_id")
        data = _alias(data, "expertise", "expertise_areas")
        if isinstance(data, dict):
            # The original system nested the style and values in behavioral_traits.
            behaviour = data.get("behavioral_traits")
            if isinstance(behaviour, dict):
                style = behaviour.get("communication_style")
                if "communication_style" not in data and isinstance(style, str):
                    data = {**data, "communication_style": style}
                values = behaviour.get("values")
                if "traits" not in data and isinstance(values, list):
                    data = {**data, "traits": [str(v) for v in values]}
        return data


class PanelInsight(Record):
    id: str = Field(default_factory=lambda: new_id("insight"), min_length=1)
    panel_id: str = Field(min_length=1)
    type: str = InsightType.SUMMARY.value
    content: str = ""
    supporting_messages: list[str] = Field(default_factory=list)
    consensus_level: float | None = Field(default=None, ge=0.0, le=1.0)
    created_at: Timestamp = Field(default_factory=utcnow)
    created_by: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class ArchiveInfo(Record):
    """``archive.json``: format version, creation time and settings overrides."""

    format_version: int = 1
    created_at: Timestamp = Field(default_factory=utcnow)
    settings: dict[str, Any] = Field(default_factory=dict)
