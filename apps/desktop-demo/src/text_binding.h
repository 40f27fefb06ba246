// Binds a QPlainTextEdit to a Weft text value, character by character in both directions.
//
// Local edits (QTextDocument::contentsChange) become text deletes and inserts in one transaction
// each; remote changes from the change feed are applied to the editor as minimal edits through a
// QTextCursor, and the local cursor and selection are put back where they were, shifted only by
// the edit. A remote change committed after the editor last caught up (its feed event still on the
// way) is handled by rebasing the local edit onto the current text; after every batch the editor
// is checked against the text value and brought level if they differ, so the view cannot drift.
//
// Thread safety: GUI thread only. The owner feeds it change events (marshalled from SDK threads)
// through OnEvent, then calls Reconcile once per batch.
#pragma once

#include <QObject>
#include <QString>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include "text_diff.h"
#include "weft/replica.h"

class QPlainTextEdit;

namespace weft::demo {

class TextBinding : public QObject {
  Q_OBJECT
 public:
  // `editor` and `replica` must outlive the binding.
  TextBinding(QPlainTextEdit* editor, Replica* replica, std::string doc, QObject* parent = nullptr);

  // Reads the text value (creating nothing: the document must hold it) into the editor.
  Status Load();
  // Applies one change event of the document (local ones are already in the editor).
  void OnEvent(const ChangeEvent& event);
  // Brings the editor level with the text value if they differ (a no-op when they agree).
  Status Reconcile();

  // The local cursor and selection end as stable anchors (nullopt when the editor is not level
  // with the text value, e.g. between a remote commit and its event).
  std::optional<std::pair<crdt::Anchor, crdt::Anchor>> CursorAnchors();
  // The editor position of a remote anchor; nullopt when its character is not known here yet.
  std::optional<int> EditorPosition(const crdt::Anchor& anchor);

  ObjectId text_id() const { return text_id_; }

 signals:
  // A write or read failed; the editor was brought back to the text value.
  void failed(const QString& message);

 private:
  void OnContentsChange(int position, int removed, int added);
  void ApplyToEditor(const TextEdit& edit);
  // The stored text and the version it reflects (also sets text_id_).
  Status ReadStored(std::string* text, crdt::VersionVector* version);
  void MarkSeen(const crdt::VersionVector& version);
  bool Seen(const crdt::Dot& change) const;

  QPlainTextEdit* editor_;
  Replica* replica_;
  std::string doc_;
  ObjectId text_id_;
  QString shadow_;  // what the editor shows, in the model's form
  // Per author, a seq the editor reflects: a change starting at or before it is in the editor.
  std::map<crdt::NodeId, uint64_t> seen_;
  bool applying_ = false;
};

}  // namespace weft::demo
