"""Users: ``users/<user_id>/profile.json``."""

from __future__ import annotations

import os
from typing import Any

from storage.base import ArchiveBase, threaded
from storage.errors import AlreadyExistsError, NotFoundError
from storage.events import UserChanged
from storage.files import make_dirs, remove_tree, write_model
from storage.ids import validate_id
from storage.models import UserProfile, utcnow


class UsersMixin(ArchiveBase):
    @threaded
    def create_user(
        self,
        user_id: str,
        profile: dict[str, Any] | None = None,
        *,
        username: str | None = None,
        preferences: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> UserProfile:
        """Create a user. ``profile`` may hold any profile fields (``name`` is read as the
        username, as the original system did); unknown keys are kept."""
        validate_id(user_id, "user")
        fields: dict[str, Any] = dict(profile or {})
        if "username" not in fields and "name" in fields:
            fields["username"] = fields["name"]
        if username is not None:
            fields["username"] = username
        if preferences is not None:
            fields["preferences"] = preferences
        if metadata is not None:
            fields["metadata"] = metadata
        fields["user_id"] = user_id
        now = utcnow()
        fields.setdefault("created_at", now)
        fields.setdefault("updated_at", now)
        user = UserProfile.model_validate(fields)
        make_dirs(self.layout.users_dir)
        with self.locks.user(user_id):
            folder = self.layout.user_dir(user_id)
            if (folder / "profile.json").exists():
                raise AlreadyExistsError("user", user_id, folder)
            make_dirs(folder)
            write_model(folder / "profile.json", user)
        self._emit(UserChanged(user_id))
        return user

    @threaded
    def get_user(self, user_id: str) -> UserProfile:
        return self._read_profile(user_id)

    get_user_profile = get_user

    @threaded
    def user_exists(self, user_id: str) -> bool:
        return self._user_exists(user_id)

    @threaded
    def update_user(
        self,
        user_id: str,
        *,
        username: str | None = None,
        preferences: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> UserProfile:
        """Update a profile; ``preferences`` and ``metadata`` are merged key by key."""
        with self.locks.user(user_id):
            current = self._read_profile(user_id)
            update: dict[str, Any] = {"updated_at": utcnow()}
            if username is not None:
                update["username"] = username
            if preferences:
                update["preferences"] = {**current.preferences, **preferences}
            if metadata:
                update["metadata"] = {**current.metadata, **metadata}
            user = UserProfile.model_validate({**current.to_dict(), **_jsonable(update)})
            write_model(self.layout.profile(user_id), user)
        self._emit(UserChanged(user_id))
        return user

    update_user_profile = update_user

    @threaded
    def list_users(self) -> list[UserProfile]:
        """Every user folder that holds a profile or at least one session, by user id."""
        users_dir = self.layout.users_dir
        if not users_dir.is_dir():
            return []
        found = []
        for entry in sorted(os.scandir(users_dir), key=lambda e: e.name):
            if entry.name.startswith(".") or not entry.is_dir(follow_symlinks=False):
                continue
            try:
                validate_id(entry.name, "user")
            except ValueError:
                continue  # not ours (e.g. a sync tool's folder); verify reports it
            if os.path.exists(os.path.join(entry.path, "profile.json")) or _has_session(entry.path):
                found.append(self._read_profile(entry.name))
        return found

    @threaded
    def delete_user(self, user_id: str) -> None:
        """Delete a user and everything they own. The folder is first renamed aside
        atomically, so a crash never leaves a half-deleted user visible."""
        with self.locks.user(user_id):
            folder = self.layout.user_dir(user_id)
            if not folder.is_dir():
                raise NotFoundError("user", user_id, self.layout.users_dir)
            remove_tree(folder)
        self._session_cache.clear()
        self._emit(UserChanged(user_id, deleted=True))


def _has_session(folder: str) -> bool:
    with os.scandir(folder) as entries:
        return any(
            entry.is_dir() and os.path.exists(os.path.join(entry.path, "session.json"))
            for entry in entries
        )


def _jsonable(update: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in update.items()}
