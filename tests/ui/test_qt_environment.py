"""The Qt stack the GUI issue builds on works here and in CI: offscreen platform, real fonts,
the qasync loop, screenshots."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

pytest.importorskip("PySide6")

from PySide6.QtGui import QFontInfo, QFontMetrics
from PySide6.QtWidgets import QApplication, QLabel


def test_offscreen_platform_with_real_fonts(qtbot: object, tmp_path: Path) -> None:
    app = QApplication.instance()
    assert app is not None and app.platformName() == "offscreen"
    font = QApplication.font()
    assert QFontMetrics(font).inFont("A"), "no usable font: apt-get install fonts-dejavu-core"
    assert QFontInfo(font).family()
    label = QLabel("Flatchat ✓ Résumé")
    qtbot.addWidget(label)  # type: ignore[attr-defined]
    label.resize(240, 40)
    label.show()
    image = label.grab().toImage()
    assert image.save(str(tmp_path / "label.png"))
    dark = sum(1 for x in range(image.width()) for y in range(image.height())
               if image.pixelColor(x, y).lightness() < 100)
    assert dark > 50


def test_qasync_loop_runs_a_coroutine(qapp: QApplication) -> None:
    import qasync

    loop = qasync.QEventLoop(qapp)
    try:
        async def work() -> int:
            await asyncio.sleep(0.01)
            return await asyncio.to_thread(sum, range(10))

        assert loop.run_until_complete(asyncio.wait_for(work(), 5)) == 45
    finally:
        loop.close()
