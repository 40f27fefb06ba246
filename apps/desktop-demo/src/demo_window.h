// The demo's main window: one replica (a local SQLite file), optionally synced with a relay, with
// a collaborative text editor, a shared to-do list, a conflict panel and a status area.
//
// The window owns its session: the Replica, the SyncClient and the editor binding. Change-feed
// and presence callbacks run on SDK threads; they only queue the event in an inbox and post one
// drain to the GUI thread (QMetaObject::invokeMethod, queued), where everything else happens.
//
// Thread safety: GUI thread only (as every widget). The public methods beside the widgets are what
// the buttons do, for tests and scripted sessions.
#pragma once

#include <QMainWindow>
#include <QString>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "collab_editor.h"
#include "presence.h"
#include "text_binding.h"
#include "todo.h"
#include "weft/replica.h"
#include "weft/sync.h"

class QLabel;
class QLineEdit;
class QListWidget;
class QListWidgetItem;
class QPushButton;
class QTimer;

namespace weft::demo {

struct DemoOptions {
  std::string db;     // the replica's database file (created when missing)
  std::string relay;  // ws://host:port of a relay; empty: local only
  std::string name;   // shown to the others
  std::string doc = "demo";
  bool online = true;
  // When the document is new here, how long to wait for the relay's copy before creating the
  // text and the list (objects created on two replicas concurrently would be siblings).
  std::chrono::milliseconds initial_sync{2000};
  std::chrono::milliseconds initial_backoff{200};
  std::chrono::milliseconds max_backoff{2000};
};

struct PeerPresence {
  Presence presence;
  std::chrono::steady_clock::time_point last_seen;
};

class DemoWindow : public QMainWindow {
  Q_OBJECT
 public:
  explicit DemoWindow(QWidget* parent = nullptr);
  ~DemoWindow() override;

  // Opens (closing the current session first) the replica, document and relay of `options`,
  // and fills the fields of the window with them. On failure the window has no session.
  Status Open(const DemoOptions& options);
  void CloseSession();
  bool has_session() const { return replica_ != nullptr; }

  // Offline: the relay connection is closed (RemovePeer); edits keep committing locally.
  void SetOnline(bool online);
  bool online() const { return online_; }

  // The to-do list, as shown (sorted), and its conflicts.
  const std::vector<TodoItem>& todos() const { return todos_; }
  const std::vector<Conflict>& conflicts() const { return conflicts_; }
  Status AddTodo(const QString& title);
  Status SetTodoTitle(int row, const QString& title);
  Status SetTodoDone(int row, bool done);
  Status RemoveTodo(int row);
  Status MoveTodo(int row, int steps);
  // Keeps sibling `sibling` of conflict `index`, or writes `merged` in place of all of them.
  Status ResolveConflict(int index, int sibling);
  Status MergeConflict(int index, const QString& merged);

  // Blocks until the relay has acknowledged every change made here (semi-synchronous).
  Status WaitForRelayAck(std::chrono::milliseconds timeout);
  // Re-reads the list, the conflicts and the status now (also done on change and on a timer).
  void Refresh();
  // Publishes this window's presence now (also done on cursor moves and every second).
  void PublishPresence();

  CollabEditor* editor() const { return editor_; }
  QListWidget* todo_list() const { return todo_list_; }
  QListWidget* conflict_list() const { return conflict_list_; }
  QPushButton* online_button() const { return online_button_; }
  QLabel* connection_label() const { return connection_label_; }
  QLabel* lag_label() const { return lag_label_; }
  QLabel* peers_label() const { return peers_label_; }
  Replica* replica() const { return replica_.get(); }
  SyncClient* sync() const { return sync_.get(); }
  const std::string& doc() const { return options_.doc; }
  const std::map<crdt::NodeId, PeerPresence>& peers() const { return peers_; }

 private:
  struct Inbox;

  void BuildUi();
  void Drain();
  void RefreshList();  // reads the list and its conflicts, rebuilds both widgets
  void RebuildConflictPanel();
  void UpdateStatus();
  void UpdateRemoteCursors();
  void OnOpenClicked();
  void OnTodoChanged(QListWidgetItem* item);
  void OnConflictSelected();
  void ShowError(const QString& message);
  Status Write(const std::function<Status(Txn&, ObjectId list)>& body);
  std::string relay_url() const { return options_.relay; }

  DemoOptions options_;
  std::unique_ptr<Replica> replica_;
  std::unique_ptr<SyncClient> sync_;
  std::shared_ptr<Inbox> inbox_;
  uint64_t subscription_ = 0;
  TextBinding* binding_ = nullptr;
  bool online_ = false;
  QString color_;
  std::vector<TodoItem> todos_;
  std::vector<Conflict> conflicts_;
  bool todos_stale_ = false;
  bool in_item_change_ = false;  // inside the list's itemChanged signal  // a refresh waits for an
                                 // open item editor to close
  std::map<crdt::NodeId, PeerPresence> peers_;

  QLineEdit* db_edit_ = nullptr;
  QLineEdit* relay_edit_ = nullptr;
  QLineEdit* name_edit_ = nullptr;
  QLineEdit* doc_edit_ = nullptr;
  CollabEditor* editor_ = nullptr;
  QListWidget* todo_list_ = nullptr;
  QLineEdit* new_todo_edit_ = nullptr;
  QListWidget* conflict_list_ = nullptr;
  QLineEdit* merge_edit_ = nullptr;
  QPushButton* online_button_ = nullptr;
  QLabel* connection_label_ = nullptr;
  QLabel* lag_label_ = nullptr;
  QLabel* peers_label_ = nullptr;
  QTimer* status_timer_ = nullptr;
  QTimer* presence_timer_ = nullptr;
  QTimer* presence_soon_ = nullptr;
};

// A colour for a node, the same on every replica.
QString ColorFor(crdt::NodeId node);

}  // namespace weft::demo
