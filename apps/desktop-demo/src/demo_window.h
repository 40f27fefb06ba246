// The demo's main window: one replica (a local SQLite file), optionally synced with a relay, with
// a collaborative text editor, a shared to-do list, a conflict panel, the document's members and
// a status area.
//
// Documents are owned (docs/security.md): the device that creates one is its owner, and nobody
// else reads or writes it until the owner invites their key. A new document may be an encrypted
// note (DemoOptions::encrypted, the "Encrypted note" box): end-to-end encrypted, so that only its
// members' devices read it and the relay stores and forwards ciphertext; the window says so. A
// window that opens a document the relay holds for someone else waits for that invitation, showing
// this device's key to send to the owner; the document appears once the owner grants a role.
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

class QCheckBox;
class QComboBox;
class QGroupBox;
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
  // When the document is new here, create it end-to-end encrypted
  // (Replica::CreateEncryptedDocument): inviting or removing someone then rotates its key.
  bool encrypted = false;
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
  // Whether the document is here to show and edit; false while waiting to be invited to it.
  bool has_document() const { return binding_ != nullptr; }
  // Opened online, the relay holds the document for others only: waiting for an invitation.
  bool waiting_for_invitation() const { return has_session() && !has_document(); }

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

  // The access list as last read (the members view shows it), and this device's role in it:
  // kWriter for a public document (anyone may write), kNone while waiting to be invited.
  const DocumentAccess& access() const { return access_; }
  Role role() const;
  // Invites the holder of `key_hex` (64 hexadecimal characters, from their window) with `role`
  // (writer or reader): a grant, which syncs like any change; the relay then serves them the
  // document. kInvalidArgument for a key that does not parse, this device's own key or another
  // role; kPermissionDenied when this device may not grant (not the owner or an admin).
  Status Invite(const QString& key_hex, Role role);
  // Takes the role of `key_hex` away (Replica::Revoke): the relay stops serving them the
  // document and refuses their later changes. The same errors as Invite.
  Status RevokeMember(const QString& key_hex);
  // Whether the open document is end-to-end encrypted (false with no document).
  bool encrypted() const;

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
  QLineEdit* key_field() const { return key_edit_; }
  QLabel* access_label() const { return access_label_; }
  QCheckBox* encrypted_check() const { return encrypted_check_; }
  // "End-to-end encrypted ..." with the key epoch, "Not encrypted ...", or empty (no document).
  QLabel* encryption_label() const { return encryption_label_; }
  QListWidget* member_list() const { return member_list_; }
  QLineEdit* invite_field() const { return invite_edit_; }
  QComboBox* invite_role() const { return invite_role_; }
  QPushButton* invite_button() const { return invite_button_; }
  QPushButton* revoke_button() const { return revoke_button_; }
  Replica* replica() const { return replica_.get(); }
  SyncClient* sync() const { return sync_.get(); }
  const std::string& doc() const { return options_.doc; }
  const std::map<crdt::NodeId, PeerPresence>& peers() const { return peers_; }

 private:
  struct Inbox;

  void BuildUi();
  // The document is here: makes its text and list when this device may write and they are
  // missing, binds the editor and enables editing.
  Status StartEditing();
  void Drain();
  void RefreshList();  // reads the list and its conflicts, rebuilds both widgets
  void RebuildConflictPanel();
  void RefreshMembers();  // reads the access list, rebuilds the members view, sets what may edit
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
  DocumentAccess access_;

  QLineEdit* db_edit_ = nullptr;
  QLineEdit* relay_edit_ = nullptr;
  QLineEdit* name_edit_ = nullptr;
  QLineEdit* doc_edit_ = nullptr;
  CollabEditor* editor_ = nullptr;
  QGroupBox* todo_box_ = nullptr;
  QListWidget* todo_list_ = nullptr;
  QLineEdit* new_todo_edit_ = nullptr;
  QListWidget* conflict_list_ = nullptr;
  QLineEdit* merge_edit_ = nullptr;
  QLineEdit* key_edit_ = nullptr;
  QLabel* access_label_ = nullptr;
  QCheckBox* encrypted_check_ = nullptr;
  QLabel* encryption_label_ = nullptr;
  QListWidget* member_list_ = nullptr;
  QLineEdit* invite_edit_ = nullptr;
  QComboBox* invite_role_ = nullptr;
  QPushButton* invite_button_ = nullptr;
  QPushButton* revoke_button_ = nullptr;
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
// A key as the members view shows it: its first 8 and last 4 hexadecimal characters.
QString ShortKey(const PublicKey& key);

}  // namespace weft::demo
