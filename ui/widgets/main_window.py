"""The main window: welcome page or archive browser (sidebar, conversation, details), search
panel, drag-and-drop ingestion, import/export, job progress, errors shown non-modally."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

import shiboken6
from PySide6.QtCore import QEvent, QModelIndex, QObject, QPoint, QSettings, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDesktopServices,
    QDragEnterEvent,
    QDropEvent,
    QKeySequence,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDockWidget,
    QFileDialog,
    QInputDialog,
    QLabel,
    QListView,
    QMainWindow,
    QMenu,
    QMessageBox,
    QSplitter,
    QStackedWidget,
    QWidget,
)

from storage import (
    Archive,
    DocumentRecord,
    NotAnArchiveError,
    Persona,
    Session,
    StorageError,
)
from storage.errors import (
    LockTimeoutError,
    NothingImportedError,
    ReadOnlyArchiveError,
    SettingsError,
)
from storage.events import (
    Change,
    DocumentsChanged,
    MessagesAppended,
    MessagesRewritten,
    PersonasChanged,
    SessionChanged,
    UserChanged,
)
from storage.files import stamp_signature
from storage.importers import detect_export
from storage.ingest.job import IngestCancelled
from storage.jobs import JobCancelled, JobControl
from storage.search.indexer import RefreshReport
from storage.search.results import Hit
from storage.worker import run_in_worker
from ui import export
from ui.dialogs.persona import PersonaDialog
from ui.dialogs.report import ResultDialog, report_counts, show_error
from ui.dialogs.settings import SettingsDialog
from ui.errors import advice, headline
from ui.models.lists import (
    DocumentListModel,
    PersonaRoles,
    SessionRoles,
    UserRoles,
    document_name,
    is_pinned,
    tags_of,
)
from ui.models.messages import MessageListModel
from ui.tasks import TaskRunner, loop_running
from ui.widgets.conversation import ConversationPane
from ui.widgets.details import DetailsPane
from ui.widgets.jobs import JobIndicator
from ui.widgets.search import SearchPanel
from ui.widgets.sidebar import DOCUMENTS_TAB, Sidebar, Span
from ui.widgets.welcome import WelcomePage

log = logging.getLogger(__name__)
DEFAULT_USER = "me"  # who an import into an archive without users belongs to
POLL_MS = 2000  # external changes: how often the change stamp is looked at
FULL_POLL_EVERY = 15  # polls: compare the listing even without a new stamp (30 s)
# Full looks: have the worker check the index for writers that do not stamp (sync tools) even
# when the listing shown did not change (5 min). The check costs ~0.7 s of CPU in a worker.
INDEX_CHECK_EVERY = 10
MAX_RECENT = 8
PREPARE_SEARCH_MS = 300  # after an archive opens (its first paint): search made ready
ARCHIVE_WRITING_JOBS = ("import", "ingest")  # worker jobs whose changes arrive as batches
EXPORT_SUFFIXES = {".zip", ".json", ".jsonl"}  # dropped files sniffed for a chat export
RECENT_KEY = "recent_archives"


EXPORT_FORMATS = {"Markdown (.md)": ".md", "HTML (.html)": ".html", "JSON (.json)": ".json"}


def hit_span(hit: Hit) -> Span | None:
    """The characters of a document hit's chunk in the document's extracted text."""
    if hit.char_start is None or hit.char_end is None:
        return None
    return hit.char_start, hit.char_end


def hit_terms(hit: Hit) -> list[str]:
    """The words a hit matched, as its snippet highlights them."""
    return [hit.snippet[start:end] for start, end in hit.highlights if end > start]


def safe_file_name(title: str) -> str:
    return "".join(c if c.isalnum() or c in " -_" else "_" for c in title)[:60].strip()


class MainWindow(QMainWindow):
    archive_opened = Signal(str)
    session_shown = Signal(str)
    error_shown = Signal(str)
    index_updated = Signal(object)  # RefreshReport

    def __init__(
        self,
        settings: QSettings | None = None,
        sample_path: Callable[[], Path] | None = None,
        parent: QWidget | None = None,
        job_runner: Callable[..., Coroutine[Any, Any, Any]] = run_in_worker,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Flatchat")
        self.resize(1280, 800)
        self.settings = settings
        self._sample_path = sample_path
        self.archive: Archive | None = None
        self.user_id: str | None = None
        self.session: Session | None = None
        self.tasks = TaskRunner(self)
        self.tasks.failed.connect(self.report_error)
        self.errors: list[str] = []  # what was shown, newest last (tests and the log read it)
        self.last_dialog: QWidget | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._polling = False
        self._polls = 0
        self._full_looks = 0
        # Why the periodic index check stopped for the open archive (a read-only archive
        # cannot be indexed): None while it runs.
        self._index_checks_stopped: str | None = None
        self._stamp: list[int] | None = None
        self.index_report: RefreshReport | None = None
        self.settings_dialog: SettingsDialog | None = None
        self._drops = 0
        self._worker_jobs = 0  # worker processes of ours writing to the archive now
        self._search_prepared: Archive | None = None
        # A search hit on a document attached to a session: selected in the details (with
        # its passage) once they have loaded the session's documents.
        self._doc_hit: Hit | None = None
        # The hits listed were searched while the index was being updated: searched again
        # when the update has indexed something (a new archive's first one: everything).
        self._search_outdated = False
        # The status bar's text when it said a search had failed: cleared by the next search
        # that succeeds, unless something else has been said since.
        self._search_error: str | None = None
        # The details pane is shown beside the search panel for a document hit's passage
        # (the panel otherwise replaces it): hidden again for the next hit without one.
        self._details_for_hit = False
        self._details_unchecked = False  # ... and View → Details pane was unchecked before
        self._prepare_later: asyncio.TimerHandle | None = None
        self._index_pending = False  # another process wrote while a job ran: index after it
        # An index update was cancelled, failed or could not start: searches here do not
        # rescan, so the next search in the panel starts one (index_soon).
        self._index_incomplete = False
        # Bulk jobs run in a worker process (storage.worker.run_here runs them in this one).
        self.job_runner = job_runner
        self._stale_sessions: dict[str, None] = {}  # changed by a worker process, in order

        self.stack = QStackedWidget(self)
        self.welcome = WelcomePage(self.stack)
        self.stack.addWidget(self.welcome)
        self.browser = QSplitter(Qt.Orientation.Horizontal, self.stack)
        self.sidebar = Sidebar(self.browser)
        self.messages = MessageListModel(self)
        self.conversation = ConversationPane(self.messages, self.browser)
        self.details = DetailsPane(self.browser)
        self.browser.addWidget(self.sidebar)
        self.browser.addWidget(self.conversation)
        self.browser.addWidget(self.details)
        self.browser.setStretchFactor(0, 0)
        self.browser.setStretchFactor(1, 1)
        self.browser.setStretchFactor(2, 0)
        self.browser.setSizes([320, 680, 280])
        self.stack.addWidget(self.browser)
        self.setCentralWidget(self.stack)

        self.search_panel = SearchPanel(self)
        self.search_dock = QDockWidget("Search", self)
        self.search_dock.setObjectName("search")
        self.search_dock.setWidget(self.search_panel)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.search_dock)
        self.search_dock.hide()
        # At 1280 px, conversation + details + search do not all fit: search replaces details.
        self.search_dock.visibilityChanged.connect(self._on_search_dock_visibility_changed)
        self.search_panel.hit_activated.connect(self._on_search_hit_activated)
        self.search_panel.search_started.connect(self._on_search_panel_search_started)
        self.search_panel.search_failed.connect(self._on_search_panel_search_failed)
        self.search_panel.results_shown.connect(self._on_search_panel_results_shown)

        self.status_label = QLabel("", self)
        self.statusBar().addWidget(self.status_label, 1)
        self.jobs = JobIndicator(self)
        self.jobs.job_finished.connect(self._on_job_finished)
        self.statusBar().addPermanentWidget(self.jobs)

        self._poll = QTimer(self)
        self._poll.setInterval(POLL_MS)
        self._poll.timeout.connect(self._on_poll_timeout)

        self._build_menus()
        self._connect()
        self.setAcceptDrops(True)
        for view in (
            self.sidebar.document_view.viewport(),
            self.conversation.view.viewport(),
            self.details.documents_view.viewport(),
        ):
            view.setAcceptDrops(True)
            view.installEventFilter(self)
        self.welcome.set_recent(self.recent_archives())
        self.welcome.sample_button.setVisible(sample_path is not None)

    # ================================================================ setup
    def _build_menus(self) -> None:
        bar = self.menuBar()
        file = bar.addMenu("&File")

        def act(menu: QMenu, text: str, slot: Callable[[], Any], keys: Any = None) -> QAction:
            action = menu.addAction(text)
            if keys is not None:
                action.setShortcuts(keys if isinstance(keys, list) else [QKeySequence(keys)])
            action.triggered.connect(slot)
            return action

        act(file, "&Open archive folder…", self.choose_archive, QKeySequence.StandardKey.Open)
        act(file, "&New archive…", self.choose_new_archive, QKeySequence.StandardKey.New)
        if self._sample_path is not None:
            act(file, "Open the &sample archive", self.open_sample)
        self.recent_menu = file.addMenu("&Recent archives")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        file.addSeparator()
        self.import_action = act(file, "&Import chat export…", self.choose_import, "Ctrl+I")
        self.add_docs_action = act(file, "&Add documents…", self.choose_documents, "Ctrl+D")
        self.export_action = act(file, "&Export conversation…", self.choose_export, "Ctrl+E")
        act(file, "Export &selected conversations…", self.choose_export_selection, "Ctrl+Shift+E")
        file.addSeparator()
        act(file, "&Quit", self.close, QKeySequence.StandardKey.Quit)
        edit = bar.addMenu("&Edit")
        edit.addAction(self.conversation.find_action)
        act(edit, "&Search everything", self.show_search, ["Ctrl+K", "Ctrl+Shift+F"])
        act(edit, "Filter &sessions", self._focus_filter, "Ctrl+L")
        view = bar.addMenu("&View")
        details = self.details_toggle = view.addAction("&Details pane")
        details.setCheckable(True)
        details.setChecked(True)
        details.setShortcut(QKeySequence("Ctrl+Shift+D"))
        details.toggled.connect(self.details.setVisible)
        view.addAction(self.search_dock.toggleViewAction())
        act(view, "&Reload", self.reload, QKeySequence.StandardKey.Refresh)
        self.settings_action = act(edit, "Se&ttings…", self.show_settings, "Ctrl+,")
        help_menu = bar.addMenu("&Help")
        act(help_menu, "&About Flatchat", self.show_about)

    def _connect(self) -> None:
        sb = self.sidebar
        self.welcome.open_requested.connect(self.choose_archive)
        self.welcome.create_requested.connect(self.choose_new_archive)
        self.welcome.sample_requested.connect(self.open_sample)
        self.welcome.recent_chosen.connect(self.start_open)
        sb.user_combo.currentIndexChanged.connect(self._on_user_combo_changed)
        for view in (sb.session_view, sb.panel_view):
            view.selectionModel().currentChanged.connect(self._on_session_current_changed)
            view.customContextMenuRequested.connect(lambda pos, v=view: self._session_menu(v, pos))
        sb.sessions.load_failed.connect(self._on_sessions_load_failed)
        sb.panels.load_failed.connect(self._on_sessions_load_failed)
        sb.document_view.activated.connect(self._on_document_activated)
        sb.document_view.selectionModel().currentChanged.connect(self._on_document_current_changed)
        sb.open_document.clicked.connect(lambda: self._on_document_button(delete=False))
        sb.delete_document.clicked.connect(lambda: self._on_document_button(delete=True))
        sb.document_view.customContextMenuRequested.connect(self._document_menu)
        sb.persona_view.activated.connect(self._on_persona_activated)
        self.details.documents_view.selectionModel().currentChanged.connect(
            self._on_details_document_current_changed
        )
        sb.new_persona.clicked.connect(lambda: self.edit_persona(None))
        self.conversation.branch_chosen.connect(self._on_branch_chosen)
        self.index_updated.connect(self._on_index_updated)

    # ================================================================ errors & status
    def report_error(self, what: str, exc: BaseException) -> None:
        """An error the user can act on: status bar + a non-modal box with details."""
        text = f"{headline(exc)}: {exc}"
        repeated = bool(self.errors) and self.errors[-1] == text
        self.errors.append(text)
        self.status_label.setText(text)
        if not repeated:  # the same problem found by two loaders gets one box
            self.last_dialog = show_error(self, exc, what)
        self.error_shown.emit(text)

    def notify(self, text: str) -> None:
        self.status_label.setText(text)

    def run(self, key: str, coro: Coroutine[Any, Any, Any], what: str = "") -> asyncio.Task[Any]:
        return self.tasks.start(key, coro, what)

    # ================================================================ archives
    def recent_archives(self) -> list[str]:
        if self.settings is None:
            return []
        value = self.settings.value(RECENT_KEY, [])
        if isinstance(value, str):
            return [value]
        return [str(v) for v in value] if isinstance(value, list) else []

    def _remember(self, path: str) -> None:
        if self.settings is None:
            return
        recent = [path] + [p for p in self.recent_archives() if p != path]
        self.settings.setValue(RECENT_KEY, recent[:MAX_RECENT])
        self.welcome.set_recent(self.recent_archives())

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        for path in self.recent_archives():
            action = self.recent_menu.addAction(path)
            action.triggered.connect(lambda _=False, p=path: self.start_open(p))
        self.recent_menu.setEnabled(bool(self.recent_archives()))

    def _folder_dialog(self, title: str, slot: Callable[[str], object]) -> None:
        dialog = QFileDialog(self, title)
        dialog.setFileMode(QFileDialog.FileMode.Directory)
        dialog.setOption(QFileDialog.Option.ShowDirsOnly, True)
        dialog.fileSelected.connect(slot)
        self.last_dialog = dialog
        dialog.open()

    def choose_archive(self) -> None:
        self._folder_dialog("Open archive folder", self.start_open)

    def choose_new_archive(self) -> None:
        self._folder_dialog(
            "Choose an empty folder for the new archive",
            lambda path: self.run("archive", self.open_archive(path, create=True), "Creating"),
        )

    def open_sample(self) -> None:
        if self._sample_path is None:
            return
        try:
            path = self._sample_path()
        except FileNotFoundError as exc:
            self.welcome.message.setText(str(exc))
            return
        self.start_open(str(path))

    def start_open(self, path: str) -> None:
        self.run("archive", self.open_archive(path), f"Opening {path}")

    async def open_archive(self, path: str | Path, *, create: bool = False) -> bool:
        """Open ``path``; a folder that is no archive gets an offer to create one there
        (nothing is written unless the user says yes)."""
        self.notify(f"Opening {path}…")
        try:
            archive = await Archive.open(path, create=create)
        except NotAnArchiveError as exc:
            self.notify(str(exc))
            if not create:
                self._offer_create(str(path), exc)
            else:
                self.report_error("Creating the archive", exc)
            return False
        await self.set_archive(archive)
        self._remember(str(archive.root))
        self.archive_opened.emit(str(archive.root))
        return True

    def _offer_create(self, path: str, exc: NotAnArchiveError) -> None:
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle("Not a Flatchat archive")
        box.setText(f"{path} is not a Flatchat archive.")
        box.setInformativeText(f"{exc}\n\nCreate a new, empty archive in this folder?")
        box.setStandardButtons(QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No)
        box.setDefaultButton(QMessageBox.StandardButton.No)

        def done(result: int) -> None:
            if result == QMessageBox.StandardButton.Yes:
                self.run("archive", self.open_archive(path, create=True), "Creating the archive")

        box.finished.connect(done)
        self.last_dialog = box
        box.open()
        self.welcome.message.setText(str(exc))

    async def set_archive(self, archive: Archive) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        # Searches here never rescan the archive (10,000 sessions hold the GIL ~0.1 s): other
        # processes' writes are indexed by a worker when the poll notices them.
        if hasattr(archive, "rescan_on_search"):
            archive.rescan_on_search = False
        # Before the last archive closes: its search (and page) in flight is cancelled, its
        # hits go, and what is typed in the panel is searched in this one.
        self.search_panel.set_search(getattr(archive, "search", None), None)
        self.search_panel.set_page_size(archive.settings.search.page_size)
        self.search_panel.set_mode(archive.settings.search.default_mode)
        if self.archive is not archive:
            self.index_report = None  # the last archive's
        if self.archive is not None and self.archive is not archive:
            await self.archive.close()
        self.archive = archive
        self.user_id = None  # the last archive's: chosen below (none if it has no users)
        self.session = None
        self._doc_hit = None
        self._search_outdated = False
        self.sidebar.clear()
        self._index_incomplete = False  # the update started below is this archive's
        loop = asyncio.get_running_loop()

        def listener(change: Change) -> None:  # runs in the writing thread
            loop.call_soon_threadsafe(self._on_own_change, archive, change)

        self._unsubscribe = archive.changes.subscribe(listener)
        self.setWindowTitle(f"Flatchat — {archive.root}")
        self.stack.setCurrentWidget(self.browser)
        self.messages.clear()
        self.conversation.show_placeholder("Choose a conversation on the left.")
        self.details.clear()
        users = await archive.list_users()
        if self.archive is not archive:
            return
        # Filling the combo selects its first row: not a user's choice, and select_user
        # below loads the lists once (twice, the listings of 10,000 sessions ran twice).
        self.sidebar.user_combo.blockSignals(True)
        self.sidebar.users.reset(users)
        self.sidebar.user_combo.setCurrentIndex(0 if users else -1)
        self.sidebar.user_combo.blockSignals(False)
        if not users:
            self.conversation.show_placeholder(
                "This archive is empty. Import a chat export (File → Import) to fill it."
            )
            self.notify(f"Opened {archive.root} (no users yet)")
            return
        await self.select_user(users[0].user_id)
        self._stamp = await asyncio.to_thread(stamp_signature, archive.root)  # indexed on open
        self._index_checks_stopped = None
        self._poll.start()
        self.notify(f"Opened {archive.root}")
        self.start_index_update()
        # Loading the model holds the GIL in stretches of ~20 ms: not while the window paints
        # for the first time, but right after (or as soon as the search panel opens), before
        # the user starts anything heavy.
        if self._prepare_later is not None:
            self._prepare_later.cancel()
        self._prepare_later = asyncio.get_running_loop().call_later(
            PREPARE_SEARCH_MS / 1000, self.prepare_search, archive
        )

    def prepare_search(self, archive: Archive) -> None:
        """Open the indexes and load the embedder in the background, once per archive."""
        if archive is not self.archive or self._search_prepared is archive:
            return
        self._search_prepared = archive
        if hasattr(archive, "prepare_search"):
            self.run("prepare-search", archive.prepare_search(), "Preparing search")

    def reload(self) -> None:
        if self.archive is not None:
            self.run("archive", self.set_archive(self.archive), "Reloading")

    # ================================================================ user
    def _on_user_combo_changed(self, row: int) -> None:
        user_id = self.sidebar.users.index(row, 0).data(UserRoles.USER_ID)
        if user_id and user_id != self.user_id:
            self.run("user", self.select_user(str(user_id)), "Loading the user")

    async def select_user(self, user_id: str) -> None:
        archive = self.archive
        if archive is None:
            return
        self.user_id = user_id
        self.session = None
        self.messages.clear()
        self.details.clear()
        self.conversation.show_placeholder("Choose a conversation on the left.")
        self.sidebar.show_problem("")
        self.search_panel.set_user(user_id)  # "This user" hits follow; others stay
        sb = self.sidebar
        sb.sessions.set_source(archive, user_id)
        sb.panels.set_source(archive, user_id)
        row = sb.users.row_of(user_id)
        if row >= 0 and sb.user_combo.currentIndex() != row:
            sb.user_combo.blockSignals(True)
            sb.user_combo.setCurrentIndex(row)
            sb.user_combo.blockSignals(False)
        await asyncio.gather(
            sb.sessions.load(),
            sb.panels.load(),
            self._load_documents(),
            self._load_personas(),
        )
        self._show_listing_problems(report=True)

    def _show_listing_problems(self, report: bool = False) -> None:
        """Sessions left out of the list because their session.json is damaged: named next
        to the list (and once in a message box); the other sessions stay usable."""
        if self.archive is None or self.user_id is None:
            return
        problems = self.archive.listing_problems.get(self.user_id, [])
        if not problems:
            self.sidebar.show_problem("")
            return
        first = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        self.sidebar.show_problem(f"{headline(first)}: {first}{more}")
        if report:
            self.report_error("Listing sessions", first)

    async def _load_list(
        self, what: str, fetch: Callable[[Archive, str], Coroutine[Any, Any, Any]], model: Any
    ) -> bool:
        """Fill one of the user's lists; an error is shown and the rest of the window stays."""
        if self.archive is None or self.user_id is None:
            return False
        user = self.user_id
        try:
            records = await fetch(self.archive, user)
        except StorageError as exc:
            self.report_error(what, exc)
            return False
        if user != self.user_id:
            return False
        model.reset(records)
        return True

    async def _load_documents(self) -> None:
        await self._load_list(
            "Listing documents", lambda a, u: a.list_documents(u), self.sidebar.documents
        )

    async def _load_personas(self) -> None:
        loaded = await self._load_list(
            "Listing personas", lambda a, u: a.list_personas(u), self.sidebar.personas
        )
        if loaded:
            self.messages.set_names(self.sidebar.personas.names())

    def _on_sessions_load_failed(self, exc: BaseException) -> None:
        hint = advice(exc)
        self.sidebar.show_problem(f"{headline(exc)}: {exc}" + (f"\n{hint}" if hint else ""))
        self.report_error("Listing sessions", exc)

    # ================================================================ session
    def _on_session_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        session_id = current.data(SessionRoles.SESSION_ID)
        if session_id and (self.session is None or self.session.session_id != session_id):
            self._doc_hit = None  # the user chose another session: no hit's document to select
            self.run("session", self.open_session(str(session_id)), "Opening the conversation")

    async def open_session(self, session_id: str, around: str | None = None) -> bool:
        """Show a session (scrolled to message ``around`` if given) and its details."""
        archive, user = self.archive, self.user_id
        if archive is None or user is None:
            return False
        try:
            session = await archive.get_session(user, session_id)
        except StorageError as exc:
            self.session = None
            self.messages.clear()
            self.conversation.show_placeholder(f"{headline(exc)}\n\n{exc}\n\n{advice(exc)}".strip())
            self.report_error("Opening the conversation", exc)
            return False
        self.session = session
        self.conversation.show_session(session.title or "(untitled)", "loading…")
        self.conversation.set_branches([], None)
        self.details.show_session(session)
        await self.messages.open(archive, session, around=around)
        if self.session is not session:
            return False
        self._update_conversation_status()
        if around is not None and self.conversation.scroll_to_message(around):
            pass
        else:
            self.conversation.scroll_to_end()
        self.session_shown.emit(session.session_id)
        self.run("details", self._load_details(session), "Loading details")
        self.run("branches", self._load_branches(session, around), "Loading branches")
        return True

    def _update_conversation_status(self) -> None:
        m = self.messages
        if m.branch_leaf is not None:
            status = f"{m.rowCount()} messages on this branch"
        elif m.rowCount() < m.total:
            status = f"{m.total:,} messages ({m.rowCount():,} loaded)"
        else:
            status = f"{m.total:,} messages"
        self.conversation.status.setText(status)

    async def _load_details(self, session: Session) -> None:
        archive = self.archive
        if archive is None:
            return
        user, sid = session.user_id, session.session_id
        problems: list[str] = []

        async def safe(call: Callable[[], Coroutine[Any, Any, Any]], default: Any) -> Any:
            try:
                return await call()
            except StorageError as exc:
                problems.append(str(exc))
                return default

        context = await safe(lambda: archive.get_context(user, sid), None)
        history = await safe(lambda: archive.get_context_history(user, sid), [])
        docs = await safe(lambda: archive.list_documents(user, sid), [])
        insights: list[Any] = []
        participants: list[str] = []
        if session.is_panel:
            insights = await safe(lambda: archive.get_panel_insights(user, sid), [])
            names = self.sidebar.personas.names()
            participants = [names.get(p, p) for p in session.participants]
        if self.session is not session:
            return
        self.details.show_session(
            session,
            message_count=self.messages.total,
            context=context,
            history=history,
            documents=docs,
            participants=participants,
            insights=insights,
            problem="; ".join(problems),
        )
        hit = self._doc_hit
        if hit is not None and hit.session_id == sid and hit.user_id == user:
            self._doc_hit = None
            self.select_attached_hit(session, hit)

    def select_attached_hit(self, session: Session, hit: Hit) -> bool:
        """Select the hit's document in the details and show its passage."""
        return self._select_document_hit(
            hit,
            self.details.documents,
            self.details.documents_view,
            "attached to this session",
            "attached-doc",
            lambda record: self.preview_attached(record, session, hit=hit),
        )

    def _select_document_hit(
        self,
        hit: Hit,
        model: DocumentListModel,
        view: QAbstractItemView,
        where: str,
        job: str,
        preview: Callable[[DocumentRecord], Coroutine[Any, Any, Any]],
    ) -> bool:
        """Select a document hit's row in ``view`` and show its passage (``preview``, run as
        ``job``); False, and said, when the document is no longer ``where`` it was."""
        row = model.row_of(hit.doc_id)
        record = model.record(row)
        if record is None:
            self.notify(f"“{hit.title or hit.doc_id}” is no longer {where}")
            return False
        view.setCurrentIndex(model.index(row, 0))
        view.scrollTo(view.currentIndex())
        # Started after (so instead of) the preview the selection started: with the span.
        self.run(job, preview(record), "Reading the document's text")
        return True

    async def _load_branches(self, session: Session, around: str | None) -> None:
        archive = self.archive
        if archive is None:
            return
        leaves = await archive.list_leaves(session.user_id, session.session_id)
        if self.session is not session or len(leaves) < 2:
            return
        labels = []
        for leaf in leaves:
            message = await archive.get_message(session.user_id, session.session_id, leaf)
            text = " ".join(message.content.split())
            labels.append((leaf, text[:40] + ("…" if len(text) > 40 else "")))
        active = session.metadata.get("active_leaf_id")
        if self.session is not session:
            return
        await self.messages.show_branch(str(active) if active else None)
        self.conversation.set_branches(labels, self.messages.branch_leaf)
        self._update_conversation_status()
        if not (around and self.conversation.scroll_to_message(around)):
            self.conversation.scroll_to_end()

    def _on_branch_chosen(self, leaf: str) -> None:
        self.run("branch", self.switch_branch(leaf), "Switching branch")

    async def switch_branch(self, leaf: str) -> None:
        session, archive = self.session, self.archive
        if session is None or archive is None:
            return
        await self.messages.show_branch(leaf)
        self._update_conversation_status()
        self.conversation.scroll_to_end()
        try:  # remembering the choice is a write: a read-only archive still shows the branch
            self.session = await archive.set_active_leaf(session.user_id, session.session_id, leaf)
        except StorageError as exc:
            self.notify(f"Showing the branch, but it cannot be remembered: {exc}")

    def select_session_in_list(self, session_id: str) -> bool:
        for view, proxy, tab in (
            (self.sidebar.session_view, self.sidebar.session_proxy, 0),
            (self.sidebar.panel_view, self.sidebar.panel_proxy, 1),
        ):
            for row in range(proxy.rowCount()):
                index = proxy.index(row, 0)
                if index.data(SessionRoles.SESSION_ID) == session_id:
                    self.sidebar.tabs.setCurrentIndex(tab)
                    view.setCurrentIndex(index)
                    view.scrollTo(index)
                    return True
        return False

    # ================================================================ session actions
    def _session_at(self, view: QListView, pos: QPoint) -> Session | None:
        record = view.indexAt(pos).data(SessionRoles.RECORD)
        return record if isinstance(record, Session) else None

    def _session_menu(self, view: QListView, pos: QPoint) -> None:
        session = self._session_at(view, pos)
        if session is None:
            return
        menu = QMenu(self)
        menu.addAction("&Rename…", lambda: self.ask_rename(session))
        menu.addAction("Un&pin" if is_pinned(session) else "&Pin", lambda: self.toggle_pin(session))
        menu.addAction("&Tags…", lambda: self.ask_tags(session))
        menu.addAction("&Export…", lambda: self.choose_export(session))
        selected = len(view.selectionModel().selectedRows())
        if selected > 1:
            menu.addAction(f"Export {selected} &selected…", self.choose_export_selection)
        menu.addSeparator()
        menu.addAction("&Delete…", lambda: self.ask_delete(session))
        self.last_dialog = menu
        menu.popup(view.viewport().mapToGlobal(pos))

    def _ask_text(self, title: str, label: str, value: str, slot: Callable[[str], object]) -> None:
        dialog = QInputDialog(self)
        dialog.setWindowTitle(title)
        dialog.setLabelText(label)
        dialog.setTextValue(value)
        dialog.textValueSelected.connect(slot)
        self.last_dialog = dialog
        dialog.open()

    def ask_rename(self, session: Session) -> None:
        self._ask_text(
            "Rename conversation",
            "Title:",
            session.title,
            lambda title: self.run("write", self.update_session(session, title=title), "Renaming"),
        )

    def ask_tags(self, session: Session) -> None:
        def apply(text: str) -> None:
            tags = [t.strip().lstrip("#") for t in text.split(",") if t.strip()]
            self.run("write", self.update_session(session, metadata={"tags": tags}), "Tagging")

        self._ask_text("Tags", "Tags (comma separated):", ", ".join(tags_of(session)), apply)

    def toggle_pin(self, session: Session) -> None:
        pinned = not is_pinned(session)
        self.run("write", self.update_session(session, metadata={"pinned": pinned}), "Pinning")

    async def update_session(self, session: Session, **changes: Any) -> None:
        if self.archive is None:
            return
        updated = await self.archive.update_session(session.user_id, session.session_id, **changes)
        self._show_updated_session(updated)

    def _show_updated_session(self, session: Session) -> None:
        model = self.sidebar.panels if session.is_panel else self.sidebar.sessions
        model.upsert(session)
        if self.session is not None and self.session.session_id == session.session_id:
            self.session = session
            self.conversation.show_session(session.title or "(untitled)")
            self._update_conversation_status()

    def ask_delete(self, session: Session) -> None:
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle("Delete conversation")
        box.setText(f"Delete “{session.title or session.session_id}”?")
        box.setInformativeText(
            f"Its {session.message_count} messages and documents are removed from the archive."
        )
        box.setStandardButtons(QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No)
        box.setDefaultButton(QMessageBox.StandardButton.No)

        def done(result: int) -> None:
            if result == QMessageBox.StandardButton.Yes:
                self.run("write", self.delete_session(session), "Deleting")

        box.finished.connect(done)
        self.last_dialog = box
        box.open()

    async def delete_session(self, session: Session) -> None:
        if self.archive is None:
            return
        await self.archive.delete_session(session.user_id, session.session_id)
        self._forget_session(session.session_id)

    def _forget_session(self, session_id: str) -> None:
        self.sidebar.sessions.discard(session_id)
        self.sidebar.panels.discard(session_id)
        if self.session is not None and self.session.session_id == session_id:
            self.session = None
            self.messages.clear()
            self.details.clear()
            self.conversation.show_placeholder("The conversation was deleted.")

    # ================================================================ export
    def choose_export(self, session: Session | None = None) -> None:
        session = session or self.session
        if session is None:
            self.notify("Choose a conversation to export first.")
            return
        dialog = QFileDialog(self, "Export conversation")
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setNameFilters(["Markdown (*.md)", "HTML (*.html)", "JSON (*.json)"])
        dialog.setDefaultSuffix("md")
        dialog.selectFile(f"{safe_file_name(session.title) or session.session_id}.md")

        def chosen(path: str) -> None:
            self.run("export", self.export_session(session, Path(path)), "Exporting")

        dialog.fileSelected.connect(chosen)
        self.last_dialog = dialog
        dialog.open()

    async def export_session(self, session: Session, path: Path) -> Path:
        """Write ``session`` (its active branch if it has branches) as .md, .html or .json."""
        archive = self.archive
        if archive is None:
            raise RuntimeError("no archive open")
        suffix = path.suffix.lower() or ".md"
        if suffix not in (".md", ".html", ".htm", ".json"):
            path, suffix = path.with_suffix(".md"), ".md"
        leaves = await archive.list_leaves(session.user_id, session.session_id)
        if len(leaves) > 1:
            messages = await archive.get_branch(session.user_id, session.session_id)
        else:
            messages = await archive.get_all_messages(session.user_id, session.session_id)
        text = export.render(suffix, session, messages, self.messages.author)
        await asyncio.to_thread(path.write_text, text, encoding="utf-8")
        self.notify(f"Exported {len(messages)} messages to {path}")
        return path

    def selected_sessions(self) -> list[Session]:
        """The sessions selected in the list on the current tab (several with Ctrl/Shift)."""
        view = self.sidebar.panel_view if self.sidebar.tabs.currentIndex() == 1 else None
        view = view or self.sidebar.session_view
        rows = sorted(view.selectionModel().selectedRows(), key=lambda i: i.row())
        found = [i.data(SessionRoles.RECORD) for i in rows]
        return [s for s in found if isinstance(s, Session)]

    def choose_export_selection(self) -> None:
        """Export every selected session: the format first, then the folder."""
        sessions = self.selected_sessions()
        if not sessions:
            self.notify("Select conversations to export first (Ctrl/Shift+click for several).")
            return
        dialog = QInputDialog(self)
        dialog.setWindowTitle(f"Export {len(sessions)} conversation(s)")
        dialog.setLabelText("Format:")
        dialog.setComboBoxItems(list(EXPORT_FORMATS))
        dialog.textValueSelected.connect(
            lambda choice: self._folder_dialog(
                "Export into folder",
                lambda folder: self.run(
                    "export",
                    self.export_sessions(sessions, Path(folder), EXPORT_FORMATS[choice]),
                    "Exporting",
                ),
            )
        )
        self.last_dialog = dialog
        dialog.open()

    async def export_sessions(
        self, sessions: Sequence[Session], folder: Path, suffix: str
    ) -> list[Path]:
        """Write each session into ``folder`` as ``<title><suffix>`` (never overwriting one
        written by this export: a second session of the same title gets its id)."""
        written: list[Path] = []
        taken: set[str] = set()
        for n, session in enumerate(sessions, 1):
            name = safe_file_name(session.title) or session.session_id
            if name.casefold() in taken:
                name = f"{name} ({session.session_id})"
            taken.add(name.casefold())
            self.notify(f"Exporting {n} of {len(sessions)}: {session.title or session.session_id}")
            written.append(await self.export_session(session, folder / f"{name}{suffix}"))
        self.notify(f"Exported {len(written)} conversation(s) to {folder}")
        return written

    # ================================================================ documents
    def _document_at(self, index: QModelIndex) -> DocumentRecord | None:
        return self.sidebar.documents.record(index.row()) if index.isValid() else None

    def _current_document(self) -> DocumentRecord | None:
        return self._document_at(self.sidebar.document_view.currentIndex())

    def _on_document_activated(self, index: QModelIndex) -> None:
        record = self._document_at(index)
        if record is not None:
            self.run("open-doc", self.open_document(record), "Opening the document")

    def _on_document_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        record = self._document_at(current)
        if record is None:
            self.sidebar.show_document(None)
        else:
            self.run("preview", self.preview_document(record), "Reading the document's text")

    async def preview_document(
        self,
        record: DocumentRecord,
        session_id: str | None = None,
        *,
        hit: Hit | None = None,
    ) -> None:
        """Show the text extracted at ingest (read in a worker thread by the archive), with
        the passage of ``hit`` (a search hit on it) marked and in view."""
        if self.archive is None or self.user_id is None:
            return
        self.sidebar.preview_label.setText(f"{document_name(record)}: reading…")
        text = await self.archive.read_document_text(self.user_id, record.doc_id, session_id)
        if self._current_document() == record:
            name = document_name(record)
            if hit is None:
                self.sidebar.show_document(name, text)
            else:
                self.sidebar.show_document(name, text, hit_span(hit), hit.page, hit_terms(hit))

    def _on_details_document_current_changed(
        self, current: QModelIndex, _previous: QModelIndex
    ) -> None:
        record = self.details.documents.record(current.row()) if current.isValid() else None
        if record is None:
            self.details.show_document(None)
        elif self.session is not None:
            self.run(
                "attached-doc",
                self.preview_attached(record, self.session),
                "Reading the document's text",
            )

    async def preview_attached(
        self,
        record: DocumentRecord,
        session: Session,
        *,
        hit: Hit | None = None,
    ) -> None:
        """The text of a document attached to ``session``, in the details (the passage of
        ``hit`` marked, as in :meth:`preview_document`)."""
        if self.archive is None:
            return
        text = await self.archive.read_document_text(
            session.user_id, record.doc_id, session.session_id
        )
        current = self.details.documents.record(self.details.documents_view.currentIndex().row())
        if self.session is session and current == record:
            name = document_name(record)
            if hit is None:
                self.details.show_document(name, text)
            else:
                self.details.show_document(name, text, hit_span(hit), hit.page, hit_terms(hit))

    async def open_document(self, record: DocumentRecord, session_id: str | None = None) -> None:
        """Open the stored original with the system's viewer."""
        if self.archive is None or self.user_id is None:
            return
        path = await self.archive.document_path(self.user_id, record.doc_id, session_id)
        if not QDesktopServices.openUrl(QUrl.fromLocalFile(str(path))):
            self.notify(f"No program is set up to open {path}")

    def _document_menu(self, pos: QPoint) -> None:
        view = self.sidebar.document_view
        record = self._document_at(view.indexAt(pos))
        if record is None:
            return
        menu = QMenu(self)
        menu.addAction("&Open original", lambda: self.run("open-doc", self.open_document(record)))
        menu.addAction("&Delete…", lambda: self.ask_delete_document(record))
        self.last_dialog = menu
        menu.popup(view.viewport().mapToGlobal(pos))

    def _on_document_button(self, delete: bool) -> None:
        record = self._current_document()
        if record is None:
            return
        if delete:
            self.ask_delete_document(record)
        else:
            self.run("open-doc", self.open_document(record), "Opening the document")

    def ask_delete_document(self, record: DocumentRecord) -> QMessageBox:
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle("Delete document")
        box.setText(f"Delete “{document_name(record)}” from the archive?")
        box.setInformativeText("The stored file, its extracted text and its search entries go.")
        box.setStandardButtons(QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No)
        box.setDefaultButton(QMessageBox.StandardButton.No)

        def done(result: int) -> None:
            if result == QMessageBox.StandardButton.Yes:
                self.run("write", self.delete_document(record), "Deleting the document")

        box.finished.connect(done)
        self.last_dialog = box
        box.open()
        return box

    async def delete_document(self, record: DocumentRecord, session_id: str | None = None) -> None:
        if self.archive is None or self.user_id is None:
            return
        await self.archive.delete_document(self.user_id, record.doc_id, session_id)
        self.sidebar.documents.discard(record.doc_id)
        if self._current_document() is None:
            self.sidebar.show_document(None)
        self.notify(f"Deleted {document_name(record)}")

    # ================================================================ personas
    def _on_persona_activated(self, index: QModelIndex) -> None:
        record = index.data(PersonaRoles.RECORD)
        if isinstance(record, Persona):
            self.edit_persona(record)

    def edit_persona(self, persona: Persona | None) -> PersonaDialog:
        dialog = PersonaDialog(persona, self)

        def save() -> None:
            record = dialog.persona()
            owner = None if persona is not None and persona.is_global else self.user_id
            self.run("write", self.save_persona(record, owner), "Saving the persona")

        dialog.accepted.connect(save)
        self.last_dialog = dialog
        dialog.open()
        return dialog

    async def save_persona(self, persona: Persona, user_id: str | None) -> None:
        if self.archive is None:
            return
        saved = await self.archive.save_persona(persona, user_id)
        self.sidebar.personas.upsert(saved)
        self.messages.set_names(self.sidebar.personas.names())

    # ================================================================ search
    def show_search(self) -> None:
        if self.archive is not None:
            self.prepare_search(self.archive)
        self.search_dock.show()
        self.search_dock.raise_()
        self.search_panel.focus_query()

    def _on_search_dock_visibility_changed(self, shown: bool) -> None:
        if shiboken6.isValid(self.details_toggle):  # also emitted while the window is torn down
            self._show_details_for_hit(False)
            self.details.setVisible(not shown and self.details_toggle.isChecked())

    def _show_details_for_hit(self, shown: bool) -> None:
        """A document hit's passage is in the details pane: shown, beside the search panel
        too (the user asked for that passage); ``shown`` False: the pane goes back to what
        the search panel and View → Details pane say (the next hit is not in it)."""
        if shown and self.details.isHidden():
            self._details_for_hit = True
            self._details_unchecked = not self.details_toggle.isChecked()
            self.details_toggle.setChecked(True)  # the menu says it is shown
            self.details.show()
        elif not shown and self._details_for_hit:
            self._details_for_hit = False
            if self._details_unchecked:
                self.details_toggle.setChecked(False)
            self.details.setVisible(
                not self.search_dock.isVisible() and self.details_toggle.isChecked()
            )

    # ================================================================ search index
    def start_index_update(self, rebuild: bool = False) -> None:
        """Bring the search index up to date (or rebuild it) as a status-bar job."""
        if self.archive is not None:
            what = "Rebuilding the search index" if rebuild else "Updating the search index"
            self.run("index", self.update_index(self.archive, rebuild), what)

    def check_index(self) -> None:
        """The periodic index check (see _poll_changes): quiet, and never in the way of
        another index task (a rebuild the user asked for may not have started yet)."""
        archive = self.archive
        if (
            archive is None
            or self._index_checks_stopped is not None
            or self.jobs.control is not None
            or self.tasks.running("index")
        ):
            return
        self.run("index-check", self._check_index(archive), "Checking the search index")

    async def _check_index(self, archive: Archive) -> None:
        """A failure here has been reported when the archive opened (the first update is
        not quiet): it is logged, not shown again every few minutes. A read-only archive
        cannot be indexed: the checks stop until an archive is opened."""
        try:
            await self.update_index(archive, quiet=True)
        except ReadOnlyArchiveError as exc:
            log.warning("periodic index checks stop: %s", exc)
            if archive is self.archive:
                self._index_checks_stopped = str(exc)
        except (StorageError, OSError) as exc:
            log.warning("periodic index check of %s failed: %s", archive.root, exc)

    async def update_index(
        self, archive: Archive, rebuild: bool = False, quiet: bool = False
    ) -> RefreshReport | None:
        """On open: index what changed since the last time, in the background (a job the
        user starts takes precedence and cancels it). ``rebuild``: throw the index away and
        build it again (Settings). Cancelled or failed, the rest is indexed in the background
        when the user next searches (searches here do not rescan the archive themselves).
        ``quiet``: the periodic check (see _poll_changes), which gives way to any job."""
        name = "Rebuilding the search index" if rebuild else "Updating the search index"
        if quiet and self.jobs.control is not None:
            return None  # the next check comes soon enough
        if self.jobs.busy:
            self._index_incomplete = archive is self.archive
            self.notify(f"{name}: another job is running; wait for it or cancel it.")
            return None
        job = "reindex" if rebuild else "refresh_index"
        report: RefreshReport | None = None
        try:
            report = await self.jobs.run(
                name,
                lambda control: self.in_worker(archive, job, control),
                background=not rebuild,
                quiet=quiet,
            )
        except JobCancelled:
            self.notify(
                f"{name}: cancelled. Searches use what is indexed; the rest is indexed in the "
                "background at your next search."
            )
            return None
        finally:
            if report is None and archive is self.archive:
                self._index_incomplete = True  # cancelled or failed (the error is shown)
        assert report is not None  # the job returned: neither cancelled nor failed
        if archive is self.archive:
            self.index_report = report
            self.index_updated.emit(report)
            changed = bool(report.sources_indexed or report.rebuilt)
            if changed:
                self.notify(
                    f"Search index up to date: {report.sources_indexed:,} sources "
                    f"({report.documents_added:,} entries) indexed in {report.seconds:.1f} s"
                )
            if changed and self._search_outdated:
                self.search_panel.refresh()  # searched before (or while) it was indexed
            elif changed:
                self.search_panel.archive_changed()
            self._search_outdated = False
        return report

    def _focus_filter(self) -> None:
        self.sidebar.tabs.setCurrentIndex(0)
        self.sidebar.filter.setFocus()

    def _on_search_hit_activated(self, hit: Hit) -> None:
        self.run("session", self.open_hit(hit), "Opening the search hit")

    async def open_hit(self, hit: Hit) -> bool:
        """Open the hit's session scrolled to (and highlighting) its message; a document
        hit's passage is selected in the document's text."""
        if self.archive is None:
            return False
        if hit.user_id != self.user_id:
            await self.select_user(hit.user_id)
        attached = hit.session_id is not None and hit.kind == "document" and bool(hit.doc_id)
        # Shown before the session loads: laid out by the time the passage is scrolled to.
        self._show_details_for_hit(attached)
        if hit.session_id is None:  # a document in the user's library
            return self.show_library_hit(hit)
        self._doc_hit = hit if attached else None
        shown = await self.open_session(hit.session_id, around=hit.message_id)
        if shown:
            self.select_session_in_list(hit.session_id)
        return shown

    def show_library_hit(self, hit: Hit) -> bool:
        """Select the hit's document on the Documents tab, its passage in the preview."""
        sb = self.sidebar
        sb.tabs.setCurrentIndex(DOCUMENTS_TAB)
        return self._select_document_hit(
            hit,
            sb.documents,
            sb.document_view,
            "in the library",
            "preview",
            lambda record: self.preview_document(record, hit=hit),
        )

    def _on_search_panel_search_failed(self, exc: BaseException) -> None:
        """Logged and shown in the panel already; here as every other error the user can
        see (status bar, a box once, ``errors``)."""
        self.report_error("Searching", exc)
        self._search_error = self.status_label.text()

    def _on_search_panel_results_shown(self, _count: int) -> None:
        """Search works again: the status bar stops saying it failed (if it still does)."""
        if self._search_error is not None and self.status_label.text() == self._search_error:
            self.status_label.setText("")
        self._search_error = None

    # ================================================================ drops, ingest, import
    @staticmethod
    def dropped_paths(event: QDropEvent | QDragEnterEvent) -> list[str]:
        mime = event.mimeData()
        if not mime.hasUrls():
            return []
        return [url.toLocalFile() for url in mime.urls() if url.isLocalFile() and url.toLocalFile()]

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if self.archive is not None and self.dropped_paths(event):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = self.dropped_paths(event)
        if not paths:
            event.ignore()
            return
        event.acceptProposedAction()
        self.drop(paths, None)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind in (QEvent.Type.DragEnter, QEvent.Type.DragMove):
            if self.archive is not None and self.dropped_paths(event):  # type: ignore[arg-type]
                event.acceptProposedAction()  # type: ignore[attr-defined]
                return True
        elif kind == QEvent.Type.Drop:
            paths = self.dropped_paths(event)  # type: ignore[arg-type]
            if paths:
                event.acceptProposedAction()  # type: ignore[attr-defined]
                library = watched is self.sidebar.document_view.viewport()
                session = self.session.session_id if not library and self.session else None
                # Onto the documents list a file is a document, whatever it holds.
                self.drop(paths, session, exports=not library)
                return True
        return super().eventFilter(watched, event)

    def drop(self, paths: Sequence[str], session_id: str | None, *, exports: bool = True) -> None:
        """Files dropped on the window: chat exports are imported, the rest ingested."""
        self._drops += 1
        self.run(f"drop:{self._drops}", self.handle_drop(list(paths), session_id, exports))

    async def handle_drop(self, paths: list[str], session_id: str | None, exports: bool) -> None:
        """Each dropped ZIP or JSON file that is a chat export (ChatGPT, Claude, Open WebUI,
        Jan, Flatfile) is imported with its report; everything else becomes documents of
        the session (or the library). A ZIP unsafe to unpack is refused with the reason."""
        imports: list[str] = []
        refused: set[str] = set()
        if exports:
            for path in paths:
                if Path(path).suffix.lower() not in EXPORT_SUFFIXES:
                    continue
                try:
                    if await detect_export(path):
                        imports.append(path)
                except StorageError as exc:  # e.g. a zip-slip ZIP: neither import nor store it
                    refused.add(path)
                    self.report_error(f"Importing {Path(path).name}", exc)
        for path in imports:
            await self.import_path(path)
        documents = [p for p in paths if p not in imports and p not in refused]
        if documents:
            await self.ingest_paths(documents, session_id)

    def ingest(self, paths: Sequence[str], session_id: str | None) -> None:
        """Ingest dropped files into the session (or the user's library)."""
        self.run("ingest", self.ingest_paths(list(paths), session_id), "Adding documents")

    async def ingest_paths(self, paths: list[str], session_id: str | None) -> Any:
        archive, user = self.archive, self.user_id
        if archive is None or user is None:
            self.notify("Open an archive and choose a user before adding documents.")
            return None
        if self.jobs.busy:
            self.notify("Another job is running; wait for it or cancel it.")
            return None
        where = "this conversation" if session_id else "your library"
        note = ""
        try:
            report = await self.jobs.run(
                f"Adding {len(paths):,} item(s) to {where}",
                lambda control: self.in_worker(
                    archive, "ingest", control, paths=paths, user_id=user, session_id=session_id
                ),
            )
        except IngestCancelled as exc:  # what finished before the cancel is kept
            report, note = exc.report, f"Cancelled: {exc}"
        self.notify(f"Added documents to {where}: {report_counts(report)}")
        self._show_result("Added documents", report, note)
        await self._load_documents()
        if self.session is not None:
            self.run("details", self._load_details(self.session))
        return report

    def choose_documents(self) -> None:
        dialog = QFileDialog(self, "Add documents")
        dialog.setFileMode(QFileDialog.FileMode.ExistingFiles)
        session = self.session.session_id if self.session else None
        dialog.filesSelected.connect(lambda paths: self.ingest(paths, session))
        self.last_dialog = dialog
        dialog.open()

    def choose_import(self) -> None:
        dialog = QFileDialog(self, "Import a chat export (ZIP, JSON or a folder)")
        dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
        dialog.fileSelected.connect(
            lambda path: self.run("import", self.import_path(path), "Importing")
        )
        self.last_dialog = dialog
        dialog.open()

    async def import_path(self, path: str) -> Any:
        archive, user = self.archive, self.user_id
        if archive is None:
            self.notify("Open an archive before importing.")
            return None
        if self.jobs.busy:
            self.notify("Another job is running; wait for it or cancel it.")
            return None
        if user is None:
            user = DEFAULT_USER
            if not await archive.user_exists(user):
                await archive.create_user(user)
        note = ""
        try:
            report: Any = await self.jobs.run(
                f"Importing {Path(path).name}",
                lambda control: self.in_worker(
                    archive, "import", control, path=str(path), user_id=user
                ),
            )
        except NothingImportedError as exc:  # not a success, but the report says why
            report, note = exc.report, str(exc)
            self.report_error("Importing", exc)
        except JobCancelled as exc:  # conversations finished before the cancel are kept
            report, note = getattr(exc, "report", None), f"Cancelled: {exc}"
        if report is not None:
            self._show_result(f"Import report — {Path(path).name}", report, note)
        if self.user_id != user:
            await self._reload_users()
            await self.select_user(user)
        # Otherwise the worker's change batches have updated the rows already.
        return report

    def _show_result(self, title: str, result: Any, note: str = "") -> None:
        dialog = ResultDialog(title, result, self, note)
        self.last_dialog = dialog
        dialog.show()

    # ================================================================ worker jobs
    async def in_worker(
        self, archive: Archive, job: str, control: JobControl, **kwargs: Any
    ) -> Any:
        """Run a bulk job (import, ingest, indexing) in a worker process: its CPU work never
        holds this process's GIL, so the window keeps painting. What it changes arrives in
        batches and updates only the rows concerned."""
        loop = asyncio.get_running_loop()

        def changed(batch: list[Change]) -> None:  # the worker's helper thread
            if not loop.is_closed():
                loop.call_soon_threadsafe(self._on_worker_changes, archive, batch)

        writes = job in ARCHIVE_WRITING_JOBS  # index jobs write only .index/ (no stamp)
        self._worker_jobs += writes
        try:
            return await self.job_runner(
                archive.root, job, control, changed, settings=archive.settings, **kwargs
            )
        finally:
            self._worker_jobs -= writes
            if writes and archive is self.archive:
                self.search_panel.archive_changed()  # and indexed (an import indexes at its end)

    def _on_worker_changes(self, archive: Archive, batch: list[Change]) -> None:
        """A worker's changes: sessions refreshed together (an import touches hundreds),
        everything else as if this process had made it."""
        if archive is not self.archive:
            return
        # The job indexes what it wrote before it ends (and then says so): meanwhile no page
        # is read at an offset counted before.
        self.search_panel.archive_changed(settled=False)
        for change in batch:
            updated = isinstance(change, MessagesAppended | MessagesRewritten) or (
                isinstance(change, SessionChanged) and not change.deleted
            )
            if not updated:
                self._on_change(change)
            elif getattr(change, "user_id", None) == self.user_id:
                self._stale_sessions[change.session_id] = None  # type: ignore[attr-defined]
        if self._stale_sessions and not self.tasks.running("stale-sessions"):
            self.run("stale-sessions", self._refresh_stale_sessions(), "Updating the lists")

    async def _refresh_stale_sessions(self) -> None:
        """Read the sessions a worker changed and update (or add) just their rows."""
        while self._stale_sessions and self.archive is not None and self.user_id is not None:
            archive, user = self.archive, self.user_id
            ids = list(self._stale_sessions)
            self._stale_sessions.clear()
            fresh = await archive.get_sessions(user, ids)  # one trip for the whole batch
            if archive is not self.archive or user != self.user_id:
                return
            for model in (self.sidebar.sessions, self.sidebar.panels):
                model.apply_diff(model.diff_changed(fresh))
            current = self.session.session_id if self.session is not None else None
            match = next((s for s in fresh if s.session_id == current), None)
            if match is not None:
                self.session = match
                await self._sync_open_session()

    # ================================================================ changes
    def _on_own_change(self, archive: Archive, change: Change) -> None:
        """A write of this process's: the next search indexes it, so the hits listed (any
        user's) are read again; then the lists follow."""
        if archive is not self.archive:
            return
        self.search_panel.archive_changed()
        self._on_change(change)

    def _on_change(self, change: Change) -> None:
        """A change announced by the archive (from a worker thread, hopped to this loop)."""
        if self.archive is None:
            return
        user = getattr(change, "user_id", None)
        if isinstance(change, UserChanged):
            self.run("users", self._reload_users(), "Listing users")
            return
        if user is not None and user != self.user_id:
            return
        if isinstance(change, SessionChanged):
            if change.deleted:
                self._forget_session(change.session_id)
            else:
                self.run(f"s:{change.session_id}", self._refresh_session(change.session_id))
        elif isinstance(change, MessagesAppended | MessagesRewritten):
            self.run(f"s:{change.session_id}", self._refresh_session(change.session_id))
        elif isinstance(change, DocumentsChanged):
            self.run("documents", self._load_documents(), "Listing documents")
            if self.session is not None and change.session_id == self.session.session_id:
                self.run("details", self._load_details(self.session))
        elif isinstance(change, PersonasChanged):
            self.run("personas", self._load_personas(), "Listing personas")

    async def _reload_users(self) -> None:
        if self.archive is None:
            return
        users = await self.archive.list_users()
        current = self.user_id
        self.sidebar.user_combo.blockSignals(True)
        self.sidebar.users.reset(users)
        row = self.sidebar.users.row_of(current)
        self.sidebar.user_combo.setCurrentIndex(max(0, row))
        self.sidebar.user_combo.blockSignals(False)
        if current is None and users:
            await self.select_user(users[0].user_id)

    async def _refresh_session(self, session_id: str) -> None:
        if self.archive is None or self.user_id is None:
            return
        try:
            session = await self.archive.get_session(self.user_id, session_id)
        except StorageError:
            return  # deleted meanwhile: the deletion's own change removes it
        self._show_updated_session(session)
        if self.session is not None and self.session.session_id == session_id:
            await self._sync_open_session()

    async def _sync_open_session(self) -> None:
        follow = not self.messages.has_newer
        bar = self.conversation.view.verticalScrollBar()
        at_bottom = bar.value() >= bar.maximum() - 4
        before = self.messages.rowCount()
        await self.messages.sync_tail()
        self._update_conversation_status()
        if follow and at_bottom and self.messages.rowCount() != before:
            self.conversation.scroll_to_end()

    def _on_poll_timeout(self) -> None:
        if not loop_running():
            return  # events processed outside the loop (shutting down): nothing to check
        if not self._polling and self.archive is not None and self.user_id is not None:
            self._polling = True
            self.run("poll", self._poll_changes(), "Checking for changes")

    async def _poll_changes(self) -> None:
        """Every POLL_MS: one ``stat`` (in a thread) says whether anything was written since
        the last look; only then is the listing compared (also in a thread)."""
        try:
            archive = self.archive
            if archive is None:
                return
            if self._worker_jobs:
                # Our worker moves the stamp all the time and sends what it changed; comparing
                # 10,000 sessions every poll besides would compete with it for the CPU. A write
                # by another process meanwhile is found by the first poll after the job.
                return
            stamp = await asyncio.to_thread(stamp_signature, archive.root)
            self._polls += 1
            if stamp == self._stamp and self._polls % FULL_POLL_EVERY:
                return  # nothing written (a full look now and then: writers that do not stamp)
            # Another process wrote (not just us: our own writes are indexed by the search):
            # index it in a worker, since searches here do not rescan.
            others = stamp != self._stamp and archive.others_wrote(self._stamp, stamp)
            full_look = stamp == self._stamp
            self._stamp = stamp
            changed = await self._refresh_listing()
            if others:
                self.index_soon()
                # It may have indexed what it wrote itself (the update then has nothing to
                # say): the hits listed are read again either way.
                self.search_panel.archive_changed()
            elif full_look:
                # Writers that do not stamp (a sync tool bringing files from another machine,
                # an editor): the worker's refresh finds them by the files' sizes and times.
                # At once when the listing shows a change, and every few minutes otherwise
                # (a file changed alone, or another user's).
                self._full_looks += 1
                if changed or self._full_looks % INDEX_CHECK_EVERY == 0:
                    self.check_index()
        finally:
            self._polling = False

    def _on_search_panel_search_started(self, _query: str) -> None:
        """The first search after an index update was cancelled or failed starts another, in
        the background; later searches do not (unless that one is cancelled too). A search
        while the index is being updated is run again when the update is done."""
        if self.archive is None:
            return
        if self._index_incomplete:
            self._index_incomplete = False
            self.index_soon()
            self._search_outdated = True
        elif self.index_report is None or self.tasks.running("index"):
            self._search_outdated = True  # before (or while) the index is brought up to date

    def index_soon(self) -> None:
        """Bring the index up to date in a worker now, or when the running job ends (a new
        background update would cancel the running one, and an import stamps every second)."""
        if self.jobs.control is not None:
            self._index_pending = True
        else:
            self.start_index_update()

    def _on_job_finished(self) -> None:
        if self._index_pending and self.jobs.control is None:
            self._index_pending = False
            self.start_index_update()

    async def _refresh_listing(self) -> bool:
        """External changes (another process): compare the listing with what is shown.
        Whether it differed."""
        if self.archive is None or self.user_id is None:
            return False
        user = self.user_id
        try:
            sessions = await self.archive.list_sessions(user)
        except StorageError as exc:  # shown once in the sidebar, not a box every poll
            self.sidebar.show_problem(f"{headline(exc)}: {exc}")
            return False
        if user != self.user_id:
            return False
        models = (self.sidebar.sessions, self.sidebar.panels)
        diffs = await asyncio.to_thread(lambda: [m.diff_listing(sessions) for m in models])
        if user != self.user_id:
            return False
        for model, diff in zip(models, diffs, strict=True):
            model.apply_diff(diff)
        changed = any(diffs)
        if self.session is not None:
            current = self.session.session_id
            fresh = next((s for s in sessions if s.session_id == current), None)
            if fresh is None:
                self._forget_session(current)
            elif fresh != self.session:
                self.session = fresh
                await self._sync_open_session()
        self._show_listing_problems()
        return changed

    # ================================================================ settings
    def show_settings(self) -> SettingsDialog | None:
        """The archive's settings (non-modal), with the index state and maintenance."""
        archive = self.archive
        if archive is None:
            self.notify("Open an archive to see its settings.")
            return None
        dialog = SettingsDialog(archive.settings, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.save_requested.connect(
            lambda changes: self.run("settings", self.save_settings(dialog, changes), "Saving")
        )
        dialog.reindex_requested.connect(lambda: self.start_index_update(rebuild=True))
        dialog.compact_requested.connect(
            lambda: self.run("compact", self.compact_idle(), "Compacting idle sessions")
        )
        dialog.destroyed.connect(self._on_settings_destroyed)
        self.settings_dialog = dialog
        self.last_dialog = dialog
        dialog.show()
        self._refresh_state(dialog)
        return dialog

    def _on_settings_destroyed(self) -> None:
        self.settings_dialog = None

    def _on_index_updated(self, _report: RefreshReport) -> None:
        if self.settings_dialog is not None:
            self._refresh_state(self.settings_dialog)

    def _refresh_state(self, dialog: SettingsDialog) -> None:
        self.run("settings-state", self.load_index_state(dialog), "Checking the search index")

    async def load_index_state(self, dialog: SettingsDialog) -> None:
        archive = self.archive
        if archive is None:
            return
        vector = archive.settings.vector
        if not vector.enabled:
            embedder = "switched off (vector.enabled): searches use keywords only"
        else:  # the search results say whether semantic search is degraded
            probe = await archive.search("probe", mode="semantic", limit=1)
            embedder = (
                f"degraded: {probe.degraded}" if probe.degraded else f"ready ({vector.embedder})"
            )
        try:  # not waiting for a process writing the index (this window's own worker)
            problems: list[str] | None = await asyncio.to_thread(archive.index_problems, 0)
        except LockTimeoutError:
            problems = None
        report = self.index_report
        if problems is None:
            index = "being written by another process: not checked now"
        elif problems:
            index = "damaged: " + "; ".join(problems) + " — rebuild it"
        elif report is not None:
            index = (
                f"up to date; the last update indexed {report.sources_indexed:,} sources "
                f"({report.documents_added:,} entries) in {report.seconds:.1f} s"
            )
        else:
            index = "not checked since the archive was opened"
        if self.jobs.control is not None:
            index = f"{self.jobs.control.name}… ({index})"
        if self.settings_dialog is dialog:
            dialog.set_state(embedder, index)

    async def save_settings(self, dialog: SettingsDialog, changes: dict[str, Any]) -> None:
        if self.archive is None:
            return
        try:
            saved = await self.archive.update_settings(changes)
        except SettingsError as exc:  # names the key; shown in the dialog, nothing written
            dialog.show_error(str(exc))
            self.notify(str(exc))
            return
        dialog.saved(saved)
        if "default_mode" in changes.get("search", {}):
            self.search_panel.set_mode(saved.search.default_mode)
        if "page_size" in changes.get("search", {}):
            self.search_panel.set_page_size(saved.search.page_size)
        self.notify("Settings saved")

    async def compact_idle(self) -> list[tuple[str, str]]:
        if self.archive is None:
            return []
        done = await self.archive.compact_idle()
        days = self.archive.settings.storage.compact_after_days
        self.notify(
            f"Compacted {len(done):,} session(s) idle for {days:g} days or more"
            if days
            else "Compaction is off (storage.compact_after_days is 0)"
        )
        return done

    # ================================================================ misc
    def show_about(self) -> None:
        box = QMessageBox(self)
        box.setWindowTitle("About Flatchat")
        box.setText(
            "<b>Flatchat</b><br>Your AI chat history and documents as plain JSON/JSONL files "
            "on your disk, searchable offline."
        )
        self.last_dialog = box
        box.open()

    def closeEvent(self, event: QCloseEvent) -> None:
        self._poll.stop()
        self.search_panel.stop()
        if self._prepare_later is not None:
            self._prepare_later.cancel()
        if self.jobs.control is not None:
            self.jobs.control.cancel()
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self.tasks.cancel_all()
        super().closeEvent(event)
