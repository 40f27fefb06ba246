#include "collab_editor.h"

#include <QPainter>
#include <QTextBlock>
#include <algorithm>

namespace weft::demo {

CollabEditor::CollabEditor(QWidget* parent) : QPlainTextEdit(parent) {
  // Remote edits arrive between local ones: an undo stack would undo other people's work.
  setUndoRedoEnabled(false);
  setLineWrapMode(QPlainTextEdit::WidgetWidth);
}

void CollabEditor::SetRemoteCursors(std::vector<RemoteCursor> cursors) {
  const int last = std::max(0, document()->characterCount() - 1);
  QList<QTextEdit::ExtraSelection> selections;
  for (RemoteCursor& c : cursors) {
    c.position = std::clamp(c.position, 0, last);
    c.anchor = std::clamp(c.anchor, 0, last);
    if (c.position == c.anchor) continue;
    QTextEdit::ExtraSelection sel;
    sel.cursor = QTextCursor(document());
    sel.cursor.setPosition(c.anchor);
    sel.cursor.setPosition(c.position, QTextCursor::KeepAnchor);
    QColor tint = c.color;
    tint.setAlpha(70);
    sel.format.setBackground(tint);
    selections.append(sel);
  }
  remote_ = std::move(cursors);
  setExtraSelections(selections);
  viewport()->update();
}

void CollabEditor::paintEvent(QPaintEvent* event) {
  QPlainTextEdit::paintEvent(event);
  if (remote_.empty()) return;
  QPainter painter(viewport());
  QFont label_font = font();
  label_font.setPointSizeF(std::max(6.0, label_font.pointSizeF() * 0.75));
  const QFontMetrics fm(label_font);
  for (const RemoteCursor& c : remote_) {
    QTextCursor tc(document());
    tc.setPosition(std::clamp(c.position, 0, std::max(0, document()->characterCount() - 1)));
    const QRect r = cursorRect(tc);
    painter.fillRect(QRect(r.left(), r.top(), 2, r.height()), c.color);
    // The name in a small flag above the caret (below it on the first line).
    const QString name = c.name;
    const int w = fm.horizontalAdvance(name) + 6, h = fm.height();
    QRect flag(r.left(), r.top() - h, w, h);
    if (flag.top() < 0) flag.moveTop(r.bottom() + 1);
    painter.fillRect(flag, c.color);
    painter.setPen(Qt::white);
    painter.setFont(label_font);
    painter.drawText(flag, Qt::AlignCenter, name);
  }
}

}  // namespace weft::demo
