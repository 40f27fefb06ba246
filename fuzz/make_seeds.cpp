// Writes the seed corpora of the fuzz targets (fuzz/corpus/<target>/): valid inputs of every kind
// that the fuzzers mutate. Deterministic; run by `make fuzz-seeds`, and its output is committed.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "fixtures.h"
#include "sync/wire.h"

namespace {

namespace fs = std::filesystem;
using namespace weft;
using crdt::ObjectKind;

void Write(const fs::path& dir, const std::string& name, const std::string& bytes) {
  fs::create_directories(dir);
  std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) {
    std::fprintf(stderr, "cannot write %s\n", (dir / name).c_str());
    std::exit(1);
  }
}

crdt::ObjectId At(const crdt::Document& d, const char* key) {
  auto r = d.Get(crdt::kRoot, key);
  fuzz::Expect(r.ok() && r->values.size() == 1 && r->values[0].value.is_object(), "seed key");
  return r->values[0].value.object().id;
}

// Changes by author C on the base document, one kind of op (or a mix) each.
std::vector<std::pair<std::string, crdt::Change>> SeedChanges() {
  crdt::Document c(fuzz::kAuthorC);
  const crdt::Document base = fuzz::BaseDocument();
  for (const auto& ch : base.history()) fuzz::Expect(c.ApplyChange(ch).ok(), "seed");
  std::vector<std::pair<std::string, crdt::Change>> out;
  uint64_t now = fuzz::kBaseTime + 2000;
  auto make = [&](const std::string& name, auto&& fn) {
    auto t = c.Begin(now++);
    fn(t);
    auto change = t.Commit();
    fuzz::Expect(change.has_value(), "seed change has ops");
    out.emplace_back(name, *change);
  };
  make("map_put",
       [&](auto& t) { fuzz::Expect(t.Put(At(c, "map"), "k2", crdt::Scalar("v")).ok(), "put"); });
  make("map_delete", [&](auto& t) { fuzz::Expect(t.Delete(At(c, "map"), "k").ok(), "delete"); });
  make("nested_objects", [&](auto& t) {
    auto m = t.PutObject(At(c, "map"), "inner", ObjectKind::kMap);
    fuzz::Expect(m.ok(), "nested");
    auto txt = t.PutObject(*m, "t", ObjectKind::kText);
    fuzz::Expect(txt.ok() && t.TextInsert(*txt, 0, "ab").ok(), "nested text");
  });
  make("register", [&](auto& t) {
    fuzz::Expect(t.SetRegister(At(c, "reg"), crdt::Scalar(int64_t{-5})).ok(), "reg");
  });
  make("lww", [&](auto& t) {
    fuzz::Expect(t.SetRegister(At(c, "lww"), crdt::Scalar(false)).ok(), "lww");
  });
  make("counter",
       [&](auto& t) { fuzz::Expect(t.Increment(At(c, "counter"), -3).ok(), "counter"); });
  make("set", [&](auto& t) {
    fuzz::Expect(t.SetAdd(At(c, "set"), crdt::Scalar("y")).ok(), "set add");
    fuzz::Expect(t.SetRemove(At(c, "set"), crdt::Scalar("x")).ok(), "set remove");
  });
  make("list", [&](auto& t) {
    fuzz::Expect(t.ListInsert(At(c, "list"), 1, {crdt::Scalar(1.5), crdt::Scalar()}).ok(), "list");
    fuzz::Expect(t.ListDelete(At(c, "list"), 0, 1).ok(), "list delete");
    fuzz::Expect(t.ListInsertObject(At(c, "list"), 0, ObjectKind::kCounter).ok(), "list obj");
  });
  make("text", [&](auto& t) {
    fuzz::Expect(t.TextInsert(At(c, "text"), 3, "ß€😀").ok(), "text insert");
    fuzz::Expect(t.TextDelete(At(c, "text"), 0, 2).ok(), "text delete");
  });
  make("root_mix", [&](auto& t) {
    fuzz::Expect(t.Put(crdt::kRoot, "n", crdt::Scalar(int64_t{1} << 40)).ok(), "root put");
    fuzz::Expect(t.PutObject(crdt::kRoot, "s2", ObjectKind::kSet).ok(), "root set");
    fuzz::Expect(t.Delete(crdt::kRoot, "b").ok(), "root delete");
  });
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: weft-fuzz-seeds CORPUS_DIR\n");
    return 2;
  }
  fs::path root(argv[1]);
  const crdt::Document base = fuzz::BaseDocument();
  auto changes = SeedChanges();

  // change_apply: each seed change, and the base document's own changes (duplicates).
  for (const auto& [name, ch] : changes) Write(root / "change_apply", name, crdt::EncodeChange(ch));
  int i = 0;
  for (const auto& ch : base.history()) {
    Write(root / "change_apply", "base_" + std::to_string(i++), crdt::EncodeChange(ch));
  }

  // snapshot_decode: the base with and without history, after every seed change, and empty.
  crdt::Document after = base;
  for (const auto& [name, ch] : changes) fuzz::Expect(after.ApplyChange(ch).ok(), "seed apply");
  Write(root / "snapshot_decode", "base", base.EncodeSnapshot(false));
  Write(root / "snapshot_decode", "base_history", base.EncodeSnapshot(true));
  Write(root / "snapshot_decode", "after", after.EncodeSnapshot(false));
  Write(root / "snapshot_decode", "after_history", after.EncodeSnapshot(true));
  Write(root / "snapshot_decode", "empty", crdt::Document(fuzz::kAuthorA).EncodeSnapshot(true));

  // wire_decode: one frame of every message kind.
  std::vector<std::string> blobs;
  for (const auto& [name, ch] : changes) blobs.push_back(crdt::EncodeChange(ch));
  sync::HelloMsg hello;
  hello.node = fuzz::kAuthorC;
  hello.credentials = "token";
  hello.agent = "weft-sdk/0.1";
  hello.public_key = std::string(32, 'k');  // any 32 bytes: the proof is what is checked
  hello.nonce = std::string(sync::kNonceBytes, 'n');
  hello.audience = "ws://127.0.0.1:8787";
  sync::HelloMsg hello_all = hello;
  hello_all.all_documents = true;
  sync::HaveMsg have{"doc", base.version()};
  sync::HaveMsg have_empty{"doc", {}};
  sync::ChangesMsg batch{"doc", blobs, {fuzz::kAuthorC}, {}, 0, false};
  sync::AckMsg ack{"doc", after.version()};
  std::string snap = base.EncodeSnapshot(false);
  sync::SnapshotChunkMsg chunk{"doc", base.version(), 0, snap.size(), snap, std::nullopt};
  sync::PresenceMsg presence{"doc", fuzz::kAuthorC, "{\"cursor\":3}", {fuzz::kAuthorC}};
  sync::ErrorMsg error{sync::ErrorCode::kMalformed, "bad frame", "doc", true};
  sync::AuthMsg auth{std::string(64, 's'), 1'700'000'000};
  const std::vector<std::pair<std::string, sync::Message>> messages = {{"hello", hello},
                                                                       {"hello_all", hello_all},
                                                                       {"have", have},
                                                                       {"have_empty", have_empty},
                                                                       {"changes", batch},
                                                                       {"ack", ack},
                                                                       {"snapshot_chunk", chunk},
                                                                       {"presence", presence},
                                                                       {"error", error},
                                                                       {"auth", auth}};
  for (const auto& [name, m] : messages) Write(root / "wire_decode", name, sync::Encode(m));

  // relay_handshake: frame sequences a device might send.
  auto frames = [](std::vector<sync::Message> ms) {
    std::vector<std::string> out;
    for (const auto& m : ms) out.push_back(sync::Encode(m));
    return fuzz::JoinFrames(out);
  };
  sync::HelloMsg future = hello;
  future.protocol_version = sync::kProtocolVersion + 1;
  sync::ChangesMsg one{"doc", {blobs[0]}, {fuzz::kAuthorC}, {}, 0, false};
  Write(root / "relay_handshake", "hello", frames({hello}));
  Write(root / "relay_handshake", "hello_all", frames({hello_all}));
  Write(root / "relay_handshake", "hello_auth", frames({hello, auth, have}));
  Write(root / "relay_handshake", "future_version", frames({future}));
  Write(root / "relay_handshake", "have_before_hello", frames({have}));
  Write(root / "relay_handshake", "sync_one_doc", frames({hello, have, batch, ack}));
  Write(root / "relay_handshake", "new_doc", frames({hello, sync::HaveMsg{"new", {}}, one}));
  Write(root / "relay_handshake", "presence", frames({hello, have_empty, presence}));
  Write(root / "relay_handshake", "error", frames({hello, error}));

  // access_ops: changes of the owned fixture's members (fixtures.h, OwnedDocument).
  {
    const crdt::Document owned = fuzz::OwnedDocument();
    auto member = [&](crdt::NodeId node) {
      crdt::Document d(node);
      for (const crdt::Change& c : owned.history()) fuzz::Expect(d.ApplyChange(c).ok(), "merge");
      return d;
    };
    auto commit = [](crdt::Transaction& t) {
      auto c = t.Commit();
      fuzz::Expect(c.has_value(), "seed commit");
      return crdt::EncodeChange(*c);
    };
    crdt::Document admin = member(fuzz::kAuthorB), writer = member(fuzz::kAuthorC);
    crdt::Document owner = member(fuzz::kSelf);
    std::string grant, revoke, write, write2, owner_revokes_admin;
    {
      auto t = admin.Begin(fuzz::kBaseTime + 2000);
      fuzz::Expect(t.Grant(fuzz::FixtureKey('d'), crdt::Role::kReader).ok(), "seed grant");
      grant = commit(t);
    }
    {
      auto t = admin.Begin(fuzz::kBaseTime + 3000);
      fuzz::Expect(t.Revoke(fuzz::FixtureKey('c')).ok(), "seed revoke");
      revoke = commit(t);
    }
    {
      auto t = writer.Begin(fuzz::kBaseTime + 2500);  // concurrent with the revoke: cut off
      fuzz::Expect(t.Put(crdt::kRoot, "k", crdt::Scalar("late")).ok(), "seed write");
      write = commit(t);
      auto t2 = writer.Begin(fuzz::kBaseTime + 2600);
      fuzz::Expect(t2.Put(crdt::kRoot, "k2", crdt::Scalar("later")).ok(), "seed write 2");
      write2 = commit(t2);
    }
    {
      // kSelf is not a member: it cannot revoke (refused), a stranger's attempt.
      auto t = owner.Begin(fuzz::kBaseTime + 2000);
      (void)t.Bind(fuzz::FixtureKey('e'), "proof-e");
      (void)t.Revoke(fuzz::FixtureKey('b'));
      auto c = t.Prepare();
      if (c) owner_revokes_admin = crdt::EncodeChange(*c);
    }
    Write(root / "access_ops", "grant", fuzz::JoinFrames({grant}));
    Write(root / "access_ops", "revoke_then_cut_write", fuzz::JoinFrames({revoke, write, write2}));
    Write(root / "access_ops", "write_then_revoke", fuzz::JoinFrames({write, revoke, write2}));
    Write(root / "access_ops", "grant_revoke", fuzz::JoinFrames({grant, revoke}));
    if (!owner_revokes_admin.empty()) {
      Write(root / "access_ops", "stranger_revokes", fuzz::JoinFrames({owner_revokes_admin}));
    }
  }
  // relay_session: sessions of the authenticated device (fixtures.h, session).
  {
    namespace s = fuzz::session;
    const fs::path dir = root / "relay_session";
    constexpr uint8_t kEnd = s::kEndBurst;
    auto op = [](uint8_t code, std::vector<uint8_t> operands, std::string_view rest = {}) {
      std::string f(1, static_cast<char>(code));
      for (uint8_t b : operands) f.push_back(static_cast<char>(b));
      f.append(rest);
      return f;
    };
    auto have = [&](s::Doc doc, uint8_t version, uint8_t flags = s::kEndBurst) {
      return op(s::kHave | flags, {doc, version});
    };
    // A Changes frame of prepared changes (one byte each) and raw blobs.
    auto changes = [&](s::Doc doc, std::vector<uint8_t> picks, uint8_t path = s::kPathDevice,
                       uint8_t flags = s::kEndBurst, std::vector<std::string> raw = {}) {
      std::vector<std::string> blobs;
      for (uint8_t p : picks) blobs.emplace_back(1, static_cast<char>(p));
      for (auto& r : raw) blobs.push_back(std::move(r));
      return op(s::kChanges | flags, {doc, path}, fuzz::JoinFrames(blobs));
    };
    auto write = [&](const std::string& name, bool all, const std::vector<std::string>& frames) {
      Write(dir, name, std::string(1, all ? '\1' : '\0') + fuzz::JoinFrames(frames));
    };
    const uint8_t nonfatal_invalid = static_cast<uint8_t>(sync::ErrorCode::kInvalidChange);
    const uint8_t denied = static_cast<uint8_t>(sync::ErrorCode::kPermissionDenied);
    write("handshake_only", false, {});
    write("all_documents", true, {op(s::kTick, {})});
    write("read_every_doc", false,
          {have(s::kShared, s::kEmpty, 0), have(s::kTeam, s::kPristine, 0),
           have(s::kBoard, s::kOlder, 0), have(s::kPrivate, s::kEmpty, 0), have(s::kNew, s::kEmpty),
           have(s::kShared, s::kOlder | s::kRightDigest),
           have(s::kTeam, s::kCurrent | s::kWrongDigest)});
    write("team_writes", false,
          {have(s::kTeam, s::kPristine),
           changes(s::kTeam, {s::kTeamWrite, s::kTeamText, s::kTeamCounter}),
           op(s::kAck | kEnd, {s::kTeam, s::kCurrent})});
    write("team_burst", false,
          {have(s::kTeam, s::kPristine, 0), changes(s::kTeam, {s::kTeamWrite}, s::kPathDevice, 0),
           changes(s::kTeam, {s::kTeamText}, s::kPathDevice, 0),
           changes(s::kTeam, {s::kTeamCounter}, 0, kEnd), have(s::kTeam, s::kCurrent)});
    write("reader_writes", false,
          {have(s::kShared, s::kPristine), changes(s::kShared, {s::kSharedWrite}), op(s::kTick, {}),
           changes(s::kShared, {s::kSharedBind})});
    write("stranger_writes", false,
          {have(s::kPrivate, s::kPristine), changes(s::kPrivate, {s::kPrivateWrite}),
           op(s::kError | kEnd, {s::kPrivate, nonfatal_invalid}, "stop"),
           have(s::kPrivate, s::kEmpty), changes(s::kPrivate, {s::kPrivateWrite})});
    for (auto [name, pick] :
         {std::pair{"forged_author", s::kTeamForgedAuthor},
          std::pair{"self_admin", s::kTeamSelfAdmin}, std::pair{"bad_binding", s::kTeamBadBinding},
          std::pair{"future_change", s::kTeamFuture},
          std::pair{"owners_change", s::kPrivateOwnersNext}}) {
      s::Doc doc = pick == s::kPrivateOwnersNext ? s::kShared : s::kTeam;
      write(name, false,
            {have(doc, s::kPristine), changes(doc, {pick}), op(s::kTick, {}),
             changes(doc, {s::kTeamWrite})});
    }
    write("device_document", false,
          {have(s::kMine, s::kEmpty), changes(s::kMine, {s::kMineCreate, s::kMineGrant}),
           have(s::kMine, s::kCurrent), op(s::kTimer, {3})});
    write("public_document", true,
          {have(s::kBoard, s::kPristine), changes(s::kBoard, {s::kBoardWrite}, 0),
           op(s::kAck | kEnd, {s::kBoard, s::kDeviceVersion})});
    write("revoked", false,
          {have(s::kTeam, s::kPristine), have(s::kShared, s::kOlder), op(s::kOwnerStep, {}),
           op(s::kOwnerStep, {}), op(s::kOwnerStep, {}), op(s::kOwnerStep, {}),
           changes(s::kTeam, {s::kTeamWrite}), have(s::kTeam, s::kEmpty), op(s::kOwnerStep, {}),
           op(s::kOwnerStep, {}), op(s::kTick, {}), have(s::kShared, s::kEmpty)});
    write("granted", true,
          {have(s::kPrivate, s::kEmpty), op(s::kOwnerStep, {}), op(s::kOwnerStep, {}),
           op(s::kOwnerStep, {}), have(s::kPrivate, s::kEmpty), op(s::kTick, {}),
           op(s::kOwnerStep, {}), op(s::kOwnerStep, {}), op(s::kOwnerStep, {}),
           op(s::kOwnerStep, {}), have(s::kPrivate, s::kCurrent)});
    write("presence", false,
          {have(s::kShared, s::kPristine), op(s::kPresence | kEnd, {s::kShared, 0}, "{\"at\":1}"),
           op(s::kOtherPresence, {s::kShared}, "{\"at\":2}"),
           op(s::kPresence | kEnd, {s::kTeam, 16}, "{}")});
    write("presence_after_error", false,
          {op(s::kError | kEnd, {s::kPrivate, nonfatal_invalid}, "stop"),
           op(s::kPresence | kEnd, {s::kPrivate, 0}, "{\"at\":1}")});
    write("presence_after_denied", false,
          {op(s::kError | kEnd, {s::kShared, denied}, "no"),
           op(s::kPresence | kEnd, {s::kShared, 0}, "{}"), have(s::kShared, s::kPristine)});
    write(
        "snapshot_over_shared", false,
        {have(s::kShared, s::kPristine), op(s::kSnapshot | kEnd, {s::kShared, s::kForgedShared})});
    write("snapshot_over_private", false,
          {op(s::kError | kEnd, {s::kPrivate, nonfatal_invalid}, "stop"),
           op(s::kSnapshot | kEnd, {s::kPrivate, s::kForgedPrivate})});
    write("snapshot_own", false,
          {have(s::kMine, s::kEmpty), op(s::kSnapshot | kEnd, {s::kMine, s::kDeviceMine}),
           have(s::kBoard, s::kPristine), op(s::kSnapshot | kEnd, {s::kBoard, s::kDeviceBoard}),
           have(s::kTeam, s::kPristine),
           op(s::kSnapshot | kEnd, {s::kTeam, static_cast<uint8_t>(s::kDeviceTeam | 0x10)})});
    write(
        "snapshot_raw", false,
        {have(s::kNew, s::kEmpty), op(s::kSnapshot | kEnd, {s::kNew, s::kSnapshotCount, s::kEmpty},
                                      crdt::Document(fuzz::kAuthorA).EncodeSnapshot(false))});
    write("slow_device", false,
          {have(s::kShared, s::kEmpty, kEnd | s::kNoDrain),
           have(s::kTeam, s::kEmpty, kEnd | s::kNoDrain), op(s::kOwnerStep, {}),
           op(s::kOwnerStep, {}), op(s::kTimer, {2}), op(s::kFlush, {})});
    write("close_then_frames", false,
          {have(s::kTeam, s::kPristine), op(s::kClose, {}), changes(s::kTeam, {s::kTeamWrite}),
           have(s::kPrivate, s::kEmpty), op(s::kOwnerStep, {})});
    write("fatal_error", false,
          {have(s::kTeam, s::kPristine, 0), op(s::kError, {0xFF, 0x80 | nonfatal_invalid}, "bye"),
           changes(s::kTeam, {s::kTeamWrite})});
    write("replayed_handshake", false, {op(s::kReplay | kEnd, {1}), op(s::kReplay | kEnd, {0})});
    write("loops_and_routes", false,
          {have(s::kTeam, s::kPristine),
           changes(s::kTeam, {s::kTeamWrite, s::kTeamText}, s::kPathLoop | s::kRoutes),
           changes(s::kTeam, {s::kTeamWrite}, s::kPathDevice | s::kRemaining),
           changes(s::kTeam, {s::kTeamCounter}, s::kEncrypted)});
    write("raw_frames", false,
          {op(s::kRaw | kEnd, {}, sync::Encode(sync::HaveMsg{"team", {}})),
           op(s::kRaw | kEnd, {}, "garbage")});
    write("new_documents", true,
          {have(s::kNew, s::kAhead),
           changes(s::kNew, {}, s::kPathDevice, kEnd,
                   {crdt::EncodeChange(base.history()[0]), crdt::EncodeChange(base.history()[1])}),
           op(s::kAck | kEnd, {s::kNew, s::kAhead})});
  }
  std::printf("wrote the seed corpora under %s\n", root.c_str());
  return 0;
}
