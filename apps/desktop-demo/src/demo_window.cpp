#include "demo_window.h"

#include <QCheckBox>
#include <QClipboard>
#include <QComboBox>
#include <QFormLayout>
#include <QGroupBox>
#include <QGuiApplication>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QPushButton>
#include <QSplitter>
#include <QStatusBar>
#include <QTimer>
#include <QVBoxLayout>
#include <algorithm>
#include <mutex>

namespace weft::demo {

// Events from SDK threads wait here for the GUI thread; one drain is posted at a time.
struct DemoWindow::Inbox {
  std::mutex mu;
  bool closed = false;
  bool posted = false;
  std::vector<ChangeEvent> changes;
  std::vector<PresenceEvent> presence;
  DemoWindow* window = nullptr;

  // Called with mu held.
  void PostLocked() {
    if (posted || closed) return;
    posted = true;
    DemoWindow* w = window;
    QMetaObject::invokeMethod(
        w, [w] { w->Drain(); }, Qt::QueuedConnection);
  }
  void Push(const ChangeEvent& e) {
    std::lock_guard<std::mutex> lock(mu);
    if (closed) return;
    changes.push_back(e);
    PostLocked();
  }
  void Push(const PresenceEvent& e) {
    std::lock_guard<std::mutex> lock(mu);
    if (closed) return;
    presence.push_back(e);
    PostLocked();
  }
};

namespace {

constexpr auto kPresenceTimeout = std::chrono::seconds(5);

QString Q(const std::string& s) {
  return QString::fromStdString(s);
}

QString ScalarText(const Scalar& s) {
  if (s.is<std::string>()) return Q(s.as<std::string>());
  if (s.is<bool>()) return s.as<bool>() ? QStringLiteral("done") : QStringLiteral("not done");
  return Q(s.ToString());
}

QString Age(std::chrono::milliseconds ms) {
  if (ms.count() < 1000) return QString::number(ms.count()) + " ms";
  return QString::number(ms.count() / 1000.0, 'f', 1) + " s";
}

QString RoleText(Role role) {
  return QString::fromLatin1(crdt::RoleName(role));
}

}  // namespace

QString ColorFor(crdt::NodeId node) {
  static const char* kPalette[] = {"#e6194b", "#3cb44b", "#4363d8", "#f58231",
                                   "#911eb4", "#008080", "#9a6324", "#800000"};
  uint64_t h = node.value * 0x9E3779B97F4A7C15ull;
  return QString::fromLatin1(kPalette[(h >> 32) % 8]);
}

QString ShortKey(const PublicKey& key) {
  const QString hex = Q(key.ToHex());
  return hex.left(8) + QStringLiteral("…") + hex.right(4);
}

DemoWindow::DemoWindow(QWidget* parent) : QMainWindow(parent) {
  BuildUi();
  status_timer_ = new QTimer(this);
  connect(status_timer_, &QTimer::timeout, this, &DemoWindow::UpdateStatus);
  status_timer_->start(500);
  presence_timer_ = new QTimer(this);
  connect(presence_timer_, &QTimer::timeout, this, &DemoWindow::PublishPresence);
  presence_timer_->start(1000);
  presence_soon_ = new QTimer(this);
  presence_soon_->setSingleShot(true);
  presence_soon_->setInterval(50);
  connect(presence_soon_, &QTimer::timeout, this, &DemoWindow::PublishPresence);
}

DemoWindow::~DemoWindow() {
  CloseSession();
}

void DemoWindow::BuildUi() {
  auto* central = new QWidget(this);
  auto* layout = new QVBoxLayout(central);

  // The document: the same choices as the command-line flags.
  auto* open_row = new QHBoxLayout;
  db_edit_ = new QLineEdit;
  db_edit_->setPlaceholderText("replica.db");
  relay_edit_ = new QLineEdit;
  relay_edit_->setPlaceholderText("ws://127.0.0.1:8787 (empty: local only)");
  name_edit_ = new QLineEdit;
  name_edit_->setPlaceholderText("your name");
  doc_edit_ = new QLineEdit;
  doc_edit_->setPlaceholderText("document");
  encrypted_check_ = new QCheckBox("Encrypted note");
  encrypted_check_->setToolTip(
      "A new document is end-to-end encrypted: only its members' devices can read it, the relay "
      "stores ciphertext");
  auto* open_button = new QPushButton("Open");
  connect(open_button, &QPushButton::clicked, this, &DemoWindow::OnOpenClicked);
  open_row->addWidget(new QLabel("Database"));
  open_row->addWidget(db_edit_, 3);
  open_row->addWidget(new QLabel("Relay"));
  open_row->addWidget(relay_edit_, 3);
  open_row->addWidget(new QLabel("Name"));
  open_row->addWidget(name_edit_, 1);
  open_row->addWidget(new QLabel("Document"));
  open_row->addWidget(doc_edit_, 1);
  open_row->addWidget(encrypted_check_);
  open_row->addWidget(open_button);
  layout->addLayout(open_row);

  auto* splitter = new QSplitter(Qt::Horizontal);
  auto* text_box = new QGroupBox("Notes (shared text)");
  auto* text_layout = new QVBoxLayout(text_box);
  editor_ = new CollabEditor;
  text_layout->addWidget(editor_);
  splitter->addWidget(text_box);

  auto* side = new QWidget;
  auto* side_layout = new QVBoxLayout(side);
  side_layout->setContentsMargins(0, 0, 0, 0);
  todo_box_ = new QGroupBox("To-do (shared list)");
  auto* todo_layout = new QVBoxLayout(todo_box_);
  todo_list_ = new QListWidget;
  todo_list_->setEditTriggers(QAbstractItemView::DoubleClicked | QAbstractItemView::EditKeyPressed);
  connect(todo_list_, &QListWidget::itemChanged, this, &DemoWindow::OnTodoChanged);
  connect(todo_list_->itemDelegate(), &QAbstractItemDelegate::closeEditor, this, [this] {
    if (todos_stale_) QTimer::singleShot(0, this, [this] { RefreshList(); });
  });
  todo_layout->addWidget(todo_list_);
  auto* add_row = new QHBoxLayout;
  new_todo_edit_ = new QLineEdit;
  new_todo_edit_->setPlaceholderText("New item");
  auto* add_button = new QPushButton("Add");
  auto add = [this] {
    if (new_todo_edit_->text().trimmed().isEmpty()) return;
    if (AddTodo(new_todo_edit_->text().trimmed()).ok()) new_todo_edit_->clear();
  };
  connect(add_button, &QPushButton::clicked, this, add);
  connect(new_todo_edit_, &QLineEdit::returnPressed, this, add);
  add_row->addWidget(new_todo_edit_);
  add_row->addWidget(add_button);
  todo_layout->addLayout(add_row);
  auto* move_row = new QHBoxLayout;
  auto* up = new QPushButton("Up");
  auto* down = new QPushButton("Down");
  auto* remove = new QPushButton("Delete");
  connect(up, &QPushButton::clicked, this,
          [this] { (void)MoveTodo(todo_list_->currentRow(), -1); });
  connect(down, &QPushButton::clicked, this,
          [this] { (void)MoveTodo(todo_list_->currentRow(), 1); });
  connect(remove, &QPushButton::clicked, this,
          [this] { (void)RemoveTodo(todo_list_->currentRow()); });
  move_row->addWidget(up);
  move_row->addWidget(down);
  move_row->addWidget(remove);
  todo_layout->addLayout(move_row);
  side_layout->addWidget(todo_box_, 3);

  auto* conflict_box = new QGroupBox("Conflicts (edited concurrently offline)");
  auto* conflict_layout = new QVBoxLayout(conflict_box);
  conflict_list_ = new QListWidget;
  conflict_list_->setWordWrap(true);
  connect(conflict_list_, &QListWidget::currentRowChanged, this, &DemoWindow::OnConflictSelected);
  conflict_layout->addWidget(conflict_list_);
  auto* keep = new QPushButton("Keep selected version");
  connect(keep, &QPushButton::clicked, this, [this] {
    QListWidgetItem* item = conflict_list_->currentItem();
    if (!item || item->data(Qt::UserRole + 1).toInt() < 0) return;
    (void)ResolveConflict(item->data(Qt::UserRole).toInt(), item->data(Qt::UserRole + 1).toInt());
  });
  conflict_layout->addWidget(keep);
  auto* merge_row = new QHBoxLayout;
  merge_edit_ = new QLineEdit;
  merge_edit_->setPlaceholderText("merged text");
  auto* merge = new QPushButton("Use merged");
  connect(merge, &QPushButton::clicked, this, [this] {
    QListWidgetItem* item = conflict_list_->currentItem();
    if (!item) return;
    (void)MergeConflict(item->data(Qt::UserRole).toInt(), merge_edit_->text());
  });
  merge_row->addWidget(merge_edit_);
  merge_row->addWidget(merge);
  conflict_layout->addLayout(merge_row);
  side_layout->addWidget(conflict_box, 2);

  // Who may read and write the document: this device's key (to send to an owner), the members,
  // and, for the owner and admins, inviting and revoking.
  auto* people_box = new QGroupBox("People (the document's access list)");
  auto* people_layout = new QVBoxLayout(people_box);
  auto* key_row = new QHBoxLayout;
  key_edit_ = new QLineEdit;
  key_edit_->setReadOnly(true);
  key_edit_->setToolTip("This device's public key: send it to a document's owner to be invited");
  auto* copy_key = new QPushButton("Copy");
  connect(copy_key, &QPushButton::clicked, this, [this] {
    if (key_edit_->text().isEmpty()) return;
    QGuiApplication::clipboard()->setText(key_edit_->text());
    statusBar()->showMessage("Your key is on the clipboard: send it to the document's owner", 5000);
  });
  key_row->addWidget(new QLabel("Your key"));
  key_row->addWidget(key_edit_, 1);
  key_row->addWidget(copy_key);
  people_layout->addLayout(key_row);
  access_label_ = new QLabel;
  access_label_->setWordWrap(true);
  people_layout->addWidget(access_label_);
  encryption_label_ = new QLabel;
  encryption_label_->setWordWrap(true);
  people_layout->addWidget(encryption_label_);
  member_list_ = new QListWidget;
  member_list_->setSelectionMode(QAbstractItemView::SingleSelection);
  member_list_->setMaximumHeight(5 * member_list_->fontMetrics().height() + 8);  // a few rows
  people_layout->addWidget(member_list_);
  auto* invite_row = new QHBoxLayout;
  invite_edit_ = new QLineEdit;
  invite_edit_->setPlaceholderText("their key (64 hexadecimal characters)");
  invite_role_ = new QComboBox;
  invite_role_->addItem("writer", static_cast<int>(Role::kWriter));
  invite_role_->addItem("reader", static_cast<int>(Role::kReader));
  invite_button_ = new QPushButton("Invite");
  auto invite = [this] {
    const QString key = invite_edit_->text().trimmed();
    if (key.isEmpty()) return;
    const auto role = static_cast<Role>(invite_role_->currentData().toInt());
    if (Invite(key, role).ok()) {
      invite_edit_->clear();
      statusBar()->showMessage(QString("Invited %1 as %2").arg(key.left(8), RoleText(role)), 5000);
    }
  };
  connect(invite_button_, &QPushButton::clicked, this, invite);
  connect(invite_edit_, &QLineEdit::returnPressed, this, invite);
  invite_row->addWidget(invite_edit_, 1);
  invite_row->addWidget(invite_role_);
  invite_row->addWidget(invite_button_);
  people_layout->addLayout(invite_row);
  revoke_button_ = new QPushButton("Revoke selected");
  connect(revoke_button_, &QPushButton::clicked, this, [this] {
    QListWidgetItem* item = member_list_->currentItem();
    if (!item) return;
    (void)RevokeMember(item->data(Qt::UserRole).toString());
  });
  people_layout->addWidget(revoke_button_);
  side_layout->addWidget(people_box, 2);
  splitter->addWidget(side);
  splitter->setStretchFactor(0, 3);
  splitter->setStretchFactor(1, 2);
  layout->addWidget(splitter, 1);
  setCentralWidget(central);

  online_button_ = new QPushButton("Online");
  online_button_->setCheckable(true);
  online_button_->setStyleSheet(
      "QPushButton { background: #c0392b; color: white; padding: 2px 12px; }"
      "QPushButton:checked { background: #2e8b57; }");
  connect(online_button_, &QPushButton::toggled, this, [this](bool on) { SetOnline(on); });
  connection_label_ = new QLabel;
  lag_label_ = new QLabel;
  peers_label_ = new QLabel;
  statusBar()->addPermanentWidget(online_button_);
  statusBar()->addPermanentWidget(connection_label_);
  statusBar()->addPermanentWidget(lag_label_);
  statusBar()->addPermanentWidget(peers_label_, 1);

  connect(editor_, &QPlainTextEdit::cursorPositionChanged, this, [this] {
    if (!presence_soon_->isActive()) presence_soon_->start();
  });
  connect(editor_, &QPlainTextEdit::selectionChanged, this, [this] {
    if (!presence_soon_->isActive()) presence_soon_->start();
  });
  connect(editor_, &QPlainTextEdit::textChanged, this, &DemoWindow::UpdateRemoteCursors);
  resize(1000, 640);
}

Status DemoWindow::Open(const DemoOptions& options) {
  CloseSession();
  options_ = options;
  options_.name = SanitizeName(options.name);
  db_edit_->setText(Q(options_.db));
  relay_edit_->setText(Q(options_.relay));
  name_edit_->setText(Q(options_.name));
  doc_edit_->setText(Q(options_.doc));
  encrypted_check_->setChecked(options_.encrypted);
  if (options_.doc.empty()) return Status::InvalidArgument("no document name");

  // Default options: a document this window creates is owned by this device's key, and others
  // read and write it once invited (the People panel).
  auto replica = Replica::Open(options_.db);
  if (!replica.ok()) return replica.status();
  replica_ = std::move(*replica);
  key_edit_->setText(Q(replica_->public_key().ToHex()));
  key_edit_->setCursorPosition(0);  // its start, as the members view abbreviates keys
  color_ = ColorFor(replica_->node_id());
  inbox_ = std::make_shared<Inbox>();
  inbox_->window = this;
  std::shared_ptr<Inbox> inbox = inbox_;
  subscription_ =
      replica_->Subscribe(options_.doc, [inbox](const ChangeEvent& e) { inbox->Push(e); });

  SyncOptions sync_options;
  sync_options.documents = {options_.doc};
  sync_options.initial_backoff = options_.initial_backoff;
  sync_options.max_backoff = options_.max_backoff;
  auto sync = SyncClient::Create(*replica_, sync_options);
  if (!sync.ok()) {
    Status s = sync.status();
    CloseSession();
    return s;
  }
  sync_ = std::move(*sync);
  sync_->SetPresenceCallback([inbox](const PresenceEvent& e) { inbox->Push(e); });

  online_ = false;
  if (!options_.relay.empty() && options_.online) {
    Status s = sync_->AddPeer(options_.relay);
    if (!s.ok()) {
      CloseSession();
      return s;
    }
    online_ = true;
  }
  // A document not complete here: first take the relay's copy, if there is one this device may
  // read, so that the text and the list are the ones everybody else has. The relay refuses one
  // it holds for others only (kPermissionDenied): then this window waits to be invited, rather
  // than create a document of the same name (to everyone else, someone else's document).
  bool has_structure = false;
  if (replica_->HasDocument(options_.doc)) {
    (void)replica_->Read(options_.doc, [&](const View& v) {
      has_structure = v.root().Text(kTextKey).ok() && v.root().List(kTodoKey).ok();
    });
  }
  bool denied = false;
  if (!has_structure && online_) {
    auto synced = sync_->WaitUntilSynced(options_.relay, options_.initial_sync);
    denied = !synced.ok() && synced.status().code() == StatusCode::kPermissionDenied;
  }
  {
    const QSignalBlocker block(online_button_);
    online_button_->setEnabled(!options_.relay.empty());
    online_button_->setChecked(online_);
    online_button_->setText(online_ ? "Online" : "Offline");
  }
  setWindowTitle(QString("Weft demo — %1 — %2").arg(Q(options_.name), Q(options_.doc)));
  if (!denied || replica_->HasDocument(options_.doc)) {
    if (Status s = StartEditing(); !s.ok()) {
      CloseSession();
      return s;
    }
  }
  Refresh();
  return Status::Ok();
}

Status DemoWindow::StartEditing() {
  bool has_structure = false;
  if (replica_->HasDocument(options_.doc)) {
    (void)replica_->Read(options_.doc, [&](const View& v) {
      has_structure = v.root().Text(kTextKey).ok() && v.root().List(kTodoKey).ok();
    });
  }
  if (!has_structure && options_.encrypted && !replica_->HasDocument(options_.doc)) {
    // An encrypted note: its first change (the create, the encrypt op, the first key) comes
    // before the text and the list, which are then sealed like every later edit.
    WEFT_RETURN_IF_ERROR(replica_->CreateEncryptedDocument(options_.doc));
  }
  if (!has_structure) {
    // The first transaction creates the document, owned by this device; a writer of a document
    // made without the text and the list adds them (made on two replicas concurrently, every
    // replica picks the same sibling).
    auto made = replica_->Transact(options_.doc, [](Txn& txn) -> Status {
      WEFT_RETURN_IF_ERROR(txn.root().Text(kTextKey).status());
      return txn.root().List(kTodoKey).status();
    });
    if (!made.ok()) return made.status();
  }
  auto* binding = new TextBinding(editor_, replica_.get(), options_.doc, this);
  if (Status s = binding->Load(); !s.ok()) {
    delete binding;
    return s;
  }
  binding_ = binding;
  connect(binding_, &TextBinding::failed, this, &DemoWindow::ShowError);
  RefreshMembers();  // what this device may do in it
  return Status::Ok();
}

void DemoWindow::CloseSession() {
  if (inbox_) {
    std::lock_guard<std::mutex> lock(inbox_->mu);
    inbox_->closed = true;
  }
  if (replica_ && subscription_) replica_->Unsubscribe(subscription_);
  subscription_ = 0;
  if (sync_) {
    sync_->SetPresenceCallback(nullptr);
    sync_->Stop();
  }
  sync_.reset();
  delete binding_;
  binding_ = nullptr;
  replica_.reset();
  inbox_.reset();
  online_ = false;
  peers_.clear();
  todos_.clear();
  conflicts_.clear();
  if (editor_) {
    editor_->SetRemoteCursors({});
    editor_->setReadOnly(true);
  }
  if (key_edit_) {
    key_edit_->clear();
    RefreshMembers();
  }
}

void DemoWindow::SetOnline(bool online) {
  if (!sync_ || options_.relay.empty()) return;
  if (online != online_) {
    Status s = online ? sync_->AddPeer(options_.relay) : sync_->RemovePeer(options_.relay);
    if (!s.ok()) ShowError(Q("connection: " + s.ToString()));
    online_ = online;
    if (!online_) {
      peers_.clear();
      UpdateRemoteCursors();
    }
  }
  const QSignalBlocker block(online_button_);
  online_button_->setChecked(online_);
  online_button_->setText(online_ ? "Online" : "Offline");
  UpdateStatus();
  if (online_) PublishPresence();
}

void DemoWindow::Drain() {
  std::vector<ChangeEvent> changes;
  std::vector<PresenceEvent> presence;
  {
    if (!inbox_) return;
    std::lock_guard<std::mutex> lock(inbox_->mu);
    inbox_->posted = false;
    changes.swap(inbox_->changes);
    presence.swap(inbox_->presence);
  }
  bool list_changed = false;
  if (!binding_) {
    // Waiting for an invitation: the document's first changes mean it has come.
    if (changes.empty() || !replica_ || !replica_->HasDocument(options_.doc)) return;
    if (Status s = StartEditing(); !s.ok()) {
      ShowError(Q("The document arrived but cannot be shown yet: " + s.ToString()));
      return;
    }
    list_changed = true;  // the events below are in the text already: the binding skips them
  }
  for (const ChangeEvent& e : changes) {
    binding_->OnEvent(e);
    for (const crdt::Patch& p : e.patches) {
      if (p.object != binding_->text_id()) list_changed = true;
    }
  }
  if (!changes.empty()) {
    if (Status s = binding_->Reconcile(); !s.ok()) ShowError(Q(s.ToString()));
  }
  for (const PresenceEvent& e : presence) {
    if (e.doc != options_.doc || !online_) continue;
    auto p = DecodePresence(e.payload);
    if (!p) continue;  // not a payload of this demo: ignored
    peers_[e.node] = PeerPresence{std::move(*p), std::chrono::steady_clock::now()};
  }
  if (list_changed) RefreshList();
  if (!changes.empty()) RefreshMembers();  // a change may grant or revoke
  UpdateRemoteCursors();
}

void DemoWindow::Refresh() {
  Drain();  // whatever the feed has queued so far
  RefreshMembers();
  RefreshList();
  UpdateRemoteCursors();
  UpdateStatus();
}

void DemoWindow::RefreshList() {
  // An item editor open (a QLineEdit in the viewport): refresh once the person is done.
  QLineEdit* open_editor = todo_list_->viewport()->findChild<QLineEdit*>();
  if (open_editor && open_editor->isVisible()) {
    todos_stale_ = true;  // after the person's edit
    return;
  }
  todos_stale_ = false;
  // The items and their conflicts from one view of the document, so that they agree.
  todos_.clear();
  conflicts_.clear();
  if (replica_) {
    (void)replica_->Read(options_.doc, [&](const View& v) {
      auto list = v.root().List(kTodoKey);
      if (!list.ok()) return;
      auto items = ReadTodos(v.document(), list->id());
      if (items.ok()) todos_ = std::move(*items);
      auto conflicts = FindConflicts(v.document(), list->id());
      if (conflicts.ok()) conflicts_ = std::move(*conflicts);
    });
  }
  RebuildConflictPanel();
  if (in_item_change_) {
    // Called from the list's own itemChanged: rebuilding now would delete the item under its
    // signal. It already shows the edit; the rebuild follows on the next turn of the event loop.
    QTimer::singleShot(0, this, [this] { RefreshList(); });
    return;
  }
  crdt::ObjectId selected;
  bool has_selected = false;
  if (QListWidgetItem* cur = todo_list_->currentItem()) {
    int row = todo_list_->row(cur);
    if (row >= 0 && row < static_cast<int>(todo_list_->count())) {
      selected.node.value = cur->data(Qt::UserRole).toULongLong();
      selected.seq = cur->data(Qt::UserRole + 1).toULongLong();
      has_selected = true;
    }
  }
  const QSignalBlocker block(todo_list_);
  todo_list_->clear();
  for (size_t i = 0; i < todos_.size(); ++i) {
    const TodoItem& t = todos_[i];
    auto* item = new QListWidgetItem(Q(t.title()));
    item->setFlags(Qt::ItemIsEnabled | Qt::ItemIsSelectable | Qt::ItemIsEditable |
                   Qt::ItemIsUserCheckable);
    bool mixed = t.dones.size() > 1 && !t.done() &&
                 std::any_of(t.dones.begin(), t.dones.end(), [](bool d) { return d; });
    item->setCheckState(mixed ? Qt::PartiallyChecked : t.done() ? Qt::Checked : Qt::Unchecked);
    item->setData(Qt::UserRole, QVariant::fromValue<qulonglong>(t.id.node.value));
    item->setData(Qt::UserRole + 1, QVariant::fromValue<qulonglong>(t.id.seq));
    if (t.conflicted()) {
      item->setForeground(QColor("#c05000"));
      item->setToolTip("Edited concurrently: see Conflicts");
    }
    if (t.done()) {
      QFont f = item->font();
      f.setStrikeOut(true);
      item->setFont(f);
    }
    todo_list_->addItem(item);
    if (has_selected && t.id == selected) todo_list_->setCurrentRow(static_cast<int>(i));
  }
}

void DemoWindow::RebuildConflictPanel() {
  const int was_selected = conflict_list_->currentRow();
  const QSignalBlocker block(conflict_list_);
  conflict_list_->clear();
  for (size_t i = 0; i < conflicts_.size(); ++i) {
    const Conflict& c = conflicts_[i];
    auto* header = new QListWidgetItem(
        QString("“%1” · %2: %3 versions").arg(Q(c.item_title), Q(c.field)).arg(c.siblings.size()));
    QFont f = header->font();
    f.setBold(true);
    header->setFont(f);
    header->setData(Qt::UserRole, static_cast<int>(i));
    header->setData(Qt::UserRole + 1, -1);
    conflict_list_->addItem(header);
    for (size_t j = 0; j < c.siblings.size(); ++j) {
      auto* item = new QListWidgetItem("    " + ScalarText(c.siblings[j]));
      item->setData(Qt::UserRole, static_cast<int>(i));
      item->setData(Qt::UserRole + 1, static_cast<int>(j));
      conflict_list_->addItem(item);
    }
  }
  merge_edit_->clear();
  if (was_selected >= 0 && was_selected < conflict_list_->count()) {
    conflict_list_->setCurrentRow(was_selected);
    OnConflictSelected();
  }
}

void DemoWindow::OnConflictSelected() {
  QListWidgetItem* item = conflict_list_->currentItem();
  if (!item) return;
  int index = item->data(Qt::UserRole).toInt();
  if (index < 0 || index >= static_cast<int>(conflicts_.size())) return;
  const Conflict& c = conflicts_[index];
  QStringList parts;
  for (const Scalar& s : c.siblings) parts << ScalarText(s);
  merge_edit_->setText(c.field == "title" ? parts.join(" / ") : QString());
}

void DemoWindow::UpdateStatus() {
  if (!replica_) {
    connection_label_->setText("No document open");
    lag_label_->clear();
    peers_label_->clear();
    return;
  }
  // Presence that stopped arriving: the peer left or went offline.
  const auto now = std::chrono::steady_clock::now();
  bool dropped = false;
  for (auto it = peers_.begin(); it != peers_.end();) {
    if (now - it->second.last_seen > kPresenceTimeout) {
      it = peers_.erase(it);
      dropped = true;
    } else {
      ++it;
    }
  }
  if (dropped) UpdateRemoteCursors();

  // Replication lag: this replica's own changes that the relay has not acknowledged storing, by
  // what it acknowledged on the live link (Peers) or before (kept in the replica, for offline).
  // Changes of others that came from the relay are not counted: the relay has them.
  QString connection, lag;
  crdt::VersionVector acked;
  if (!options_.relay.empty()) {
    if (auto versions = replica_->PeerVersions(options_.relay); versions.ok()) {
      for (const auto& [doc, version] : *versions) {
        if (doc == options_.doc) acked.Merge(version);
      }
    }
  }
  if (options_.relay.empty()) {
    connection = "Local only (no relay)";
  } else if (!online_) {
    connection = "Offline";
  } else {
    connection = "Connecting…";
    for (const PeerStatus& p : sync_->Peers()) {
      if (p.url != options_.relay) continue;
      connection = ConnectionStateName(p.state);
      connection[0] = connection[0].toUpper();
      if (p.state != ConnectionState::kConnected && !p.last_error.empty()) {
        connection += " (" + Q(p.last_error) + ")";
      }
      for (const DocumentSyncStatus& d : p.documents) {
        if (d.doc != options_.doc) continue;
        acked.Merge(d.acknowledged);
        // E.g. refused by the relay: this device has no role in the document.
        if (p.state == ConnectionState::kConnected && !d.error.empty()) {
          connection += " (" + Q(d.error) + ")";
        }
      }
    }
  }
  if (!options_.relay.empty()) {
    // From the op log, so that changes made before a restart count too. Changes received from
    // the relay count as acknowledged (the relay stored them before sending them).
    uint64_t count = 0, oldest_ms = 0;
    if (auto pending = replica_->ChangesSince(options_.doc, acked); pending.ok()) {
      for (const ChangeBlob& blob : *pending) {
        auto c = crdt::DecodeChange(blob);
        if (!c.ok()) continue;
        ++count;
        if (oldest_ms == 0 || (c->time.wall_ms > 0 && c->time.wall_ms < oldest_ms)) {
          oldest_ms = c->time.wall_ms;
        }
      }
    }
    lag = QString("Unacknowledged: %1 %2").arg(count).arg(count == 1 ? "change" : "changes");
    if (count > 0 && oldest_ms > 0) {
      const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
      const uint64_t now_ms = static_cast<uint64_t>(now);
      lag +=
          ", oldest " + Age(std::chrono::milliseconds(now_ms > oldest_ms ? now_ms - oldest_ms : 0));
    }
  }
  connection_label_->setText(connection);
  lag_label_->setText(lag);
  QStringList names;
  names
      << QString("<b style='color:%1'>%2 (you)</b>").arg(color_, Q(options_.name).toHtmlEscaped());
  for (const auto& [node, p] : peers_) {
    names << QString("<b style='color:%1'>%2</b>")
                 .arg(Q(p.presence.color), Q(p.presence.name).toHtmlEscaped());
  }
  peers_label_->setText("Here: " + names.join(", "));
}

void DemoWindow::UpdateRemoteCursors() {
  std::vector<RemoteCursor> cursors;
  if (binding_) {
    for (const auto& [node, p] : peers_) {
      if (!p.presence.cursor) continue;
      auto pos = binding_->EditorPosition(*p.presence.cursor);
      if (!pos) continue;
      auto anchor = p.presence.anchor ? binding_->EditorPosition(*p.presence.anchor) : pos;
      RemoteCursor c;
      c.name = Q(p.presence.name);
      c.color = QColor(Q(p.presence.color));
      c.position = *pos;
      c.anchor = anchor ? *anchor : *pos;
      cursors.push_back(std::move(c));
    }
  }
  editor_->SetRemoteCursors(std::move(cursors));
}

void DemoWindow::PublishPresence() {
  if (!sync_ || !binding_ || !online_) return;
  Presence p;
  p.name = options_.name;
  p.color = color_.toStdString();
  if (auto anchors = binding_->CursorAnchors()) {
    p.cursor = anchors->first;
    p.anchor = anchors->second;
  } else {
    return;  // the editor is catching up: the next tick has a cursor again
  }
  (void)sync_->PublishPresence(options_.doc, EncodePresence(p));  // offline: nobody to tell
}

Role DemoWindow::role() const {
  if (!replica_ || !binding_) return Role::kNone;
  if (!access_.owned) return Role::kWriter;  // public: anyone writes
  auto it = access_.members.find(replica_->public_key());
  return it == access_.members.end() ? Role::kNone : it->second;
}

bool DemoWindow::encrypted() const {
  if (!replica_ || !binding_) return false;
  auto info = replica_->Encryption(options_.doc);
  return info.ok() && info->encrypted;
}

void DemoWindow::RefreshMembers() {
  DocumentAccess access;
  if (replica_ && binding_) {
    if (auto a = replica_->Access(options_.doc); a.ok()) access = std::move(*a);
  }
  const bool same = access.owned == access_.owned && access.members == access_.members;
  access_ = std::move(access);
  const Role mine = role();

  if (!same || member_list_->count() != static_cast<int>(access_.members.size())) {
    // Owner first, then by role, then by key; the selection stays on its key.
    const QListWidgetItem* cur = member_list_->currentItem();
    const QString selected = cur ? cur->data(Qt::UserRole).toString() : QString();
    std::vector<std::pair<PublicKey, Role>> members(access_.members.begin(), access_.members.end());
    std::stable_sort(members.begin(), members.end(),
                     [](const auto& a, const auto& b) { return a.second > b.second; });
    const QSignalBlocker block(member_list_);
    member_list_->clear();
    for (const auto& [key, role] : members) {
      const bool you = replica_ && key == replica_->public_key();
      auto* item = new QListWidgetItem(
          QString("%1   %2%3")
              .arg(ShortKey(key), RoleText(role), you ? QStringLiteral(" (you)") : QString()));
      item->setData(Qt::UserRole, Q(key.ToHex()));
      item->setToolTip(Q(key.ToHex()));
      if (you) {
        QFont f = item->font();
        f.setBold(true);
        item->setFont(f);
      }
      member_list_->addItem(item);
      if (item->data(Qt::UserRole).toString() == selected) member_list_->setCurrentItem(item);
    }
  }

  QString text;
  if (!replica_) {
    text = "No document open.";
  } else if (!binding_) {
    text =
        "Waiting for an invitation: the relay holds this document for its members only. "
        "Copy your key and send it to its owner; the document opens here once they invite you.";
  } else if (!access_.owned) {
    text = "Public document: every device on the relay reads and writes it (no access list).";
  } else if (mine == Role::kOwner) {
    text = "You own this document: invite others by their key.";
  } else if (mine == Role::kNone) {
    text = "You have no role in this document (any more): this is the copy you had.";
  } else {
    text = QString("You are a %1 of this document.").arg(RoleText(mine));
  }
  access_label_->setText(text);

  QString e2e;
  if (replica_ && binding_) {
    auto info = replica_->Encryption(options_.doc);
    if (info.ok() && info->encrypted) {
      e2e = QString(
                "End-to-end encrypted (key epoch %1): only members' devices read it; the "
                "relay stores ciphertext.")
                .arg(static_cast<qulonglong>(info->epoch));
      if (!info->has_key) e2e += " This device holds no key for the newest epoch.";
    } else {
      e2e = "Not encrypted: the relay can read it.";
    }
  }
  encryption_label_->setText(e2e);

  const bool may_write = binding_ && mine >= Role::kWriter;
  editor_->setReadOnly(!may_write);
  todo_box_->setEnabled(may_write);
  const bool may_grant = binding_ && access_.owned && mine >= Role::kAdmin;
  invite_edit_->setEnabled(may_grant);
  invite_role_->setEnabled(may_grant);
  invite_button_->setEnabled(may_grant);
  revoke_button_->setEnabled(may_grant);
}

Status DemoWindow::Invite(const QString& key_hex, Role role) {
  if (!replica_ || !binding_) return Status::InvalidArgument("no document open");
  if (role != Role::kWriter && role != Role::kReader) {
    return Status::InvalidArgument("invite as a writer or a reader");
  }
  auto key = PublicKey::FromHex(key_hex.trimmed().toStdString());
  Status s;
  if (!key) {
    s = Status::InvalidArgument("not a key: 64 hexadecimal characters expected");
  } else if (*key == replica_->public_key()) {
    s = Status::InvalidArgument("that is this device's own key");
  } else {
    s = replica_->Grant(options_.doc, *key, role).status();
  }
  if (!s.ok()) ShowError(Q("Cannot invite: " + s.ToString()));
  RefreshMembers();
  return s;
}

Status DemoWindow::RevokeMember(const QString& key_hex) {
  if (!replica_ || !binding_) return Status::InvalidArgument("no document open");
  auto key = PublicKey::FromHex(key_hex.trimmed().toStdString());
  Status s;
  if (!key) {
    s = Status::InvalidArgument("not a key: 64 hexadecimal characters expected");
  } else if (*key == replica_->public_key()) {
    s = Status::InvalidArgument("that is this device's own key");
  } else {
    s = replica_->Revoke(options_.doc, *key).status();
  }
  if (!s.ok()) ShowError(Q("Cannot revoke: " + s.ToString()));
  RefreshMembers();
  return s;
}

Status DemoWindow::Write(const std::function<Status(Txn&, ObjectId)>& body) {
  // Not before the document is here: a write would create it, as this device's own.
  if (!replica_ || !binding_) return Status::InvalidArgument("no document open");
  auto commit = replica_->Transact(options_.doc, [&](Txn& txn) -> Status {
    auto list = txn.root().List(kTodoKey);
    if (!list.ok()) return list.status();
    return body(txn, list->id());
  });
  if (!commit.ok()) {
    ShowError(Q(commit.status().ToString()));
    RefreshList();
    return commit.status();
  }
  RefreshList();
  return Status::Ok();
}

Status DemoWindow::AddTodo(const QString& title) {
  return Write([&](Txn& t, ObjectId list) { return demo::AddTodo(t, list, title.toStdString()); });
}

Status DemoWindow::SetTodoTitle(int row, const QString& title) {
  if (row < 0 || row >= static_cast<int>(todos_.size())) return Status::OutOfRange("no such row");
  ObjectId id = todos_[row].id;
  return Write([&](Txn& t, ObjectId) { return demo::SetTodoTitle(t, id, title.toStdString()); });
}

Status DemoWindow::SetTodoDone(int row, bool done) {
  if (row < 0 || row >= static_cast<int>(todos_.size())) return Status::OutOfRange("no such row");
  ObjectId id = todos_[row].id;
  return Write([&](Txn& t, ObjectId) { return demo::SetTodoDone(t, id, done); });
}

Status DemoWindow::RemoveTodo(int row) {
  if (row < 0 || row >= static_cast<int>(todos_.size())) return Status::OutOfRange("no such row");
  ObjectId id = todos_[row].id;
  return Write([&](Txn& t, ObjectId list) { return demo::RemoveTodo(t, list, id); });
}

Status DemoWindow::MoveTodo(int row, int steps) {
  if (row < 0 || row >= static_cast<int>(todos_.size())) return Status::OutOfRange("no such row");
  ObjectId id = todos_[row].id;
  Status s = Write([&](Txn& t, ObjectId list) { return demo::MoveTodo(t, list, id, steps); });
  for (size_t i = 0; i < todos_.size(); ++i) {
    if (todos_[i].id == id) todo_list_->setCurrentRow(static_cast<int>(i));
  }
  return s;
}

Status DemoWindow::ResolveConflict(int index, int sibling) {
  if (index < 0 || index >= static_cast<int>(conflicts_.size())) {
    return Status::OutOfRange("no such conflict");
  }
  const Conflict c = conflicts_[index];
  if (sibling < 0 || sibling >= static_cast<int>(c.siblings.size())) {
    return Status::OutOfRange("no such version");
  }
  return Write([&](Txn& t, ObjectId) { return demo::ResolveConflict(t, c, c.siblings[sibling]); });
}

Status DemoWindow::MergeConflict(int index, const QString& merged) {
  if (index < 0 || index >= static_cast<int>(conflicts_.size())) {
    return Status::OutOfRange("no such conflict");
  }
  const Conflict c = conflicts_[index];
  if (c.field != "title") return Status::InvalidArgument("only titles can be merged");
  return Write(
      [&](Txn& t, ObjectId) { return demo::ResolveConflict(t, c, Scalar(merged.toStdString())); });
}

void DemoWindow::OnTodoChanged(QListWidgetItem* item) {
  const int row = todo_list_->row(item);
  if (row < 0 || row >= static_cast<int>(todos_.size())) return;
  const TodoItem& t = todos_[row];
  const bool checked = item->checkState() == Qt::Checked;
  Status s;
  in_item_change_ = true;
  if (item->text() != Q(t.title())) {
    s = SetTodoTitle(row, item->text());
  } else if (item->checkState() != Qt::PartiallyChecked && checked != t.done()) {
    s = SetTodoDone(row, checked);
  }
  in_item_change_ = false;
  (void)s;  // errors are shown by Write
}

Status DemoWindow::WaitForRelayAck(std::chrono::milliseconds timeout) {
  if (!sync_ || !replica_) return Status::InvalidArgument("no document open");
  auto version = replica_->Version(options_.doc);
  if (!version.ok()) return version.status();
  return sync_->WaitForAck(options_.doc, *version, timeout, options_.relay);
}

void DemoWindow::OnOpenClicked() {
  DemoOptions o = options_;
  o.db = db_edit_->text().trimmed().toStdString();
  o.relay = relay_edit_->text().trimmed().toStdString();
  o.name = name_edit_->text().trimmed().toStdString();
  o.doc = doc_edit_->text().trimmed().toStdString();
  o.online = true;
  o.encrypted = encrypted_check_->isChecked();
  if (o.db.empty()) {
    ShowError("Choose a database file");
    return;
  }
  if (Status s = Open(o); !s.ok()) ShowError(Q("Cannot open: " + s.ToString()));
}

void DemoWindow::ShowError(const QString& message) {
  statusBar()->showMessage(message, 8000);
}

}  // namespace weft::demo
