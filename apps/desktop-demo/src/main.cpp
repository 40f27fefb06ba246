// weft-demo: the Qt 6 desktop demo. One window, one replica:
//   weft-demo --db alice.db --relay ws://127.0.0.1:8787 --name Alice [--doc demo] [--offline]
//             [--side left|right] [--encrypted]
// Every flag can also be set, and the document reopened, in the window.
#include <QApplication>
#include <QCommandLineParser>
#include <QMessageBox>
#include <QScreen>
#include <cstdlib>

#include "demo_window.h"

int main(int argc, char** argv) {
  QApplication app(argc, argv);
  QApplication::setApplicationName("weft-demo");
  QCommandLineParser parser;
  parser.setApplicationDescription("Weft desktop demo: a shared text and to-do list");
  parser.addHelpOption();
  QCommandLineOption db(QStringLiteral("db"), "Replica database file (created if missing).", "PATH",
                        "weft-demo.db");
  QCommandLineOption relay(QStringLiteral("relay"),
                           "Relay URL, ws://host:port (empty: local only).", "URL");
  const char* user = std::getenv("USER");
  QCommandLineOption name(QStringLiteral("name"), "Your name, shown to the others.", "NAME",
                          user ? QString::fromLocal8Bit(user) : QString("me"));
  QCommandLineOption doc(QStringLiteral("doc"), "Document ID.", "ID", "demo");
  QCommandLineOption offline(QStringLiteral("offline"), "Start offline.");
  QCommandLineOption side(QStringLiteral("side"),
                          "Place the window on the left or right half of the screen.",
                          "left|right");
  QCommandLineOption encrypted(QStringLiteral("encrypted"),
                               "A document new here is an encrypted note (end-to-end encrypted).");
  parser.addOptions({db, relay, name, doc, offline, side, encrypted});
  parser.process(app);

  weft::demo::DemoOptions options;
  options.db = parser.value(db).toStdString();
  options.relay = parser.value(relay).toStdString();
  options.name = parser.value(name).toStdString();
  options.doc = parser.value(doc).toStdString();
  options.online = !parser.isSet(offline);
  options.encrypted = parser.isSet(encrypted);

  weft::demo::DemoWindow window;
  if (parser.isSet(side)) {
    const QRect screen = QGuiApplication::primaryScreen()->availableGeometry();
    const int w = screen.width() / 2;
    window.resize(w - 10, std::min(screen.height() - 40, 700));
    window.move(screen.left() + (parser.value(side) == "right" ? w : 0), screen.top());
  }
  window.show();
  weft::Status s = window.Open(options);
  if (!s.ok()) {
    QMessageBox::warning(&window, "Weft demo",
                         QString::fromStdString("Cannot open the document: " + s.ToString()));
  }
  return app.exec();
}
