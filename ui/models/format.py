"""Small display helpers shared by models and views (no I/O)."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont, QIcon, QPainter, QPixmap

SOURCE_COLOURS = {
    "chatgpt": "#10a37f",
    "claude": "#d97757",
    "openwebui": "#3b82f6",
    "jan": "#8b5cf6",
    "flatchat": "#64748b",
}


def when(value: dt.datetime | None, now: dt.datetime | None = None) -> str:
    """A short local time: today's time, this year's date, or a full date."""
    if value is None:
        return ""
    local = value.astimezone()
    now = (now or dt.datetime.now().astimezone()).astimezone()
    if local.date() == now.date():
        return local.strftime("%H:%M")
    if local.year == now.year:
        return local.strftime("%d %b %H:%M")
    return local.strftime("%Y-%m-%d %H:%M")


def size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


@lru_cache(maxsize=64)
def badge(text: str, colour: str | None = None, px: int = 20) -> QIcon:
    """A round badge with the first letter of ``text`` (source icons, persona avatars)."""
    colour = colour or SOURCE_COLOURS.get(text.casefold()) or _colour_for(text)
    pix = QPixmap(px, px)
    pix.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pix)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setBrush(QColor(colour))
    painter.setPen(Qt.PenStyle.NoPen)
    painter.drawEllipse(QRectF(0, 0, px, px))
    font = QFont()
    font.setPixelSize(int(px * 0.55))
    font.setBold(True)
    painter.setFont(font)
    painter.setPen(QColor("white"))
    painter.drawText(QRectF(0, 0, px, px), Qt.AlignmentFlag.AlignCenter, (text[:1] or "?").upper())
    painter.end()
    return QIcon(pix)


def _colour_for(text: str) -> str:
    palette = ["#0ea5e9", "#f59e0b", "#ef4444", "#22c55e", "#a855f7", "#ec4899", "#14b8a6"]
    return palette[sum(map(ord, text)) % len(palette)]
