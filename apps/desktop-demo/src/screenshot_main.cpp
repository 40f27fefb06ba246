// weft-demo-screenshot DIR: a scripted session of the desktop demo, for the README and for a quick
// look at the whole thing working. It starts a relay in-process on a free loopback port, opens two
// windows side by side (Alice and Bob, two replicas), Alice invites Bob's key to her document,
// both type, fill the to-do list, go offline to make a conflict, come back online, and it writes
// PNG screenshots of both windows (alice.png, bob.png) and of the screen (desktop.png) to DIR. Run
// it under a display (make demo-screenshot uses xvfb-run). Exits non-zero when a step does not
// happen in time.
#include <QApplication>
#include <QDir>
#include <QElapsedTimer>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QPixmap>
#include <QPushButton>
#include <QScreen>
#include <QTemporaryDir>
#include <QTextCursor>
#include <QThread>
#include <cstdio>
#include <functional>

#include "demo_window.h"
#include "relay.h"

using weft::demo::DemoOptions;
using weft::demo::DemoWindow;
using namespace std::chrono_literals;

namespace {

bool WaitFor(const std::function<bool()>& cond, int ms = 10000) {
  QElapsedTimer t;
  t.start();
  while (t.elapsed() < ms) {
    QCoreApplication::processEvents(QEventLoop::AllEvents, 20);
    if (cond()) return true;
    QThread::msleep(10);
  }
  return cond();
}

void Pause(int ms) {
  WaitFor([] { return false; }, ms);
}

// Types like a person: one character at a time, at the cursor.
void Type(DemoWindow* w, const QString& text) {
  for (QChar c : text) {
    w->editor()->insertPlainText(QString(c));
    QCoreApplication::processEvents();
  }
}

void MoveCursor(DemoWindow* w, int anchor, int position) {
  QTextCursor c = w->editor()->textCursor();
  c.setPosition(anchor);
  c.setPosition(position, QTextCursor::KeepAnchor);
  w->editor()->setTextCursor(c);
}

std::string State(DemoWindow* w) {
  std::string s;
  (void)w->replica()->Read(w->doc(), [&](const weft::View& v) { s = v.CanonicalState(); });
  return s;
}

int Row(DemoWindow* w, const std::string& title) {
  for (size_t i = 0; i < w->todos().size(); ++i) {
    if (w->todos()[i].title() == title) return static_cast<int>(i);
  }
  return -1;
}

int Fail(const char* step) {
  std::fprintf(stderr, "weft-demo-screenshot: %s did not happen in time\n", step);
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  QApplication app(argc, argv);
  if (argc != 2) {
    std::fprintf(stderr, "usage: weft-demo-screenshot DIR\n");
    return 2;
  }
  const QString out = QString::fromLocal8Bit(argv[1]);
  if (!QDir().mkpath(out)) {
    std::fprintf(stderr, "weft-demo-screenshot: cannot create %s\n", argv[1]);
    return 1;
  }
  QTemporaryDir dir;
  weft::relay::RelayOptions ro;
  ro.listen_port = 0;
  ro.data_dir = dir.filePath("relay").toStdString();
  auto relay = weft::relay::Relay::Start(ro);
  if (!relay.ok()) {
    std::fprintf(stderr, "relay: %s\n", relay.status().ToString().c_str());
    return 1;
  }
  const std::string url = "ws://127.0.0.1:" + std::to_string((*relay)->port());

  const QRect screen = QGuiApplication::primaryScreen()->availableGeometry();
  const int half = screen.width() / 2;
  DemoWindow alice, bob;
  for (DemoWindow* w : {&alice, &bob}) {
    w->resize(half - 8, std::min(screen.height() - 8, 700));
    w->move(screen.left() + (w == &alice ? 0 : half + 4), screen.top());
    w->show();
  }
  weft::Status s = alice.Open(DemoOptions{dir.filePath("alice.db").toStdString(), url, "Alice"});
  if (s.ok()) s = alice.WaitForRelayAck(10s);
  if (s.ok()) s = bob.Open(DemoOptions{dir.filePath("bob.db").toStdString(), url, "Bob"});
  if (!s.ok()) {
    std::fprintf(stderr, "open: %s\n", s.ToString().c_str());
    return 1;
  }
  // Bob waits for an invitation; Alice pastes his key into her People panel and invites him.
  alice.invite_field()->setText(bob.key_field()->text());
  alice.invite_button()->click();
  if (!WaitFor([&] { return bob.has_document(); })) return Fail("Alice's invitation reaching Bob");

  // Alice writes; Bob adds a line below.
  Type(&alice,
       "Weft demo: this note is one CRDT text, stored on each replica first and synced "
       "through a relay.\n\nEvery keystroke is a change; the other window applies it without "
       "moving your cursor.\n");
  if (!WaitFor([&] { return bob.editor()->toPlainText() == alice.editor()->toPlainText(); })) {
    return Fail("Alice's text reaching Bob");
  }
  MoveCursor(&bob, bob.editor()->toPlainText().size(), bob.editor()->toPlainText().size());
  Type(&bob, "\nBob: and edits made offline merge when we reconnect.");

  // The to-do list.
  (void)alice.AddTodo("Try the Online/Offline toggle");
  (void)alice.AddTodo("Edit a title in both windows while offline");
  (void)bob.AddTodo("Read docs/architecture.md");
  if (!WaitFor([&] { return alice.todos().size() == 3 && bob.todos().size() == 3; })) {
    return Fail("the to-do items reaching both windows");
  }
  (void)bob.SetTodoDone(Row(&bob, "Try the Online/Offline toggle"), true);
  (void)bob.MoveTodo(Row(&bob, "Read docs/architecture.md"), -3);
  if (!WaitFor([&] { return State(&alice) == State(&bob); })) return Fail("the list converging");

  // A conflict: both offline, both rename the same item, back online.
  alice.SetOnline(false);
  bob.SetOnline(false);
  const std::string shared = "Edit a title in both windows while offline";
  (void)alice.SetTodoTitle(Row(&alice, shared), "Edit a title on both sides (Alice)");
  (void)bob.SetTodoTitle(Row(&bob, shared), "Rename this offline (Bob)");
  alice.SetOnline(true);
  bob.SetOnline(true);
  if (!WaitFor([&] { return State(&alice) == State(&bob) && !alice.conflicts().empty(); })) {
    return Fail("the offline edits converging");
  }

  // Cursors and a selection for presence: Alice's caret after "Weft demo", Bob selects "CRDT".
  MoveCursor(&alice, 9, 9);
  const int crdt = bob.editor()->toPlainText().indexOf("CRDT text");
  MoveCursor(&bob, crdt, crdt + 9);
  alice.conflict_list()->setCurrentRow(1);
  if (!WaitFor([&] {
        return alice.editor()->remote_cursors().size() == 1 &&
               alice.editor()->remote_cursors()[0].anchor !=
                   alice.editor()->remote_cursors()[0].position &&
               bob.editor()->remote_cursors().size() == 1;
      })) {
    return Fail("presence (the other's cursor)");
  }
  // The relay acknowledges everything: no replication lag left on either side.
  if (!WaitFor([&] {
        alice.Refresh();
        bob.Refresh();
        return alice.lag_label()->text().startsWith("Unacknowledged: 0 ") &&
               bob.lag_label()->text().startsWith("Unacknowledged: 0 ");
      })) {
    std::fprintf(stderr, "Alice: %s\nBob: %s\n", qPrintable(alice.lag_label()->text()),
                 qPrintable(bob.lag_label()->text()));
    return Fail("the relay's acknowledgements");
  }
  for (size_t i = 0; i < alice.todos().size(); ++i) {
    if (alice.todos()[i].conflicted()) alice.todo_list()->setCurrentRow(static_cast<int>(i));
  }
  Pause(300);

  bool ok = alice.grab().save(out + "/alice.png") && bob.grab().save(out + "/bob.png");
  QPixmap desktop = QGuiApplication::primaryScreen()->grabWindow(0);
  ok = ok && desktop.save(out + "/desktop.png");
  if (!ok) {
    std::fprintf(stderr, "weft-demo-screenshot: cannot write the screenshots to %s\n", argv[1]);
    return 1;
  }
  std::printf("wrote %s/alice.png, %s/bob.png and %s/desktop.png\n", argv[1], argv[1], argv[1]);
  alice.CloseSession();
  bob.CloseSession();
  (*relay)->Stop();
  return 0;
}
