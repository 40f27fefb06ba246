// The desktop demo, end to end on the offscreen platform: two windows on two replicas and a relay
// started here on a free loopback port (secure, as weft-relay is by default: authenticated devices
// and access lists). The owner's document reaches the other person only once the owner invites
// their key; then typing in one window shows in the other (and the other's cursor stays put);
// both go offline, edit the text and the to-do list, come back online and converge, with each
// local cursor and selection on the same characters as before; a title edited on both sides shows
// in the conflict panel until one side picks a version.
//
// Waits are bounded (QTRY_*: they process events while polling) and only decide failure.
#include <QCheckBox>
#include <QComboBox>
#include <QDirIterator>
#include <QFile>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QPushButton>
#include <QTemporaryDir>
#include <QTextCursor>
#include <QtTest>
#include <memory>

#include "demo_window.h"
#include "presence.h"
#include "relay.h"
#include "text_diff.h"

using weft::Role;
using weft::demo::DemoOptions;
using weft::demo::DemoWindow;
using weft::demo::Diff;
using weft::demo::TextEdit;
using namespace std::chrono_literals;

namespace {

QString State(DemoWindow* w) {
  std::string s;
  (void)w->replica()->Read(w->doc(), [&](const weft::View& v) { s = v.CanonicalState(); });
  return QString::fromStdString(s);
}

QStringList Titles(DemoWindow* w) {
  QStringList out;
  for (const auto& t : w->todos()) out << QString::fromStdString(t.title());
  return out;
}

int Row(DemoWindow* w, const QString& title) {
  const auto& todos = w->todos();
  for (size_t i = 0; i < todos.size(); ++i) {
    if (QString::fromStdString(todos[i].title()) == title) return static_cast<int>(i);
  }
  return -1;
}

void Select(DemoWindow* w, int anchor, int position) {
  QTextCursor c = w->editor()->textCursor();
  c.setPosition(anchor);
  c.setPosition(position, QTextCursor::KeepAnchor);
  w->editor()->setTextCursor(c);
}

// The members view, row by row.
QStringList Members(DemoWindow* w) {
  QStringList out;
  for (int i = 0; i < w->member_list()->count(); ++i) out << w->member_list()->item(i)->text();
  return out;
}

QString Member(const weft::PublicKey& key, const char* role) {
  return weft::demo::ShortKey(key) + "   " + role;
}

}  // namespace

class DesktopDemoTest : public QObject {
  Q_OBJECT

 private slots:
  // The edit arithmetic the binding rests on.
  void textDiffAndRebase() {
    TextEdit e = Diff("Hello world", "Hello brave world");
    QCOMPARE(e.pos, 6);
    QCOMPARE(e.removed, 0);
    QCOMPARE(e.inserted, QString("brave "));
    e = Diff("abc", "ac");
    QCOMPARE(e.pos, 1);
    QCOMPARE(e.removed, 1);
    // Never half a surrogate pair: U+1F600 and U+1F601 share their high surrogate.
    const QString a = QString::fromUtf8("x\xF0\x9F\x98\x80y"),
                  b = QString::fromUtf8("x\xF0\x9F\x98\x81y");
    e = Diff(a, b);
    QCOMPARE(e.pos, 1);
    QCOMPARE(e.removed, 2);
    QCOMPARE(e.inserted.size(), 2);
    QCOMPARE(weft::demo::CodePointIndex(a, 3), size_t{2});
    QCOMPARE(weft::demo::Utf16Index(a, 2), 3);
    QCOMPARE(weft::demo::Utf16Index(a, 99), 4);
    // Cursors: left of an insertion point they stay; inside a deletion they go to its start.
    QCOMPARE(weft::demo::Shift(3, TextEdit{3, 0, "ab"}), 3);
    QCOMPARE(weft::demo::Shift(4, TextEdit{3, 0, "ab"}), 6);
    QCOMPARE(weft::demo::Shift(4, TextEdit{2, 3, ""}), 2);
    QCOMPARE(weft::demo::Shift(7, TextEdit{2, 3, "x"}), 5);
    // Rebasing a local edit onto text that changed remotely.
    auto apply = [](QString text, const std::vector<TextEdit>& edits) {
      for (const TextEdit& x : edits) weft::demo::Apply(text, x);
      return text;
    };
    const QString base = "Hello world";
    QCOMPARE(
        apply("Hi, Hello world", weft::demo::Rebase(base, TextEdit{11, 0, "!"}, "Hi, Hello world")),
        QString("Hi, Hello world!"));
    QCOMPARE(apply("Hello world!", weft::demo::Rebase(base, TextEdit{0, 0, ">"}, "Hello world!")),
             QString(">Hello world!"));
    // Local deletes "lo wo" while the remote side replaced "o w" by "O_W": only what is left of
    // the local deletion outside the remote region goes.
    QCOMPARE(apply("HellO_World", weft::demo::Rebase(base, TextEdit{3, 5, ""}, "HellO_World")),
             QString("HelO_Wrld"));
  }

  // Presence comes from other peers: anything malformed is refused.
  void presencePayloads() {
    weft::demo::Presence p;
    p.name = "Al\tice";
    p.color = "#12abEF";
    p.cursor =
        weft::crdt::Anchor{weft::crdt::Dot{weft::crdt::NodeId{0xabc}, 7}, weft::crdt::Bias::kLeft};
    p.anchor = weft::crdt::Anchor{};  // the start of the text
    auto back = weft::demo::DecodePresence(weft::demo::EncodePresence(p));
    QVERIFY(back.has_value());
    QCOMPARE(back->name, std::string("Alice"));
    QCOMPARE(back->color, std::string("#12abEF"));
    QVERIFY(back->cursor == p.cursor);
    QVERIFY(back->anchor == p.anchor);
    for (const char* bad :
         {"", "weft-demo-presence/1", "weft-demo-presence/1\nA\n#123456\n-",
          "other\nA\n#123456\n-\n-", "weft-demo-presence/1\n\n#123456\n-\n-",
          "weft-demo-presence/1\nA\nred\n-\n-", "weft-demo-presence/1\nA\n#123456\nzz.1.L\n-",
          "weft-demo-presence/1\nA\n#123456\nab.0.L\n-",
          "weft-demo-presence/1\nA\n#123456\nab.1.X\n-",
          "weft-demo-presence/1\nA\n#123456\n0.3.L\n-",
          "weft-demo-presence/1\nA\n#123456\nab.-1.L\n-",
          "weft-demo-presence/1\nA\n#123456\nab.1.L.L\n-"}) {
      QVERIFY2(!weft::demo::DecodePresence(bad).has_value(), bad);
    }
  }

  void initTestCase() {
    QVERIFY(dir_.isValid());
    weft::relay::RelayOptions o;
    o.listen_port = 0;  // a free port
    o.data_dir = dir_.filePath("relay").toStdString();
    o.durability = weft::Durability::kNormal;
    auto relay = weft::relay::Relay::Start(o);
    QVERIFY2(relay.ok(), relay.status().ToString().c_str());
    relay_ = std::move(*relay);
    url_ = "ws://127.0.0.1:" + std::to_string(relay_->port());

    a_ = std::make_unique<DemoWindow>();
    b_ = std::make_unique<DemoWindow>();
    DemoOptions oa{dir_.filePath("alice.db").toStdString(), url_, "Alice"};
    oa.initial_sync = 10s;
    weft::Status s = a_->Open(oa);
    QVERIFY2(s.ok(), s.ToString().c_str());
    // Bob's window opens once the relay holds Alice's document (its text and list), and waits
    // for Alice to invite him (ownerInvitesTheOtherPerson does it through the panel).
    s = a_->WaitForRelayAck(10s);
    QVERIFY2(s.ok(), s.ToString().c_str());
    DemoOptions ob{dir_.filePath("bob.db").toStdString(), url_, "Bob"};
    ob.initial_sync = 10s;  // returns as soon as the relay refuses Bob the document
    s = b_->Open(ob);
    QVERIFY2(s.ok(), s.ToString().c_str());
    QVERIFY(b_->waiting_for_invitation());
    s = a_->Invite(b_->key_field()->text(), Role::kWriter);
    QVERIFY2(s.ok(), s.ToString().c_str());
    QTRY_VERIFY_WITH_TIMEOUT(b_->has_document(), 15000);
    a_->show();
    b_->show();
    QCOMPARE(a_->editor()->toPlainText(), QString());
    QTRY_VERIFY_WITH_TIMEOUT(State(a_.get()) == State(b_.get()), 10000);
  }

  // The security flow, through the windows' panels: the owner's document reaches nobody else;
  // the other person's window shows their key and waits (creating no document of its own); the
  // owner invites that key as a writer; the document then opens there, the invited person's
  // edits reach the owner, and both windows list both members with their roles. Revoked, the
  // person's later edits no longer reach the owner.
  void ownerInvitesTheOtherPerson() {
    DemoWindow owner, guest;
    DemoOptions oo{dir_.filePath("owner.db").toStdString(), url_, "Olga"};
    oo.doc = "plans";
    oo.initial_sync = 10s;
    weft::Status s = owner.Open(oo);
    QVERIFY2(s.ok(), s.ToString().c_str());
    QCOMPARE(owner.role(), Role::kOwner);
    QVERIFY(owner.access().owned);
    QVERIFY(owner.invite_button()->isEnabled());
    const weft::PublicKey owner_key = owner.replica()->public_key();
    QCOMPARE(owner.key_field()->text(), QString::fromStdString(owner_key.ToHex()));
    QCOMPARE(Members(&owner), QStringList({Member(owner_key, "owner (you)")}));
    QTest::keyClicks(owner.editor(), "Secret plan");
    s = owner.WaitForRelayAck(10s);
    QVERIFY2(s.ok(), s.ToString().c_str());

    DemoOptions og{dir_.filePath("guest.db").toStdString(), url_, "Gus"};
    og.doc = "plans";
    og.initial_sync = 10s;
    s = guest.Open(og);
    QVERIFY2(s.ok(), s.ToString().c_str());
    const weft::PublicKey guest_key = guest.replica()->public_key();
    QVERIFY(guest_key != owner_key);
    QCOMPARE(guest.key_field()->text(), QString::fromStdString(guest_key.ToHex()));
    // Not invited: nothing arrives, nothing can be written, and no document of the same name is
    // made here.
    QVERIFY(guest.waiting_for_invitation());
    QVERIFY(guest.access_label()->text().startsWith("Waiting for an invitation"));
    QVERIFY(guest.editor()->isReadOnly());
    QVERIFY(!guest.invite_button()->isEnabled());
    QVERIFY(!guest.AddTodo("mine").ok());
    QTest::qWait(500);
    QVERIFY(!guest.replica()->HasDocument("plans"));
    QCOMPARE(guest.editor()->toPlainText(), QString());
    QCOMPARE(guest.member_list()->count(), 0);

    // A key that does not parse invites nobody.
    owner.invite_field()->setText("not a key");
    owner.invite_button()->click();
    QCOMPARE(Members(&owner), QStringList({Member(owner_key, "owner (you)")}));

    // The owner pastes the guest's key, picks "writer" and presses Invite.
    owner.invite_field()->setText(guest.key_field()->text());
    owner.invite_role()->setCurrentIndex(owner.invite_role()->findText("writer"));
    owner.invite_button()->click();
    QCOMPARE(owner.invite_field()->text(), QString());
    QCOMPARE(Members(&owner),
             QStringList({Member(owner_key, "owner (you)"), Member(guest_key, "writer")}));

    // The guest's window gets the document, live, and may write.
    QTRY_VERIFY_WITH_TIMEOUT(guest.has_document(), 15000);
    QTRY_COMPARE_WITH_TIMEOUT(guest.editor()->toPlainText(), QString("Secret plan"), 10000);
    QCOMPARE(guest.role(), Role::kWriter);
    QVERIFY(!guest.editor()->isReadOnly());
    QVERIFY(!guest.invite_button()->isEnabled());  // a writer does not invite
    QCOMPARE(guest.access_label()->text(), QString("You are a writer of this document."));
    QCOMPARE(Members(&guest),
             QStringList({Member(owner_key, "owner"), Member(guest_key, "writer (you)")}));

    // Its edits reach the owner.
    Select(&guest, 11, 11);
    QTest::keyClicks(guest.editor(), ", agreed");
    QVERIFY(guest.AddTodo("bring snacks").ok());
    QTRY_COMPARE_WITH_TIMEOUT(owner.editor()->toPlainText(), QString("Secret plan, agreed"), 10000);
    QTRY_COMPARE_WITH_TIMEOUT(Titles(&owner), QStringList({"bring snacks"}), 10000);
    QTRY_VERIFY_WITH_TIMEOUT(State(&owner) == State(&guest), 10000);

    // Revoked (selected in the list, then the button): the list shows the owner alone, and the
    // guest's later edits stay on the guest's device.
    for (int i = 0; i < owner.member_list()->count(); ++i) {
      if (owner.member_list()->item(i)->text() == Member(guest_key, "writer")) {
        owner.member_list()->setCurrentRow(i);
      }
    }
    owner.revoke_button()->click();
    QCOMPARE(Members(&owner), QStringList({Member(owner_key, "owner (you)")}));
    s = owner.WaitForRelayAck(10s);
    QVERIFY2(s.ok(), s.ToString().c_str());
    QTRY_VERIFY_WITH_TIMEOUT(
        (guest.Refresh(), guest.connection_label()->text().contains("permission denied")), 10000);
    Select(&guest, 0, 0);
    QTest::keyClicks(guest.editor(), "Not ");
    QTest::qWait(500);
    QCOMPARE(owner.editor()->toPlainText(), QString("Secret plan, agreed"));
    guest.CloseSession();
    owner.CloseSession();
  }

  // An encrypted note: opened with "Encrypted note" ticked, the window says it is end-to-end
  // encrypted at key epoch 0; nothing it sends and nothing in the relay's files holds its text or
  // its to-do; the person invited reads both (the invitation rotated the key: epoch 1) and writes
  // back. The plain document of the other windows says it is not encrypted.
  void encryptedNote() {
    DemoWindow owner, guest;
    DemoOptions oo{dir_.filePath("enc-owner.db").toStdString(), url_, "Erin"};
    oo.doc = "diary";
    oo.encrypted = true;
    oo.initial_sync = 10s;
    weft::Status s = owner.Open(oo);
    QVERIFY2(s.ok(), s.ToString().c_str());
    QVERIFY(owner.encrypted());
    QVERIFY(owner.encrypted_check()->isChecked());
    QCOMPARE(owner.role(), Role::kOwner);
    QVERIFY2(owner.encryption_label()->text().startsWith("End-to-end encrypted (key epoch 0)"),
             qPrintable(owner.encryption_label()->text()));
    // Pasted, so that the text is one insert (typed, each character would be its own).
    owner.editor()->insertPlainText("MARKER-7319 dear diary");
    QVERIFY(owner.AddTodo("MARKER-8842 buy a lock").ok());
    s = owner.WaitForRelayAck(10s);
    QVERIFY2(s.ok(), s.ToString().c_str());
    auto blobs = owner.replica()->ChangesSince("diary", {});
    QVERIFY2(blobs.ok(), blobs.status().ToString().c_str());
    QVERIFY(!blobs->empty());
    for (const auto& b : *blobs) QVERIFY(b.find("MARKER-") == std::string::npos);
    QVERIFY(!RelayFilesHold("MARKER-"));

    DemoOptions og{dir_.filePath("enc-guest.db").toStdString(), url_, "Gil"};
    og.doc = "diary";
    og.initial_sync = 10s;
    s = guest.Open(og);
    QVERIFY2(s.ok(), s.ToString().c_str());
    QVERIFY(guest.waiting_for_invitation());
    QVERIFY(!guest.encrypted());
    QCOMPARE(guest.encryption_label()->text(), QString());
    s = owner.Invite(guest.key_field()->text(), Role::kWriter);
    QVERIFY2(s.ok(), s.ToString().c_str());
    QVERIFY2(owner.encryption_label()->text().startsWith("End-to-end encrypted (key epoch 1)"),
             qPrintable(owner.encryption_label()->text()));
    QTRY_VERIFY_WITH_TIMEOUT(guest.has_document(), 15000);
    QTRY_COMPARE_WITH_TIMEOUT(guest.editor()->toPlainText(), QString("MARKER-7319 dear diary"),
                              10000);
    QTRY_COMPARE_WITH_TIMEOUT(Titles(&guest), QStringList({"MARKER-8842 buy a lock"}), 10000);
    QVERIFY(guest.encrypted());
    QTRY_VERIFY_WITH_TIMEOUT((guest.Refresh(), guest.encryption_label()->text().startsWith(
                                                   "End-to-end encrypted (key epoch 1)")),
                             10000);
    Select(&guest, 22, 22);
    guest.editor()->insertPlainText(", MARKER-5150 signed");
    QTRY_COMPARE_WITH_TIMEOUT(owner.editor()->toPlainText(),
                              QString("MARKER-7319 dear diary, MARKER-5150 signed"), 10000);
    QTRY_VERIFY_WITH_TIMEOUT(State(&owner) == State(&guest), 10000);
    QVERIFY(!RelayFilesHold("MARKER-"));

    // The control: the plain document of ownerInvitesTheOtherPerson is in the relay's files.
    QVERIFY(RelayFilesHold("bring snacks"));
    QVERIFY(!a_->encrypted());
    QCOMPARE(a_->encryption_label()->text(), QString("Not encrypted: the relay can read it."));
    guest.CloseSession();
    owner.CloseSession();
  }

  void typingShowsInTheOtherWindow() {
    Select(b_.get(), 0, 0);
    QTest::keyClicks(a_->editor(), "Hello");
    QCOMPARE(a_->editor()->toPlainText(), QString("Hello"));
    QTRY_COMPARE_WITH_TIMEOUT(b_->editor()->toPlainText(), QString("Hello"), 10000);
    // Alice typed at Bob's cursor: Bob's cursor stays where it was.
    QCOMPARE(b_->editor()->textCursor().position(), 0);
    // Bob sees Alice's cursor, in her name, after "Hello".
    QTRY_VERIFY_WITH_TIMEOUT(b_->editor()->remote_cursors().size() == 1 &&
                                 b_->editor()->remote_cursors()[0].position == 5,
                             10000);
    QCOMPARE(b_->editor()->remote_cursors()[0].name, QString("Alice"));
    QTRY_VERIFY_WITH_TIMEOUT(b_->peers_label()->text().contains("Alice"), 10000);

    // And back: Bob types at the end; Alice's cursor (also at the end) stays before his text.
    Select(b_.get(), 5, 5);
    QTest::keyClicks(b_->editor(), "!");
    QTRY_COMPARE_WITH_TIMEOUT(a_->editor()->toPlainText(), QString("Hello!"), 10000);
    QCOMPARE(a_->editor()->textCursor().position(), 5);
    QTest::keyClick(b_->editor(), Qt::Key_Backspace);
    QTRY_COMPARE_WITH_TIMEOUT(a_->editor()->toPlainText(), QString("Hello"), 10000);

    // Characters outside the BMP (two UTF-16 units, one code point in Weft).
    const QString smile = QString::fromUtf8("\xF0\x9F\x98\x80");
    Select(a_.get(), 5, 5);
    a_->editor()->insertPlainText(smile + "x");
    QTRY_COMPARE_WITH_TIMEOUT(b_->editor()->toPlainText(), "Hello" + smile + "x", 10000);
    Select(a_.get(), 8, 8);
    QTest::keyClick(a_->editor(), Qt::Key_Backspace);
    QTest::keyClick(a_->editor(), Qt::Key_Backspace);  // the smile: one code point
    QCOMPARE(a_->editor()->toPlainText(), QString("Hello"));
    QTRY_COMPARE_WITH_TIMEOUT(b_->editor()->toPlainText(), QString("Hello"), 10000);
  }

  void todoListIsShared() {
    QVERIFY(a_->AddTodo("milk").ok());
    QTRY_COMPARE_WITH_TIMEOUT(Titles(b_.get()), QStringList({"milk"}), 10000);
    QCOMPARE(b_->todo_list()->count(), 1);
    QCOMPARE(b_->todo_list()->item(0)->text(), QString("milk"));
  }

  void offlineEditsConvergeAndKeepTheCursor() {
    a_->online_button()->click();
    b_->online_button()->click();
    QVERIFY(!a_->online());
    QVERIFY(!b_->online());
    a_->Refresh();
    QCOMPARE(a_->connection_label()->text(), QString("Offline"));

    // Text: Alice appends, then selects "ell"; Bob types at the start.
    Select(a_.get(), 5, 5);
    QTest::keyClicks(a_->editor(), " world");
    Select(a_.get(), 1, 4);
    Select(b_.get(), 0, 0);
    QTest::keyClicks(b_->editor(), "Say: ");
    QCOMPARE(a_->editor()->toPlainText(), QString("Hello world"));
    QCOMPARE(b_->editor()->toPlainText(), QString("Say: Hello"));

    // List: Alice ticks "milk" (through the check box), renames it and adds "eggs"; Bob renames
    // it too, adds "bread" and moves it up.
    a_->todo_list()->item(Row(a_.get(), "milk"))->setCheckState(Qt::Checked);
    QVERIFY(a_->todos()[0].done());
    a_->todo_list()->item(Row(a_.get(), "milk"))->setText("whole milk");
    QCOMPARE(Titles(a_.get()), QStringList({"whole milk"}));
    QVERIFY(a_->AddTodo("eggs").ok());
    QVERIFY(b_->SetTodoTitle(Row(b_.get(), "milk"), "oat milk").ok());
    QVERIFY(b_->AddTodo("bread").ok());
    QVERIFY(b_->MoveTodo(Row(b_.get(), "bread"), -1).ok());
    QCOMPARE(Titles(b_.get()), QStringList({"bread", "oat milk"}));

    // Offline, the status area counts what the relay has not acknowledged.
    a_->Refresh();
    QVERIFY2(a_->lag_label()->text().startsWith("Unacknowledged: ") &&
                 !a_->lag_label()->text().startsWith("Unacknowledged: 0 "),
             qPrintable(a_->lag_label()->text()));
    QCOMPARE(State(a_.get()) == State(b_.get()), false);

    a_->online_button()->click();
    b_->online_button()->click();
    QTRY_VERIFY_WITH_TIMEOUT(!State(a_.get()).isEmpty() && State(a_.get()) == State(b_.get()),
                             15000);
    a_->Refresh();  // the list as the replicas now hold it (its feed events may still be queued)
    b_->Refresh();
    QTRY_COMPARE_WITH_TIMEOUT(a_->editor()->toPlainText(), QString("Say: Hello world"), 10000);
    QTRY_COMPARE_WITH_TIMEOUT(b_->editor()->toPlainText(), QString("Say: Hello world"), 10000);

    // Alice's selection is still "ell" (shifted by Bob's "Say: "); Bob's cursor is after "Say: ".
    QCOMPARE(a_->editor()->textCursor().anchor(), 6);
    QCOMPARE(a_->editor()->textCursor().position(), 9);
    QCOMPARE(a_->editor()->textCursor().selectedText(), QString("ell"));
    QCOMPARE(b_->editor()->textCursor().position(), 5);
    // Bob sees Alice's selection on the same characters.
    QTRY_VERIFY_WITH_TIMEOUT(b_->editor()->remote_cursors().size() == 1 &&
                                 b_->editor()->remote_cursors()[0].anchor == 6 &&
                                 b_->editor()->remote_cursors()[0].position == 9,
                             10000);

    // The list merged the same way on both sides: bread moved first, eggs last, milk ticked, and
    // its title in conflict.
    QTRY_COMPARE_WITH_TIMEOUT(a_->todos().size(), size_t{3}, 10000);
    QTRY_COMPARE_WITH_TIMEOUT(b_->todos().size(), size_t{3}, 10000);
    QCOMPARE(Titles(a_.get()), Titles(b_.get()));
    QCOMPARE(a_->todos()[0].title(), std::string("bread"));
    QCOMPARE(a_->todos()[2].title(), std::string("eggs"));
    QVERIFY(a_->todos()[1].done());
    QVERIFY(b_->todos()[1].done());
    QCOMPARE(b_->todo_list()->item(1)->checkState(), Qt::Checked);
    QCOMPARE(a_->todos()[1].titles.size(), size_t{2});
    QCOMPARE(a_->conflicts().size(), size_t{1});
    QCOMPARE(b_->conflicts().size(), size_t{1});
    QCOMPARE(a_->conflicts()[0].field, std::string("title"));
  }

  void conflictPanelPicksOneVersion() {
    QCOMPARE(a_->conflicts().size(), size_t{1});
    // The panel lists a header row and one row per version; pick "oat milk" with its button.
    QListWidget* panel = a_->conflict_list();
    QCOMPARE(panel->count(), 3);
    int row = -1;
    for (int i = 0; i < panel->count(); ++i) {
      if (panel->item(i)->text().trimmed() == "oat milk") row = i;
    }
    QVERIFY(row > 0);
    panel->setCurrentRow(row);
    QPushButton* keep = nullptr;
    for (QPushButton* p : a_->findChildren<QPushButton*>()) {
      if (p->text() == "Keep selected version") keep = p;
    }
    QVERIFY(keep);
    keep->click();
    QCOMPARE(a_->conflicts().size(), size_t{0});
    QCOMPARE(a_->todos()[1].title(), std::string("oat milk"));
    QTRY_COMPARE_WITH_TIMEOUT(b_->conflicts().size(), size_t{0}, 10000);
    QCOMPARE(b_->todos()[1].title(), std::string("oat milk"));
    QCOMPARE(b_->conflict_list()->count(), 0);

    // Delete and reorder after the merge.
    QVERIFY(b_->RemoveTodo(Row(b_.get(), "bread")).ok());
    QVERIFY(b_->MoveTodo(Row(b_.get(), "eggs"), -1).ok());
    QTRY_COMPARE_WITH_TIMEOUT(Titles(a_.get()), QStringList({"eggs", "oat milk"}), 10000);
    QTRY_VERIFY_WITH_TIMEOUT(State(a_.get()) == State(b_.get()), 10000);
  }

  // A done flag and a title both edited on both sides: the check box shows the mix, the panel
  // merges the titles into one and picks one flag.
  void conflictPanelMergesTitles() {
    a_->online_button()->click();
    b_->online_button()->click();
    a_->todo_list()->item(Row(a_.get(), "eggs"))->setCheckState(Qt::Checked);
    QVERIFY(a_->SetTodoTitle(Row(a_.get(), "eggs"), "brown eggs").ok());
    QVERIFY(b_->SetTodoDone(Row(b_.get(), "eggs"), false).ok());
    QVERIFY(b_->SetTodoTitle(Row(b_.get(), "eggs"), "6 eggs").ok());
    a_->online_button()->click();
    b_->online_button()->click();
    QTRY_COMPARE_WITH_TIMEOUT(b_->conflicts().size(), size_t{2}, 10000);
    QTRY_COMPARE_WITH_TIMEOUT(a_->conflicts().size(), size_t{2}, 10000);
    const int row = 0;  // eggs stays first
    QCOMPARE(b_->todos()[row].titles.size(), size_t{2});
    QCOMPARE(b_->todo_list()->item(row)->checkState(), Qt::PartiallyChecked);
    int title = -1, done = -1;
    for (size_t i = 0; i < b_->conflicts().size(); ++i) {
      (b_->conflicts()[i].field == "title" ? title : done) = static_cast<int>(i);
    }
    QVERIFY(title >= 0 && done >= 0);
    // Selecting a version of the title offers the versions joined, to edit and write.
    QListWidget* panel = b_->conflict_list();
    for (int i = 0; i < panel->count(); ++i) {
      if (panel->item(i)->data(Qt::UserRole).toInt() == title &&
          panel->item(i)->data(Qt::UserRole + 1).toInt() == 0) {
        panel->setCurrentRow(i);
      }
    }
    QLineEdit* merged = nullptr;
    for (QLineEdit* e : b_->findChildren<QLineEdit*>()) {
      if (e->placeholderText() == "merged text") merged = e;
    }
    QVERIFY(merged);
    QVERIFY(merged->text() == "brown eggs / 6 eggs" || merged->text() == "6 eggs / brown eggs");
    QCOMPARE(b_->MergeConflict(done, "x").code(), weft::StatusCode::kInvalidArgument);
    QVERIFY(b_->MergeConflict(title, "6 brown eggs").ok());
    QCOMPARE(b_->conflicts().size(), size_t{1});
    QCOMPARE(b_->conflicts()[0].field, std::string("done"));
    int yes = -1;
    for (size_t i = 0; i < b_->conflicts()[0].siblings.size(); ++i) {
      if (b_->conflicts()[0].siblings[i] == weft::Scalar(true)) yes = static_cast<int>(i);
    }
    QVERIFY(b_->ResolveConflict(0, yes).ok());
    QCOMPARE(b_->conflicts().size(), size_t{0});
    QTRY_COMPARE_WITH_TIMEOUT(a_->conflicts().size(), size_t{0}, 10000);
    QTRY_COMPARE_WITH_TIMEOUT(Titles(a_.get()), QStringList({"6 brown eggs", "oat milk"}), 10000);
    QCOMPARE(a_->todo_list()->item(0)->checkState(), Qt::Checked);
    QTRY_VERIFY_WITH_TIMEOUT(State(a_.get()) == State(b_.get()), 10000);
  }

  // A remote change committed before its feed event reached the window: the local edit made in
  // between is rebased onto the current text, and the late event is not applied twice.
  void localEditBetweenRemoteCommitAndItsEvent() {
    a_->online_button()->click();
    b_->online_button()->click();
    const QString before = b_->editor()->toPlainText();
    Select(a_.get(), 0, 0);
    a_->editor()->insertPlainText("X");
    // Alice's change reaches Bob's replica directly (no event loop turn: its event waits).
    auto blobs = a_->replica()->ChangesSince(a_->doc(), {});
    QVERIFY(blobs.ok());
    auto applied = b_->replica()->ApplyRemoteChanges(b_->doc(), *blobs);
    QVERIFY2(applied.ok(), applied.status().ToString().c_str());
    QCOMPARE(b_->editor()->toPlainText(), before);
    Select(b_.get(), before.size(), before.size());
    b_->editor()->insertPlainText("Y");
    QCOMPARE(b_->editor()->toPlainText(), "X" + before + "Y");
    QCOMPARE(b_->editor()->textCursor().position(), static_cast<int>(before.size()) + 2);
    QTest::qWait(100);  // the late event
    QCOMPARE(b_->editor()->toPlainText(), "X" + before + "Y");
    // Alice first: in an owned document the relay takes a device's own changes only, so Bob's
    // connection would be refused Alice's change (and stop the document until its next repair
    // round) if it reached the relay before Alice.
    a_->online_button()->click();
    weft::Status s = a_->WaitForRelayAck(10s);
    QVERIFY2(s.ok(), s.ToString().c_str());
    b_->online_button()->click();
    QTRY_COMPARE_WITH_TIMEOUT(a_->editor()->toPlainText(), "X" + before + "Y", 10000);
    QTRY_VERIFY_WITH_TIMEOUT(State(a_.get()) == State(b_.get()), 10000);
  }

  void cleanupTestCase() {
    a_.reset();
    b_.reset();
    if (relay_) relay_->Stop();
    relay_.reset();
  }

 private:
  QTemporaryDir dir_;
  // Whether any file of the relay's data directory (its database, WAL included) holds `needle`.
  bool RelayFilesHold(const std::string& needle) {
    QDirIterator it(dir_.filePath("relay"), QDir::Files, QDirIterator::Subdirectories);
    while (it.hasNext()) {
      QFile f(it.next());
      if (!f.open(QIODevice::ReadOnly)) continue;
      if (f.readAll().contains(QByteArray::fromStdString(needle))) return true;
    }
    return false;
  }

  std::unique_ptr<weft::relay::Relay> relay_;
  std::string url_;
  std::unique_ptr<DemoWindow> a_, b_;
};

QTEST_MAIN(DesktopDemoTest)
#include "desktop_demo_test.moc"
