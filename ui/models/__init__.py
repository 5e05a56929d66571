"""Qt item models over the archive's records (no I/O in ``data()``)."""

from ui.models.lists import (
    DocumentListModel,
    DocumentRoles,
    PersonaListModel,
    PersonaRoles,
    SessionFilterProxy,
    SessionListModel,
    SessionRoles,
    UserListModel,
    UserRoles,
)
from ui.models.messages import MessageListModel, MessageRoles
from ui.models.search import HitRoles, SearchResultsModel

__all__ = [
    "DocumentListModel",
    "DocumentRoles",
    "HitRoles",
    "MessageListModel",
    "MessageRoles",
    "PersonaListModel",
    "PersonaRoles",
    "SearchResultsModel",
    "SessionFilterProxy",
    "SessionListModel",
    "SessionRoles",
    "UserListModel",
    "UserRoles",
]
