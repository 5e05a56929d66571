"""The conversation: messages as readable blocks (Markdown, code in monospace), collapsed
reasoning/tool output, attachments, a branch switcher, find (Ctrl+F) and copy."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Any

from PySide6.QtCore import (
    QEvent,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QPoint,
    QRect,
    QSize,
    Qt,
    Signal,
)
from PySide6.QtGui import (
    QAbstractTextDocumentLayout,
    QAction,
    QColor,
    QFont,
    QFontDatabase,
    QFontMetrics,
    QGuiApplication,
    QKeySequence,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPalette,
    QResizeEvent,
    QTextCharFormat,
    QTextCursor,
    QTextDocument,
    QTextFormat,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QMenu,
    QSizePolicy,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionComboBox,
    QStyleOptionViewItem,
    QStylePainter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ui.models.messages import MessageListModel, MessageRoles
from ui.tasks import loop_running

PAD = 12  # inside a message block
GAP = 6  # between blocks
OLDER_THRESHOLD = 300  # px from the top at which older messages are fetched
CACHE_SIZE = 400
Index = QModelIndex | QPersistentModelIndex


def is_dark(palette: QPalette) -> bool:
    return palette.color(QPalette.ColorRole.Base).lightness() < 128


def build_document(
    text: str, font: QFont, width: int, term: str = "", current: int = -1, dark: bool = False
) -> QTextDocument:
    """Markdown → a laid-out document: code in monospace on a tinted background, wrapped (never
    clipped), find matches highlighted (the current one stronger)."""
    doc = QTextDocument()
    doc.setDefaultFont(font)
    doc.setDocumentMargin(0)
    doc.setMarkdown(text)
    mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
    code_bg = QColor("#2b2f36" if dark else "#f1f3f5")
    block = doc.begin()
    while block.isValid():
        fmt = block.blockFormat()
        if fmt.hasProperty(QTextFormat.Property.BlockCodeFence) or fmt.nonBreakableLines():
            cursor = QTextCursor(block)
            fmt.setNonBreakableLines(False)  # wrap long code lines instead of clipping them
            fmt.setBackground(code_bg)
            cursor.setBlockFormat(fmt)
            cursor.select(QTextCursor.SelectionType.BlockUnderCursor)
            char = QTextCharFormat()
            char.setFontFamilies([mono.family()])
            char.setFontFixedPitch(True)
            cursor.mergeCharFormat(char)
        block = block.next()
    if term:
        cursor = QTextCursor(doc)
        n = 0
        while True:
            cursor = doc.find(term, cursor)
            if cursor.isNull():
                break
            mark = QTextCharFormat()
            mark.setBackground(QColor("#f97316" if n == current else "#fde047"))
            mark.setForeground(QColor("#111111"))
            cursor.mergeCharFormat(mark)
            n += 1
    doc.setTextWidth(max(50, width))
    return doc


def message_markdown(index: Index) -> str:
    text = str(index.data(MessageRoles.CONTENT) or "")
    hidden = str(index.data(MessageRoles.HIDDEN) or "")
    if hidden and index.data(MessageRoles.EXPANDED):
        quoted = "\n".join("> " + line for line in hidden.splitlines())
        text = f"{quoted}\n\n{text}" if text else quoted
    names = index.data(MessageRoles.ATTACHMENTS) or []
    if names:
        text += "\n\n" + "\n".join(f"- *attachment:* {name}" for name in names)
    return text


class MessageDelegate(QStyledItemDelegate):
    """Paints a message: author and time, then its Markdown; sizes follow the view's width."""

    def __init__(self, view: QListView) -> None:
        super().__init__(view)
        self._view = view
        self._docs: OrderedDict[tuple[Any, ...], QTextDocument] = OrderedDict()

    def clear_cache(self) -> None:
        self._docs.clear()

    def _width(self) -> int:
        return max(120, self._view.viewport().width() - 2 * PAD - 2 * GAP)

    def _header_height(self, option: QStyleOptionViewItem) -> int:
        return option.fontMetrics.height() + 6

    def _toggle_height(self, index: Index, option: QStyleOptionViewItem) -> int:
        return option.fontMetrics.height() + 4 if index.data(MessageRoles.HIDDEN) else 0

    def document(self, index: Index, option: QStyleOptionViewItem) -> QTextDocument:
        text = message_markdown(index)
        term = str(index.data(MessageRoles.FIND_TERM) or "")
        current = int(index.data(MessageRoles.CURRENT_MATCH) or -1) if term else -1
        dark = is_dark(option.palette)
        key = (index.data(MessageRoles.MESSAGE_ID), text, self._width(), term, current, dark)
        doc = self._docs.get(key)
        if doc is None:
            doc = build_document(text, option.font, self._width(), term, current, dark)
            self._docs[key] = doc
            if len(self._docs) > CACHE_SIZE:
                self._docs.popitem(last=False)
        else:
            self._docs.move_to_end(key)
        return doc

    def toggle_rect(self, index: Index, rect: QRect, option: QStyleOptionViewItem) -> QRect:
        top = rect.top() + GAP // 2 + PAD // 2 + self._header_height(option)
        return QRect(rect.left() + GAP + PAD, top, rect.width(), self._toggle_height(index, option))

    def sizeHint(self, option: QStyleOptionViewItem, index: Index) -> QSize:
        self.initStyleOption(option, index)
        doc = self.document(index, option)
        height = (
            self._header_height(option)
            + self._toggle_height(index, option)
            + int(doc.size().height())
            + PAD
            + GAP
        )
        return QSize(self._width(), height)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: Index) -> None:
        self.initStyleOption(option, index)
        painter.save()
        palette = option.palette
        dark = is_dark(palette)
        block = option.rect.adjusted(GAP, GAP // 2, -GAP, -GAP // 2)
        role = index.data(MessageRoles.ROLE)
        if role == "user":
            fill = QColor("#1e3a5f" if dark else "#eaf2ff")
        else:
            fill = palette.color(QPalette.ColorRole.Base)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setBrush(fill)
        if index.data(MessageRoles.TARGET):
            painter.setPen(QColor("#f97316"))
        elif selected:
            painter.setPen(palette.color(QPalette.ColorRole.Highlight))
        else:
            painter.setPen(palette.color(QPalette.ColorRole.Mid))
        painter.drawRoundedRect(block, 6, 6)
        inner = block.adjusted(PAD, PAD // 2, -PAD, 0)
        # header: author (bold) and time (muted)
        bold = QFont(option.font)
        bold.setBold(True)
        painter.setFont(bold)
        painter.setPen(palette.color(QPalette.ColorRole.Text))
        header = QRect(inner.left(), inner.top(), inner.width(), self._header_height(option))
        time = str(index.data(MessageRoles.TIME) or "")
        room = header.width() - option.fontMetrics.horizontalAdvance(time) - 12
        author = QFontMetrics(bold).elidedText(
            str(index.data(MessageRoles.AUTHOR) or ""), Qt.TextElideMode.ElideRight, max(20, room)
        )
        painter.drawText(header, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, author)
        painter.setFont(option.font)
        painter.setPen(palette.color(QPalette.ColorRole.PlaceholderText))
        painter.drawText(header, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, time)
        y = header.bottom() + 1
        hidden = str(index.data(MessageRoles.HIDDEN) or "")
        if hidden:
            expanded = bool(index.data(MessageRoles.EXPANDED))
            arrow = "▾ Hide" if expanded else "▸ Show"
            label = f"{arrow} reasoning / tool output ({len(hidden):,} characters)"
            painter.setPen(palette.color(QPalette.ColorRole.Link))
            toggle = QRect(inner.left(), y, inner.width(), self._toggle_height(index, option))
            painter.drawText(
                toggle, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, label
            )
            y = toggle.bottom() + 1
        doc = self.document(index, option)
        painter.translate(inner.left(), y)
        ctx = QAbstractTextDocumentLayout.PaintContext()
        ctx.palette = palette
        doc.documentLayout().draw(painter, ctx)
        painter.restore()


class MessageView(QListView):
    """The list of message blocks; loads older messages when scrolled near the top."""

    older_wanted = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setUniformItemSizes(False)
        self.setWordWrap(True)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setFrameShape(QListView.Shape.NoFrame)
        self.verticalScrollBar().setSingleStep(24)
        self.delegate = MessageDelegate(self)
        self.setItemDelegate(self.delegate)
        self.verticalScrollBar().valueChanged.connect(self._on_scrolled)

    def relayout(self) -> None:
        self.delegate.clear_cache()
        self.scheduleDelayedItemsLayout()

    def resizeEvent(self, event: QResizeEvent) -> None:
        if event.size().width() != event.oldSize().width():
            self.scheduleDelayedItemsLayout()
        super().resizeEvent(event)

    def _on_scrolled(self, value: int) -> None:
        if value < OLDER_THRESHOLD:
            self.older_wanted.emit()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        index = self.indexAt(event.position().toPoint())
        model = self.model()
        if index.isValid() and isinstance(model, MessageListModel):
            option = QStyleOptionViewItem()
            self.initViewItemOption(option)
            option.rect = self.visualRect(index)
            if self.delegate.toggle_rect(index, option.rect, option).contains(
                event.position().toPoint()
            ):
                model.toggle_expanded(index.row())
                self.delegate.sizeHintChanged.emit(index)
        super().mouseReleaseEvent(event)

    def first_visible(self) -> tuple[QPersistentModelIndex, int]:
        index = self.indexAt(QPoint(GAP * 2, GAP))
        if not index.isValid():
            return QPersistentModelIndex(), 0
        return QPersistentModelIndex(index), self.visualRect(index).top()

    def keep_anchor(self, anchor: QPersistentModelIndex, offset: int) -> None:
        """After rows were inserted above: put ``anchor`` back where it was on screen."""
        if not anchor.isValid():
            return
        self.executeDelayedItemsLayout()
        index = self.model().index(anchor.row(), 0)
        self.scrollTo(index, QAbstractItemView.ScrollHint.PositionAtTop)
        bar = self.verticalScrollBar()
        bar.setValue(bar.value() - offset)


class FindBar(QWidget):
    """Ctrl+F: a query box, previous/next and "n of m"."""

    closed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 2, 6, 2)
        self.edit = QLineEdit(self)
        self.edit.setPlaceholderText("Find in conversation")
        self.edit.setClearButtonEnabled(True)
        self.previous = QToolButton(self)
        self.previous.setText("▲")
        self.previous.setToolTip("Previous match (Shift+F3)")
        self.next = QToolButton(self)
        self.next.setText("▼")
        self.next.setToolTip("Next match (F3 or Enter)")
        self.count = QLabel("", self)
        self.count.setMinimumWidth(80)
        close = QToolButton(self)
        close.setText("✕")
        close.setToolTip("Close (Esc)")
        close.clicked.connect(self.hide_bar)
        for w in (self.edit, self.previous, self.next, self.count, close):
            layout.addWidget(w)
        self.edit.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.KeyPress and event.key() == Qt.Key.Key_Escape:  # type: ignore[attr-defined]
            self.hide_bar()
            return True
        return super().eventFilter(watched, event)

    def hide_bar(self) -> None:
        self.hide()
        self.closed.emit()


class ElidedLabel(QLabel):
    """One line of text, cut with "…" to the width it has whenever that changes (the
    branch switcher showing beside it, the window resized); the whole text is its tooltip."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("", parent)
        self._full = ""
        self.setMinimumWidth(50)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

    def full_text(self) -> str:
        return self._full

    def set_full_text(self, text: str) -> None:
        self._full = text
        self.setToolTip(text)
        self._elide()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        room = max(40, self.contentsRect().width())
        self.setText(self.fontMetrics().elidedText(self._full, Qt.TextElideMode.ElideRight, room))


class ElidedComboBox(QComboBox):
    """A combo box that shows its current text cut with "…" where it is narrower than the
    text (a plain one cuts it mid-letter), and the whole text as its tooltip."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.currentTextChanged.connect(self.setToolTip)

    def shown_text(self) -> str:
        """The current text as it is painted: cut to the room the style gives it."""
        option = QStyleOptionComboBox()
        self.initStyleOption(option)
        room = self.style().subControlRect(
            QStyle.ComplexControl.CC_ComboBox, option, QStyle.SubControl.SC_ComboBoxEditField, self
        )
        return self.fontMetrics().elidedText(
            self.currentText(), Qt.TextElideMode.ElideRight, room.width()
        )

    def paintEvent(self, _event: QPaintEvent) -> None:
        painter = QStylePainter(self)
        option = QStyleOptionComboBox()
        self.initStyleOption(option)
        painter.drawComplexControl(QStyle.ComplexControl.CC_ComboBox, option)
        option.currentText = self.shown_text()
        painter.drawControl(QStyle.ControlElement.CE_ComboBoxLabel, option)


class ConversationPane(QWidget):
    """Title, branch switcher, find bar and the message view over a :class:`MessageListModel`."""

    branch_chosen = Signal(str)
    older_loaded = Signal()

    def __init__(self, model: MessageListModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        top = QHBoxLayout()
        top.setContentsMargins(10, 6, 10, 6)
        top.setSpacing(10)
        self.title = ElidedLabel(self)
        title_font = self.title.font()
        title_font.setPointSizeF(title_font.pointSizeF() * 1.25)
        title_font.setBold(True)
        self.title.setFont(title_font)
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.status = QLabel("", self)
        self.status.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.branches = ElidedComboBox(self)  # its tooltip: the branch shown, whole
        # As wide as some 24 characters, not as its longest label (a branch is labelled by
        # its first words, which would squeeze the title to a few letters); the list it
        # opens is as wide as the labels (set_branches).
        self.branches.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.branches.setMinimumContentsLength(24)
        self.branches.hide()
        self.branches.activated.connect(self._on_branches_activated)
        top.addWidget(self.title, 1)
        top.addWidget(self.status)
        top.addWidget(self.branches)
        layout.addLayout(top)
        self.find_bar = FindBar(self)
        self.find_bar.hide()
        layout.addWidget(self.find_bar)
        self.view = MessageView(self)
        self.view.setModel(model)
        layout.addWidget(self.view, 1)
        self.placeholder = QLabel("Choose a conversation on the left.", self)
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        layout.addWidget(self.placeholder, 1)
        self.view.hide()
        self._older_task: asyncio.Task[None] | None = None
        self.view.older_wanted.connect(self._on_view_older_wanted)
        self.find_bar.edit.textChanged.connect(model.set_find_term)
        self.find_bar.edit.returnPressed.connect(lambda: self.find_step(True))
        self.find_bar.next.clicked.connect(lambda: self.find_step(True))
        self.find_bar.previous.clicked.connect(lambda: self.find_step(False))
        self.find_bar.closed.connect(self._on_find_closed)
        model.find_changed.connect(self._update_find_count)
        model.modelReset.connect(self._on_model_reset)
        self._add_actions()

    def _add_actions(self) -> None:
        def action(text: str, keys: Any, slot: Any) -> QAction:
            act = QAction(text, self)
            act.setShortcuts(keys if isinstance(keys, list) else [keys])
            act.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            act.triggered.connect(slot)
            self.addAction(act)
            return act

        self.find_action = action(
            "Find in conversation", QKeySequence.StandardKey.Find, self.show_find
        )
        action("Find next", QKeySequence.StandardKey.FindNext, lambda: self.find_step(True))
        action(
            "Find previous", QKeySequence.StandardKey.FindPrevious, lambda: self.find_step(False)
        )
        self.copy_action = QAction("Copy message", self.view)
        self.copy_action.setShortcut(QKeySequence.StandardKey.Copy)
        self.copy_action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        self.copy_action.triggered.connect(self.copy_current)
        self.view.addAction(self.copy_action)
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.customContextMenuRequested.connect(self._on_view_context_menu)

    # ------------------------------------------------------------ showing
    def show_session(self, title: str, status: str = "") -> None:
        self.title.set_full_text(title)
        self.status.setText(status)
        self.placeholder.hide()
        self.view.show()

    def show_placeholder(self, text: str) -> None:
        self.title.set_full_text("")
        self.status.setText("")
        self.branches.hide()
        self.view.hide()
        self.placeholder.setText(text)
        self.placeholder.show()

    def set_branches(self, leaves: list[tuple[str, str]], active: str | None) -> None:
        """``leaves``: (leaf id, label) of every branch; hidden for a straight conversation."""
        self.branches.clear()
        if len(leaves) < 2:
            self.branches.hide()
            return
        for n, (leaf, label) in enumerate(leaves, start=1):
            self.branches.addItem(f"Branch {n} of {len(leaves)}: {label}", leaf)
        current = self.branches.findData(active) if active else len(leaves) - 1
        self.branches.setCurrentIndex(max(0, current))
        popup = self.branches.view()
        widest = max(
            popup.fontMetrics().horizontalAdvance(self.branches.itemText(i))
            for i in range(self.branches.count())
        )
        popup.setMinimumWidth(
            widest
            + 4 * popup.fontMetrics().averageCharWidth()
            + popup.verticalScrollBar().sizeHint().width()
        )
        self.branches.show()

    def _on_branches_activated(self, row: int) -> None:
        leaf = self.branches.itemData(row)
        if leaf:
            self.branch_chosen.emit(str(leaf))

    def _on_model_reset(self) -> None:
        self.view.delegate.clear_cache()

    def scroll_to_end(self) -> None:
        self.view.executeDelayedItemsLayout()
        self.view.scrollToBottom()

    def scroll_to_message(self, message_id: str) -> bool:
        row = self.model.row_of(message_id)
        if row < 0:
            return False
        index = self.model.index(row, 0)
        self.view.executeDelayedItemsLayout()
        self.view.setCurrentIndex(index)
        self.view.scrollTo(index, QAbstractItemView.ScrollHint.PositionAtCenter)
        return True

    # ------------------------------------------------------------ lazy older
    def _on_view_older_wanted(self) -> None:
        if self._older_task is None and self.model.has_older and loop_running():
            self._older_task = asyncio.ensure_future(self.load_older())

    async def load_older(self) -> None:
        try:
            anchor, offset = self.view.first_visible()
            added = await self.model.fetch_older()
            if added:
                self.view.keep_anchor(anchor, offset)
                self.older_loaded.emit()
        finally:
            self._older_task = None

    # ------------------------------------------------------------ find & copy
    def show_find(self) -> None:
        self.find_bar.show()
        self.find_bar.edit.setFocus()
        self.find_bar.edit.selectAll()
        if self.find_bar.edit.text():
            self.model.set_find_term(self.find_bar.edit.text())

    def find_step(self, forward: bool) -> None:
        row = self.model.step_match(forward)
        if row >= 0:
            self.view.scrollTo(
                self.model.index(row, 0), QAbstractItemView.ScrollHint.PositionAtCenter
            )

    def _update_find_count(self) -> None:
        matches = len(self.model.matches)
        term = self.model.find_term
        if not term:
            self.find_bar.count.setText("")
        elif not matches:
            loaded = " (loaded messages)" if self.model.has_older else ""
            self.find_bar.count.setText(f"no matches{loaded}")
        else:
            self.find_bar.count.setText(f"{self.model.current_index + 1} of {matches}")
        current = self.model.current_match
        if current is not None:
            row = self.model.row_of(current.message_id)
            self.view.scrollTo(
                self.model.index(row, 0), QAbstractItemView.ScrollHint.PositionAtCenter
            )

    def _on_find_closed(self) -> None:
        self.model.set_find_term("")
        self.view.setFocus()

    def copy_current(self) -> None:
        index = self.view.currentIndex()
        if index.isValid():
            QGuiApplication.clipboard().setText(message_markdown(index))

    def _on_view_context_menu(self, pos: QPoint) -> None:
        index = self.view.indexAt(pos)
        if not index.isValid():
            return
        self.view.setCurrentIndex(index)
        menu = QMenu(self)
        menu.addAction(self.copy_action)
        if index.data(MessageRoles.HIDDEN):
            expanded = index.data(MessageRoles.EXPANDED)
            toggle = menu.addAction(
                "Hide reasoning / tool output" if expanded else "Show reasoning / tool output"
            )
            toggle.triggered.connect(lambda: self._toggle(index))
        menu.popup(self.view.viewport().mapToGlobal(pos))

    def _toggle(self, index: QModelIndex) -> None:
        self.model.toggle_expanded(index.row())
        self.view.delegate.sizeHintChanged.emit(index)
