#include "text_binding.h"

#include <QPlainTextEdit>
#include <QTextBlock>
#include <QTextCursor>
#include <QTextDocument>

#include "todo.h"
#include "weft/values.h"

namespace weft::demo {
namespace {

QString EditorText(QPlainTextEdit* editor) {
  return ModelForm(editor->document()->toRawText());
}

}  // namespace

TextBinding::TextBinding(QPlainTextEdit* editor, Replica* replica, std::string doc, QObject* parent)
    : QObject(parent), editor_(editor), replica_(replica), doc_(std::move(doc)) {
  connect(editor_->document(), &QTextDocument::contentsChange, this,
          &TextBinding::OnContentsChange);
}

Status TextBinding::ReadStored(std::string* text, crdt::VersionVector* version) {
  Status inner;
  Status s = replica_->Read(doc_, [&](const View& v) {
    auto t = v.root().Text(kTextKey);
    if (!t.ok()) {
      inner = t.status();
      return;
    }
    auto r = t->Read();
    if (!r.ok()) {
      inner = r.status();
      return;
    }
    text_id_ = t->id();
    *text = std::move(*r);
    *version = v.version();
  });
  return s.ok() ? inner : s;
}

Status TextBinding::Load() {
  std::string text;
  crdt::VersionVector version;
  WEFT_RETURN_IF_ERROR(ReadStored(&text, &version));
  applying_ = true;
  editor_->setPlainText(QString::fromStdString(text));
  applying_ = false;
  shadow_ = EditorText(editor_);
  seen_.clear();
  MarkSeen(version);
  return Status::Ok();
}

void TextBinding::MarkSeen(const crdt::VersionVector& version) {
  for (const auto& [node, seq] : version.entries()) {
    uint64_t& s = seen_[node];
    if (seq > s) s = seq;
  }
}

bool TextBinding::Seen(const crdt::Dot& change) const {
  auto it = seen_.find(change.node);
  return it != seen_.end() && it->second >= change.seq;
}

void TextBinding::OnEvent(const ChangeEvent& event) {
  if (event.local || Seen(event.change)) return;
  for (const crdt::Patch& p : event.patches) {
    if (p.object != text_id_) continue;
    TextEdit e;
    e.pos = Utf16Index(shadow_, p.index);
    if (p.type == crdt::Patch::Type::kInsert) {
      e.inserted = QString::fromStdString(p.text);
    } else if (p.type == crdt::Patch::Type::kDelete) {
      e.removed = Utf16Index(shadow_, p.index + p.length) - e.pos;
    } else {
      continue;
    }
    ApplyToEditor(e);
  }
  seen_[event.change.node] = std::max(seen_[event.change.node], event.change.seq);
}

void TextBinding::ApplyToEditor(const TextEdit& edit) {
  if (edit.empty()) return;
  QTextCursor local = editor_->textCursor();
  const int pos = Shift(local.position(), edit), anchor = Shift(local.anchor(), edit);
  applying_ = true;
  QTextCursor c(editor_->document());
  c.setPosition(edit.pos);
  c.setPosition(edit.pos + edit.removed, QTextCursor::KeepAnchor);
  if (edit.inserted.isEmpty()) {
    c.removeSelectedText();
  } else {
    c.insertText(edit.inserted);
  }
  applying_ = false;
  Apply(shadow_, edit);
  // Qt moves a cursor at an insertion point past the new text; ours stays before it.
  QTextCursor now = editor_->textCursor();
  if (now.position() != pos || now.anchor() != anchor) {
    now.setPosition(anchor);
    now.setPosition(pos, QTextCursor::KeepAnchor);
    editor_->setTextCursor(now);
  }
}

Status TextBinding::Reconcile() {
  std::string text;
  crdt::VersionVector version;
  WEFT_RETURN_IF_ERROR(ReadStored(&text, &version));
  const QString model = QString::fromStdString(text);
  shadow_ = EditorText(editor_);
  if (model != shadow_) ApplyToEditor(Diff(shadow_, model));
  MarkSeen(version);
  return Status::Ok();
}

void TextBinding::OnContentsChange(int, int, int) {
  if (applying_) return;
  const QString now = EditorText(editor_);
  const TextEdit local = Diff(shadow_, now);
  if (local.empty()) return;
  const QString base = shadow_;
  bool rebased = false;
  auto commit = replica_->Transact(doc_, [&](Txn& txn) -> Status {
    auto t = txn.root().Text(kTextKey);
    if (!t.ok()) return t.status();
    auto current = t->Read();
    if (!current.ok()) return current.status();
    QString work = QString::fromStdString(*current);
    std::vector<TextEdit> edits;
    if (work == base) {
      edits.push_back(local);
    } else {
      edits = Rebase(base, local, work);
      rebased = true;
    }
    for (const TextEdit& e : edits) {
      const size_t at = CodePointIndex(work, e.pos);
      const size_t len = CodePointIndex(work, e.pos + e.removed) - at;
      if (len > 0) WEFT_RETURN_IF_ERROR(t->Delete(at, len));
      if (!e.inserted.isEmpty()) WEFT_RETURN_IF_ERROR(t->Insert(at, e.inserted.toStdString()));
      Apply(work, e);
    }
    return Status::Ok();
  });
  if (!commit.ok()) {
    emit failed(QString::fromStdString("edit not saved: " + commit.status().ToString()));
    (void)Reconcile();  // show the text value again
    return;
  }
  shadow_ = now;
  if (rebased) {
    (void)Reconcile();
  } else {
    MarkSeen(commit->version);
  }
}

std::optional<std::pair<crdt::Anchor, crdt::Anchor>> TextBinding::CursorAnchors() {
  if (EditorText(editor_) != shadow_) return std::nullopt;
  const QTextCursor c = editor_->textCursor();
  const size_t pos = CodePointIndex(shadow_, c.position());
  const size_t anchor = CodePointIndex(shadow_, c.anchor());
  std::optional<std::pair<crdt::Anchor, crdt::Anchor>> out;
  (void)replica_->Read(doc_, [&](const View& v) {
    TextRef t(&v.document(), nullptr, text_id_);
    auto size = t.Size();
    if (!size.ok() || *size != CodePointIndex(shadow_, static_cast<int>(shadow_.size()))) return;
    auto a = t.AnchorAt(pos), b = t.AnchorAt(anchor);
    if (a.ok() && b.ok()) out.emplace(*a, *b);
  });
  return out;
}

std::optional<int> TextBinding::EditorPosition(const crdt::Anchor& anchor) {
  std::optional<int> out;
  (void)replica_->Read(doc_, [&](const View& v) {
    TextRef t(&v.document(), nullptr, text_id_);
    auto i = t.IndexOf(anchor);
    if (i.ok()) out = Utf16Index(shadow_, *i);
  });
  return out;
}

}  // namespace weft::demo
