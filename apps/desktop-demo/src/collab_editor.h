// The text editor of the demo: a QPlainTextEdit that also shows other people's cursors (a caret
// in their colour with their name) and selections (a tint of their colour).
//
// GUI thread only, like every widget.
#pragma once

#include <QColor>
#include <QPlainTextEdit>
#include <QString>
#include <vector>

namespace weft::demo {

struct RemoteCursor {
  QString name;
  QColor color;
  int position = 0;  // UTF-16 positions in the editor
  int anchor = 0;
};

class CollabEditor : public QPlainTextEdit {
  Q_OBJECT
 public:
  explicit CollabEditor(QWidget* parent = nullptr);
  // Replaces the remote cursors shown (positions are clamped to the text).
  void SetRemoteCursors(std::vector<RemoteCursor> cursors);
  const std::vector<RemoteCursor>& remote_cursors() const { return remote_; }

 protected:
  void paintEvent(QPaintEvent* event) override;

 private:
  std::vector<RemoteCursor> remote_;
};

}  // namespace weft::demo
