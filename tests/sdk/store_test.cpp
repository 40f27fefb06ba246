// The storage seam's conformance suite (sdk/src/store.h): every test runs against every store,
// through a factory that opens a store on the same data again (a reopen). A new store
// implementation joins by adding a factory to Factories(). A replica running on each store at the
// end shows that the replica's logic needs nothing but the seam.
#include "store.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "memory_store.h"
#include "pg_store.h"
#include "replica_store.h"
#include "sqlite_store.h"
#include "support/pg_server.h"
#include "support/temp_dir.h"
#include "weft/replica.h"
#include "weft/testing/fault_vfs.h"

namespace weft {
namespace {

using store::Store;
using testing::TempDir;

// Opens stores on one set of data: each Open after the first finds what the ones before stored.
class StoreFactory {
 public:
  virtual ~StoreFactory() = default;
  virtual std::string name() const = 0;
  virtual Result<std::unique_ptr<Store>> Open() = 0;
  // Another replica's store on the same data (relays sharing a database); nullptr for a store
  // that is one replica's alone.
  virtual Result<std::unique_ptr<Store>> OpenPeer(const std::string&) {
    return std::unique_ptr<Store>();
  }
};

class SqliteFactory final : public StoreFactory {
 public:
  explicit SqliteFactory(Durability durability) { options_.durability = durability; }
  std::string name() const override { return "sqlite"; }
  Result<std::unique_ptr<Store>> Open() override {
    return store::OpenSqliteStore(dir_.File("store.db"), options_);
  }

 private:
  TempDir dir_;
  store::SqliteStoreOptions options_;
};

class MemoryFactory final : public StoreFactory {
 public:
  std::string name() const override { return "memory"; }
  Result<std::unique_ptr<Store>> Open() override { return store::OpenMemoryStore(storage_); }
  Result<std::unique_ptr<Store>> OpenPeer(const std::string& name) override {
    return store::OpenMemoryStore(storage_, {}, name);
  }

 private:
  std::shared_ptr<store::MemoryStorage> storage_ = store::NewMemoryStorage();
};

// A new database on the test process's PostgreSQL server (started on first use; a missing
// PostgreSQL fails the test, with the reason, when the store is opened).
class PgFactory final : public StoreFactory {
 public:
  explicit PgFactory(std::string name = "relay") { options_.name = std::move(name); }
  std::string name() const override { return "postgres"; }
  Result<std::unique_ptr<Store>> Open() override {
    if (conninfo_.empty()) {
      auto server = testing::PgServer::Shared();
      if (!server.ok()) return server.status();
      auto db = (*server)->CreateDatabase();
      if (!db.ok()) return db.status();
      conninfo_ = *db;
    }
    return store::OpenPgStore(conninfo_, options_);
  }
  Result<std::unique_ptr<Store>> OpenPeer(const std::string& name) override {
    return OpenPeer(name, true);
  }
  Result<std::unique_ptr<Store>> OpenPeer(const std::string& name, bool listen) {
    store::PgStoreOptions o;
    o.name = name;
    o.listen = listen;
    return store::OpenPgStore(conninfo_, o);
  }
  const std::string& conninfo() const { return conninfo_; }

 private:
  std::string conninfo_;
  store::PgStoreOptions options_;
};

std::unique_ptr<StoreFactory> MakeFactory(const std::string& kind) {
  // SQLite as a device has it, and with group commit (the relay's durability).
  if (kind == "sqlite") return std::make_unique<SqliteFactory>(Durability::kNormal);
  if (kind == "sqlite-group") return std::make_unique<SqliteFactory>(Durability::kGroup);
  if (kind == "postgres") return std::make_unique<PgFactory>();
  return std::make_unique<MemoryFactory>();
}

std::unique_ptr<Store> OpenStore(StoreFactory& f) {
  auto s = f.Open();
  INFO(s.status().ToString());
  REQUIRE(s.ok());
  return std::move(*s);
}

#define FOR_EVERY_STORE()                                                          \
  const std::string kind =                                                         \
      GENERATE(as<std::string>{}, "sqlite", "sqlite-group", "memory", "postgres"); \
  INFO("store: " << kind);                                                         \
  auto factory = MakeFactory(kind);                                                \
  auto st = OpenStore(*factory)

const NodeId kA{0xa1};
const NodeId kB{0xb2};

// A change's bytes as the store sees them: opaque (with a NUL byte, to show they are binary).
std::string Bytes(NodeId author, uint64_t seq) {
  return std::string("change\0", 7) + author.ToHex() + "." + std::to_string(seq);
}

store::NewChange Change(NodeId author, uint64_t seq, const std::string& data) {
  return {author, seq, seq, data};
}

struct Logged {
  uint64_t seq;
  NodeId author;
  uint64_t start_seq;
  std::string data;
  bool operator==(const Logged& o) const {
    return seq == o.seq && author == o.author && start_seq == o.start_seq && data == o.data;
  }
};

// Every row of the document's log, in log order.
std::vector<Logged> Rows(Store& s, std::string_view doc, store::LogRead read = {}) {
  std::vector<Logged> out;
  read.row = [&](const store::RowInfo& r, std::string_view data) {
    out.push_back({r.seq, r.author, r.start_seq, std::string(data)});
    return Status::Ok();
  };
  Status st = s.ReadLog(doc, read);
  INFO(st.ToString());
  REQUIRE(st.ok());
  return out;
}

std::vector<store::SegmentInfo> Segments(Store& s, std::string_view doc) {
  std::vector<store::SegmentInfo> out;
  store::LogRead read;
  read.with_heads = true;
  read.segment = [&](const store::SegmentInfo& g, std::string_view) {
    out.push_back(g);
    return Status::Ok();
  };
  REQUIRE(s.ReadLog(doc, read).ok());
  return out;
}

// Appends one change per seq of `author` in `seqs`, as one call.
store::AppendResult Append(Store& s, std::string_view doc, NodeId author,
                           std::vector<uint64_t> seqs) {
  std::vector<std::string> data;
  for (uint64_t q : seqs) data.push_back(Bytes(author, q));
  std::vector<store::NewChange> cs;
  for (size_t i = 0; i < seqs.size(); ++i) cs.push_back(Change(author, seqs[i], data[i]));
  auto r = s.AppendChanges(doc, 1000, cs);
  INFO(r.status().ToString());
  REQUIRE(r.ok());
  return *r;
}

TEST_CASE("store: a new store has a node ID that stays, and nothing else", "[store]") {
  FOR_EVERY_STORE();
  const NodeId node = st->node_id();
  CHECK(node.valid());
  CHECK(st->ListDocuments()->empty());
  CHECK_FALSE(*st->HasDocument("d"));
  CHECK(st->GetMeta({"x"})->empty());
  CHECK(*st->LastSeq("d") == 0);
  CHECK(Rows(*st, "d").empty());
  CHECK_FALSE(st->GetSnapshot("d")->has_value());
  CHECK_FALSE(st->GetBase("d", true)->has_value());
  CHECK(st->Close().ok());
  st = OpenStore(*factory);
  CHECK(st->node_id() == node);
}

TEST_CASE("store: metadata keeps text, integers and bytes, and a bad entry writes nothing",
          "[store]") {
  FOR_EVERY_STORE();
  const std::string bytes("\x00\x01\xff secret", 10);
  REQUIRE(st->PutMeta({{"t", "hello", store::MetaType::kText},
                       {"i", "42", store::MetaType::kInteger},
                       {"n", "-7", store::MetaType::kInteger},
                       {"b", bytes, store::MetaType::kBytes},
                       {"s", bytes, store::MetaType::kSecret}})
              .ok());
  auto m = st->GetMeta({"t", "i", "n", "b", "s", "missing"});
  REQUIRE(m.ok());
  CHECK(*m == std::map<std::string, std::string>{
                  {"t", "hello"}, {"i", "42"}, {"n", "-7"}, {"b", bytes}, {"s", bytes}});

  // An entry that is not what it claims fails the whole call, before anything is written.
  Status bad = st->PutMeta(
      {{"t", "changed", store::MetaType::kText}, {"i", "4x", store::MetaType::kInteger}});
  CHECK(bad.code() == StatusCode::kInvalidArgument);
  CHECK(bad.message().find("\"i\"") != std::string::npos);
  CHECK(st->PutMeta({{"", "v", store::MetaType::kText}}).code() == StatusCode::kInvalidArgument);
  for (const char* not_int : {"", "1.5", " 1", "99999999999999999999", "0x10"}) {
    CHECK(st->PutMeta({{"t", not_int, store::MetaType::kInteger}}).code() ==
          StatusCode::kInvalidArgument);
  }
  REQUIRE(st->PutMeta({{"big", "-9223372036854775808", store::MetaType::kInteger}}).ok());
  CHECK(st->GetMeta({"big"})->at("big") == "-9223372036854775808");
  CHECK(st->GetMeta({"t"})->at("t") == "hello");

  // Conditional writes: all of `expect` must match (integers compare in decimal).
  auto wrote = st->PutMetaIf({{"i", "42"}, {"t", "hello"}}, {{"t", "v2", store::MetaType::kText}});
  REQUIRE(wrote.ok());
  CHECK(*wrote);
  wrote = st->PutMetaIf({{"i", "41"}}, {{"t", "v3", store::MetaType::kText}});
  REQUIRE(wrote.ok());
  CHECK_FALSE(*wrote);
  wrote = st->PutMetaIf({{"missing", ""}}, {{"t", "v4", store::MetaType::kText}});
  REQUIRE(wrote.ok());
  CHECK_FALSE(*wrote);
  CHECK(st->GetMeta({"t"})->at("t") == "v2");

  REQUIRE(st->Close().ok());
  st = OpenStore(*factory);
  m = st->GetMeta({"t", "i", "b", "s"});
  REQUIRE(m.ok());
  CHECK(*m ==
        std::map<std::string, std::string>{{"t", "v2"}, {"i", "42"}, {"b", bytes}, {"s", bytes}});
}

TEST_CASE("store: appended changes get growing seqs and read back in log order", "[store]") {
  FOR_EVERY_STORE();
  auto r1 = Append(*st, "d", kA, {1, 2, 3});
  CHECK(r1.stored == 3);
  CHECK(r1.first_seq > 0);
  CHECK(r1.last_seq > r1.first_seq);
  CHECK(*st->HasDocument("d"));
  auto r2 = Append(*st, "e", kB, {1});
  auto r3 = Append(*st, "d", kB, {1, 2});
  CHECK(r3.first_seq > r1.last_seq);
  CHECK(st->ListDocuments().value() == std::vector<std::string>{"d", "e"});

  std::vector<Logged> rows = Rows(*st, "d");
  REQUIRE(rows.size() == 5);
  for (size_t i = 1; i < rows.size(); ++i) CHECK(rows[i - 1].seq < rows[i].seq);
  CHECK(rows[0] == Logged{r1.first_seq, kA, 1, Bytes(kA, 1)});
  CHECK(rows[4] == Logged{r3.last_seq, kB, 2, Bytes(kB, 2)});
  CHECK(Rows(*st, "e") == std::vector<Logged>{{r2.first_seq, kB, 1, Bytes(kB, 1)}});
  CHECK(*st->LastSeq("d") == r3.last_seq);

  SECTION("after and upto bound the rows") {
    store::LogRead read;
    read.after = rows[0].seq;
    read.upto = rows[3].seq;
    auto part = Rows(*st, "d", read);
    CHECK(part == std::vector<Logged>(rows.begin() + 1, rows.begin() + 4));
  }
  SECTION("by author: from the row holding a seq on, in log order") {
    store::LogRead read;
    read.authors = std::vector<std::pair<NodeId, uint64_t>>{{kB, 2}, {kA, 2}};
    auto part = Rows(*st, "d", read);
    CHECK(part == std::vector<Logged>{rows[1], rows[2], rows[4]});
  }
  SECTION("a row not wanted is skipped") {
    store::LogRead read;
    read.want_row = [](const store::RowInfo& r) { return r.author == kB; };
    CHECK(Rows(*st, "d", read) == std::vector<Logged>{rows[3], rows[4]});
  }
  SECTION("a reader's error stops the read and is returned") {
    store::LogRead read;
    int seen = 0;
    read.row = [&](const store::RowInfo&, std::string_view) {
      return ++seen == 2 ? Status::Aborted("enough") : Status::Ok();
    };
    CHECK(st->ReadLog("d", read).code() == StatusCode::kAborted);
    CHECK(seen == 2);
  }
  SECTION("what was stored is there after a reopen") {
    REQUIRE(st->Close().ok());
    st = OpenStore(*factory);
    CHECK(Rows(*st, "d") == rows);
  }
}

TEST_CASE("store: appending a change the log holds stores nothing for it", "[store]") {
  FOR_EVERY_STORE();
  std::vector<store::StoredNotice> notices;
  st->Watch([&](const store::StoredNotice& n) { notices.push_back(n); });
  auto first = Append(*st, "d", kA, {1, 2});
  // A retried batch, with one new change and a duplicate inside it.
  const std::string other = "another change at the same key", third = Bytes(kA, 3);
  std::vector<store::NewChange> again = {Change(kA, 2, other), Change(kA, 3, third),
                                         Change(kA, 3, third)};
  auto r = st->AppendChanges("d", 1, again);
  REQUIRE(r.ok());
  CHECK(r->stored == 1);
  CHECK(r->first_seq == r->last_seq);
  CHECK(r->first_seq > first.last_seq);
  auto rows = Rows(*st, "d");
  REQUIRE(rows.size() == 3);
  CHECK(rows[1].data == Bytes(kA, 2));  // the first one written stays
  // Nothing new: no notice.
  const std::string first_bytes = Bytes(kA, 1);
  auto none = st->AppendChanges("d", 1, {Change(kA, 1, first_bytes)});
  REQUIRE(none.ok());
  CHECK(none->stored == 0);
  REQUIRE(notices.size() == 2);
  CHECK(notices[0].doc == "d");
  CHECK(notices[0].first_seq == first.first_seq);
  CHECK(notices[0].last_seq == first.last_seq);
  CHECK_FALSE(notices[0].base);
  CHECK(notices[1].first_seq == r->first_seq);
}

TEST_CASE("store: watchers hear of every write that stores something, until unwatched", "[store]") {
  FOR_EVERY_STORE();
  std::vector<std::string> heard;
  uint64_t id = st->Watch([&](const store::StoredNotice& n) {
    heard.push_back(n.doc + (n.base ? ":base" : ":" + std::to_string(n.last_seq - n.first_seq)));
  });
  Append(*st, "a", kA, {1, 2, 3});
  REQUIRE(st->ImportBase("b", 1, VersionVector{}, "base bytes", nullptr).ok());
  REQUIRE(st->SetPeerVersion("peer", "a", VersionVector{}, 1).ok());  // not stored changes
  REQUIRE(st->CreateDocument("c", 1).ok());
  CHECK(heard == std::vector<std::string>{"a:2", "b:base"});
  st->Unwatch(id);
  Append(*st, "a", kA, {4});
  CHECK(heard.size() == 2);
}

TEST_CASE("store: FindRow finds an author's row holding or before a seq", "[store]") {
  FOR_EVERY_STORE();
  std::string d1 = Bytes(kA, 1), d3 = Bytes(kA, 3);
  REQUIRE(st->AppendChanges("d", 1, {{kA, 1, 2, d1}, {kA, 3, 5, d3}}).ok());
  Append(*st, "d", kB, {9});
  auto f = st->FindRow("d", kA, 4);
  REQUIRE(f.ok());
  REQUIRE(f->has_value());
  CHECK((*f)->info.start_seq == 3);
  CHECK((*f)->info.end_seq == 5);
  CHECK((*f)->data == d3);
  f = st->FindRow("d", kA, 2);
  REQUIRE(f->has_value());
  CHECK((*f)->data == d1);
  CHECK_FALSE(st->FindRow("d", kB, 8)->has_value());
  CHECK_FALSE(st->FindRow("d", NodeId{7}, 100)->has_value());
  CHECK_FALSE(st->FindRow("none", kA, 100)->has_value());
}

store::NewSegment Seg(uint64_t first, uint64_t last, uint64_t changes, const std::string& data,
                      VersionVector heads) {
  store::NewSegment g;
  g.first_seq = first;
  g.last_seq = last;
  g.changes = changes;
  g.ops = changes * 2;
  g.heads = std::move(heads);
  g.data = data;
  return g;
}

TEST_CASE("store: a snapshot and its compaction are written together, and seqs stay unique",
          "[store]") {
  FOR_EVERY_STORE();
  auto r = Append(*st, "d", kA, {1, 2, 3, 4});
  auto rows = Rows(*st, "d");
  VersionVector heads;
  heads.Set(kA, 3);
  store::Compaction c;
  c.added.push_back(Seg(rows[0].seq, rows[2].seq, 3, "segment one", heads));
  c.folded = rows[2].seq;
  REQUIRE(st->WriteSnapshot("d", r.last_seq, "snapshot one", c).ok());

  auto snap = st->GetSnapshot("d");
  REQUIRE(snap.ok());
  REQUIRE(snap->has_value());
  CHECK((*snap)->upto == r.last_seq);
  CHECK((*snap)->data == "snapshot one");
  CHECK(Rows(*st, "d") == std::vector<Logged>{rows[3]});
  auto segs = Segments(*st, "d");
  REQUIRE(segs.size() == 1);
  CHECK(segs[0].first_seq == rows[0].seq);
  CHECK(segs[0].last_seq == rows[2].seq);
  CHECK(segs[0].changes == 3);
  CHECK(segs[0].ops == 6);
  CHECK(segs[0].heads == heads);
  CHECK(st->ReadSegments("d", {segs[0].id}).value() == std::vector<std::string>{"segment one"});
  CHECK(*st->LastSeq("d") == r.last_seq);

  // New rows never take a seq compaction deleted, even once every row is gone.
  store::Compaction all;
  all.added.push_back(Seg(rows[3].seq, rows[3].seq, 1, "segment two", {}));
  all.folded = rows[3].seq;
  REQUIRE(st->WriteSnapshot("d", r.last_seq, "snapshot two", all).ok());
  CHECK(Rows(*st, "d").empty());
  CHECK(*st->LastSeq("d") == r.last_seq);
  auto next = Append(*st, "d", kA, {5});
  CHECK(next.first_seq > r.last_seq);

  SECTION("segments read in log order, then rows; `after` skips what a snapshot holds") {
    std::vector<std::string> order;
    store::LogRead read;
    read.segment = [&](const store::SegmentInfo&, std::string_view data) {
      order.emplace_back(data);
      return Status::Ok();
    };
    read.row = [&](const store::RowInfo& row, std::string_view) {
      order.push_back("row " + std::to_string(row.start_seq));
      return Status::Ok();
    };
    REQUIRE(st->ReadLog("d", read).ok());
    CHECK(order == std::vector<std::string>{"segment one", "segment two", "row 5"});
    order.clear();
    read.after = rows[2].seq;
    REQUIRE(st->ReadLog("d", read).ok());
    CHECK(order == std::vector<std::string>{"segment two", "row 5"});
  }
  SECTION("a segment not wanted is skipped") {
    std::vector<std::string> order;
    store::LogRead read;
    read.with_heads = true;
    read.want_segment = [](const store::SegmentInfo& g) { return !g.heads.empty(); };
    read.segment = [&](const store::SegmentInfo&, std::string_view data) {
      order.emplace_back(data);
      return Status::Ok();
    };
    REQUIRE(st->ReadLog("d", read).ok());
    CHECK(order == std::vector<std::string>{"segment one"});
  }
  SECTION("merging replaces segments") {
    store::Compaction merge;
    merge.replaced = {Segments(*st, "d")[0].id, Segments(*st, "d")[1].id};
    merge.added.push_back(Seg(rows[0].seq, rows[3].seq, 4, "merged", heads));
    REQUIRE(st->WriteSnapshot("d", next.last_seq, "snapshot three", merge).ok());
    segs = Segments(*st, "d");
    REQUIRE(segs.size() == 1);
    CHECK(st->ReadSegments("d", {segs[0].id}).value() == std::vector<std::string>{"merged"});
    CHECK(Rows(*st, "d").size() == 1);  // folded 0: rows stay
    REQUIRE(st->Close().ok());
    st = OpenStore(*factory);
    CHECK(st->GetSnapshot("d").value()->data == "snapshot three");
    CHECK(Segments(*st, "d").size() == 1);
  }
  SECTION("a compaction whose segments are gone changes nothing") {
    store::Compaction stale;
    stale.replaced = {Segments(*st, "d")[0].id, 999999};
    stale.added.push_back(Seg(rows[0].seq, rows[3].seq, 4, "merged", heads));
    stale.folded = next.last_seq;
    Status s = st->WriteSnapshot("d", next.last_seq, "snapshot three", stale);
    CHECK(s.code() == StatusCode::kAborted);
    CHECK(st->GetSnapshot("d").value()->data == "snapshot two");
    CHECK(Segments(*st, "d").size() == 2);
    CHECK(Rows(*st, "d").size() == 1);
    CHECK(st->ReadSegments("d", {999999}).status().code() == StatusCode::kCorruption);
  }
}

TEST_CASE("store: tails of several logs read at once: rows past each position, or segments",
          "[store]") {
  FOR_EVERY_STORE();
  auto d1 = Append(*st, "one", kA, {1, 2, 3});
  (void)Append(*st, "one", kB, {1});
  auto rows_two = Append(*st, "two", kB, {1, 2});
  auto rows_one = Rows(*st, "one");
  // "three" has a segment past the position its follower is at.
  auto d3 = Append(*st, "three", kA, {1, 2});
  store::Compaction c;
  c.added.push_back(Seg(d3.first_seq, d3.last_seq, 2, "segment", {}));
  c.folded = d3.last_seq;
  REQUIRE(st->WriteSnapshot("three", d3.last_seq, "snapshot", c).ok());

  std::vector<store::LogTail> tails = {{"one", d1.first_seq, false, {}},
                                       {"two", rows_two.last_seq, false, {}},
                                       {"three", 0, false, {}},
                                       {"absent", 0, false, {}},
                                       {"one", 0, false, {}}};
  Status s = st->ReadTails(&tails);
  INFO(s.ToString());
  REQUIRE(s.ok());
  auto as_logged = [](const store::LogTail& t) {
    std::vector<Logged> out;
    for (const auto& r : t.rows)
      out.push_back({r.info.seq, r.info.author, r.info.start_seq, r.data});
    return out;
  };
  CHECK_FALSE(tails[0].segments);
  CHECK(as_logged(tails[0]) == std::vector<Logged>(rows_one.begin() + 1, rows_one.end()));
  CHECK_FALSE(tails[1].segments);
  CHECK(tails[1].rows.empty());
  CHECK(tails[2].segments);
  CHECK(tails[2].rows.empty());
  CHECK_FALSE(tails[3].segments);
  CHECK(tails[3].rows.empty());
  CHECK(as_logged(tails[4]) == rows_one);
  // Past the segment, a tail holds the rows again.
  auto more = Append(*st, "three", kA, {3});
  std::vector<store::LogTail> after = {{"three", d3.last_seq, false, {}}};
  REQUIRE(st->ReadTails(&after).ok());
  CHECK_FALSE(after[0].segments);
  REQUIRE(after[0].rows.size() == 1);
  CHECK(after[0].rows[0].info.seq == more.first_seq);
  CHECK(after[0].rows[0].data == Bytes(kA, 3));
}

TEST_CASE("store: a base snapshot replaces the cached snapshot and may be kept sealed", "[store]") {
  FOR_EVERY_STORE();
  Append(*st, "d", kA, {1});
  REQUIRE(st->WriteSnapshot("d", *st->LastSeq("d"), "cached", {}).ok());
  VersionVector v;
  v.Set(kA, 5);
  v.Set(kB, 2);
  const std::string seal = "seal bytes";
  auto commit = st->ImportBase("d", 1, v, "base data", &seal);
  REQUIRE(commit.ok());
  CHECK(st->WaitDurable(*commit).ok());
  CHECK_FALSE(st->GetSnapshot("d")->has_value());
  auto base = st->GetBase("d", true);
  REQUIRE(base.ok());
  REQUIRE(base->has_value());
  CHECK((*base)->version == v);
  CHECK((*base)->data == "base data");
  CHECK(st->GetBase("d", false).value()->data.empty());
  CHECK(Rows(*st, "d").size() == 1);  // rows held stay
  auto sealed = st->GetSealedSnapshot("d");
  REQUIRE(sealed.ok());
  REQUIRE(sealed->has_value());
  CHECK((*sealed)->version == v);
  CHECK((*sealed)->seal == seal);
  CHECK((*sealed)->data == "base data");
  // A base read with the log, in the same read.
  std::string got;
  store::LogRead read;
  read.base = [&](std::string_view data) {
    got = std::string(data);
    return Status::Ok();
  };
  REQUIRE(st->ReadLog("d", read).ok());
  CHECK(got == "base data");
  // A new document through its base.
  REQUIRE(st->ImportBase("new", 1, v, "other", nullptr).ok());
  CHECK(*st->HasDocument("new"));
  CHECK_FALSE(st->GetSealedSnapshot("new")->has_value());
  // Sealed snapshots on their own.
  VersionVector w;
  w.Set(kA, 9);
  REQUIRE(st->PutSealedSnapshot("new", w, "seal 2", "state 2").ok());
  CHECK(st->GetSealedSnapshot("new").value()->version == w);
  REQUIRE(st->Close().ok());
  st = OpenStore(*factory);
  CHECK(st->GetBase("d", true).value()->data == "base data");
  CHECK(st->GetSealedSnapshot("new").value()->data == "state 2");
}

TEST_CASE("store: equivocation proofs, the first per author and document", "[store]") {
  FOR_EVERY_STORE();
  REQUIRE(st->RecordEquivocation({"d", kB, 4, "held", "other", 10}).ok());
  REQUIRE(st->RecordEquivocation({"d", kB, 5, "held 2", "other 2", 11}).ok());  // ignored
  REQUIRE(st->RecordEquivocation({"d", kA, 1, "h", "o", 12}).ok());
  REQUIRE(st->RecordEquivocation({"c", kA, 2, "h", "o", 13}).ok());
  auto all = st->Equivocations(std::nullopt);
  REQUIRE(all.ok());
  REQUIRE(all->size() == 3);
  CHECK((*all)[0].doc == "c");
  auto d = st->Equivocations(std::string_view("d"));
  REQUIRE(d.ok());
  REQUIRE(d->size() == 2);
  CHECK((*d)[0].author == kA);
  CHECK((*d)[1].author == kB);
  CHECK((*d)[1].seq == 4);
  CHECK((*d)[1].held == "held");
  CHECK((*d)[1].other == "other");
  CHECK((*d)[1].detected_ms == 10);
}

TEST_CASE("store: peer versions, per peer, sorted by document", "[store]") {
  FOR_EVERY_STORE();
  VersionVector v1, v2;
  v1.Set(kA, 3);
  v2.Set(kA, 4);
  v2.Set(kB, 1);
  REQUIRE(st->SetPeerVersion("ws://p", "z", v1, 1).ok());
  REQUIRE(st->SetPeerVersion("ws://p", "a", v1, 1).ok());
  REQUIRE(st->SetPeerVersion("ws://p", "a", v2, 2).ok());
  REQUIRE(st->SetPeerVersion("ws://q", "a", v1, 1).ok());
  auto p = st->PeerVersions("ws://p");
  REQUIRE(p.ok());
  CHECK(*p == std::vector<std::pair<std::string, VersionVector>>{{"a", v2}, {"z", v1}});
  CHECK(st->PeerVersions("ws://none")->empty());
  REQUIRE(st->Close().ok());
  st = OpenStore(*factory);
  CHECK(st->PeerVersions("ws://q").value() ==
        std::vector<std::pair<std::string, VersionVector>>{{"a", v1}});
}

TEST_CASE("store: deleting a document removes everything of it but peers' versions", "[store]") {
  FOR_EVERY_STORE();
  Append(*st, "d", kA, {1, 2});
  Append(*st, "keep", kA, {1});
  REQUIRE(st->WriteSnapshot("d", 1, "snap", {}).ok());
  REQUIRE(st->ImportBase("d", 1, VersionVector{}, "base", nullptr).ok());
  REQUIRE(st->PutSealedSnapshot("d", VersionVector{}, "s", "x").ok());
  REQUIRE(st->RecordEquivocation({"d", kA, 1, "h", "o", 1}).ok());
  REQUIRE(st->SetPeerVersion("p", "d", VersionVector{}, 1).ok());
  REQUIRE(st->DeleteDocument("d").ok());
  CHECK_FALSE(*st->HasDocument("d"));
  CHECK(Rows(*st, "d").empty());
  CHECK(*st->LastSeq("d") == 0);
  CHECK_FALSE(st->GetSnapshot("d")->has_value());
  CHECK_FALSE(st->GetBase("d", true)->has_value());
  CHECK_FALSE(st->GetSealedSnapshot("d")->has_value());
  CHECK(st->Equivocations(std::string_view("d"))->empty());
  CHECK(st->PeerVersions("p")->size() == 1);
  CHECK(Rows(*st, "keep").size() == 1);
  CHECK(st->DeleteDocument("d").code() == StatusCode::kNotFound);
  CHECK(st->ListDocuments().value() == std::vector<std::string>{"keep"});
  // CreateDocument: a no-op when it exists.
  REQUIRE(st->CreateDocument("keep", 5).ok());
  REQUIRE(st->CreateDocument("new", 5).ok());
  CHECK(st->ListDocuments().value() == std::vector<std::string>{"keep", "new"});
}

TEST_CASE("store: a reader sees each batch whole or not at all", "[store]") {
  FOR_EVERY_STORE();
  constexpr int kBatches = 60, kBatch = 5;
  std::atomic<bool> done{false};
  std::atomic<int> torn{0}, reads{0};
  std::thread reader([&] {
    while (!done.load()) {
      size_t n = 0;
      store::LogRead read;
      read.row = [&](const store::RowInfo&, std::string_view) {
        ++n;
        return Status::Ok();
      };
      if (!st->ReadLog("d", read).ok()) ++torn;
      if (n % kBatch != 0) ++torn;
      ++reads;
    }
  });
  for (int b = 0; b < kBatches; ++b) {
    // Each batch after the reader has read again (or a while), so that reads and writes interleave.
    const int seen = reads.load();
    for (int spin = 0; spin < 100000 && reads.load() == seen; ++spin) std::this_thread::yield();
    std::vector<uint64_t> seqs;
    for (int i = 1; i <= kBatch; ++i) seqs.push_back(static_cast<uint64_t>(b * kBatch + i));
    auto r = Append(*st, "d", kA, seqs);
    CHECK(st->WaitDurable(r.commit).ok());
  }
  done = true;
  reader.join();
  CHECK(torn == 0);
  CHECK(reads > 0);
  CHECK(Rows(*st, "d").size() == kBatches * kBatch);
}

TEST_CASE("store: a commit number is waited on, or called back, once durable", "[store]") {
  FOR_EVERY_STORE();
  auto r = Append(*st, "d", kA, {1});
  CHECK(st->WaitDurable(r.commit).ok());
  bool called = false;
  st->WhenDurable(r.commit, [&](Status s) {
    called = true;
    CHECK(s.ok());
  });
  CHECK(called);
  CHECK(st->WaitDurable(0).ok());
}

TEST_CASE("store: SqliteStore with group commit hands out commits that become durable", "[store]") {
  TempDir dir;
  store::SqliteStoreOptions o;
  o.durability = Durability::kGroup;
  auto st = store::OpenSqliteStore(dir.File("g.db"), o);
  REQUIRE(st.ok());
  auto r1 = Append(**st, "d", kA, {1});
  CHECK(r1.commit > 0);
  auto dup = Append(**st, "d", kA, {1});
  CHECK(dup.stored == 0);
  CHECK(dup.commit == r1.commit);  // nothing new: the latest commit
  CHECK((*st)->LatestCommit() == r1.commit);
  CHECK((*st)->WaitDurable(r1.commit).ok());
  CHECK((*st)->GetSyncStats().commits >= 1);
}

// Every write of SqliteStore is one transaction: failing the Nth write of the file, for every N,
// leaves either the whole batch or none of it.
TEST_CASE("store: SqliteStore writes a batch whole or not at all when the disk fails",
          "[store][fault]") {
  TempDir dir;
  testing::FaultVfs vfs("weft-store-fault");
  vfs.SkipRealSyncs(true);
  store::SqliteStoreOptions o;
  o.vfs = vfs.name();
  o.durability = Durability::kFull;
  auto st = store::OpenSqliteStore(dir.File("f.db"), o);
  REQUIRE(st.ok());
  Append(**st, "d", kA, {1});
  uint64_t next = 2;
  int failures = 0;
  for (uint64_t n = 1;; ++n) {
    const size_t before = Rows(**st, "d").size();
    vfs.Arm(testing::FaultVfs::Op::kWrite, n);
    std::vector<std::string> data;
    for (uint64_t q = next; q < next + 20; ++q)
      data.push_back(Bytes(kA, q) + std::string(900, 'x'));
    std::vector<store::NewChange> cs;
    for (uint64_t i = 0; i < 20; ++i) cs.push_back(Change(kA, next + i, data[i]));
    auto r = (*st)->AppendChanges("d", 1, cs);
    const bool fired = vfs.Fired();
    vfs.Disarm();
    const size_t after = Rows(**st, "d").size();
    INFO("n = " << n);
    if (r.ok()) {
      CHECK(after == before + 20);
      next += 20;
      if (!fired) break;  // reached the end of the batch's writes
    } else {
      ++failures;
      CHECK(after == before);
    }
    REQUIRE(n < 200);
  }
  CHECK(failures > 0);
}

TEST_CASE("store: opening on nothing is refused clearly", "[store]") {
  auto r = OpenReplica(nullptr, {});
  CHECK(r.status().code() == StatusCode::kInvalidArgument);
  auto m = store::OpenMemoryStore(nullptr);
  CHECK(m.status().code() == StatusCode::kInvalidArgument);
}

// ---- PostgreSQL: what only a shared database has. ----

// Notices a watcher heard, waited on from the test's thread (a PgStore calls its watchers from
// its listening thread for other stores' writes).
class Heard {
 public:
  store::Watcher watcher() {
    return [this](const store::StoredNotice& n) {
      std::lock_guard lock(mu_);
      notices_.push_back(n);
      cv_.notify_all();
    };
  }
  // Waits (up to 20 s) until `pred` holds for a notice heard; returns whether it did.
  bool WaitFor(const std::function<bool(const store::StoredNotice&)>& pred) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(20), [&] {
      for (const auto& n : notices_) {
        if (pred(n)) return true;
      }
      return false;
    });
  }
  // Waits (up to 20 s) until `pred` holds for the notices heard so far.
  bool WaitUntil(const std::function<bool(const std::vector<store::StoredNotice>&)>& pred) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(20), [&] { return pred(notices_); });
  }
  size_t Count(const std::function<bool(const store::StoredNotice&)>& pred) {
    std::lock_guard lock(mu_);
    size_t n = 0;
    for (const auto& x : notices_) n += pred(x) ? 1 : 0;
    return n;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<store::StoredNotice> notices_;
};

std::unique_ptr<Store> OpenPg(const std::string& conninfo, const std::string& name) {
  store::PgStoreOptions o;
  o.name = name;
  auto s = store::OpenPgStore(conninfo, o);
  INFO(s.status().ToString());
  REQUIRE(s.ok());
  return std::move(*s);
}

TEST_CASE("store: PgStores on one database share documents, hear each other, store a key once",
          "[store][postgres]") {
  PgFactory factory("relay-a");
  auto a = OpenStore(factory);
  auto b = OpenPg(factory.conninfo(), "relay-b");
  // Each relay its own identity and metadata; the documents are shared.
  CHECK(a->node_id() != b->node_id());
  REQUIRE(a->PutMeta({{"k", "of a", store::MetaType::kText}}).ok());
  CHECK(b->GetMeta({"k"})->empty());
  // One open store per relay name.
  store::PgStoreOptions same;
  same.name = "relay-b";
  CHECK(store::OpenPgStore(factory.conninfo(), same).status().code() == StatusCode::kBusy);

  Heard heard_a, heard_b;
  a->Watch(heard_a.watcher());
  b->Watch(heard_b.watcher());
  auto rb = Append(*b, "d", kA, {1, 2});
  // b's own write reaches b's watcher on the writing thread, before AppendChanges returns.
  auto mine = [&](const store::StoredNotice& n) {
    return n.doc == "d" && n.first_seq == rb.first_seq && n.last_seq == rb.last_seq && !n.base;
  };
  CHECK(heard_b.Count(mine) == 1);
  CHECK(heard_a.WaitFor(mine));
  CHECK(Rows(*a, "d").size() == 2);
  // A write through a, heard by b: notices arrive in commit order, so b has heard any echo of
  // its own write by now, and must not have (its listener skips its own notices).
  auto ra = Append(*a, "d", kB, {1});
  CHECK(ra.first_seq == rb.last_seq + 1);  // one document, one order
  CHECK(heard_b.WaitFor([&](const store::StoredNotice& n) { return n.first_seq == ra.first_seq; }));
  CHECK(heard_b.Count(mine) == 1);
  REQUIRE(b->ImportBase("e", 1, VersionVector{}, "base", nullptr).ok());
  CHECK(heard_a.WaitFor([](const store::StoredNotice& n) { return n.doc == "e" && n.base; }));

  // Both relays append the same changes at once: each is stored exactly once, and the
  // document's seqs are handed out one after another in commit order (no gap, no clash).
  constexpr uint64_t kKeys = 100;
  std::atomic<int> ready{0};
  std::atomic<uint64_t> stored{0};
  std::atomic<int> failures{0};
  auto race = [&](Store* st) {
    ++ready;
    while (ready.load() < 2) std::this_thread::yield();
    for (uint64_t k = 1; k <= kKeys; ++k) {
      const std::string data = Bytes(kB, k);
      auto r = st->AppendChanges("c", 1, {Change(kB, k, data)});
      if (!r.ok()) {
        ++failures;
        continue;
      }
      stored += r->stored;
    }
  };
  std::thread t1(race, a.get()), t2(race, b.get());
  t1.join();
  t2.join();
  CHECK(failures == 0);
  CHECK(stored == kKeys);
  auto rows = Rows(*a, "c");
  REQUIRE(rows.size() == kKeys);
  for (uint64_t i = 0; i < kKeys; ++i) {
    CHECK(rows[i].seq == i + 1);
    CHECK(rows[i].start_seq == i + 1);
    CHECK(rows[i].data == Bytes(kB, i + 1));
  }
  // Closed, its name opens again: the same relay.
  const NodeId node_b = b->node_id();
  REQUIRE(b->Close().ok());
  b.reset();
  CHECK(OpenPg(factory.conninfo(), "relay-b")->node_id() == node_b);
}

TEST_CASE("store: PgStores compacting one document at once: one wins, the other is aborted",
          "[store][postgres]") {
  PgFactory factory("relay-a");
  auto a = OpenStore(factory);
  auto b = OpenPg(factory.conninfo(), "relay-b");
  auto r = Append(*a, "d", kA, {1, 2});
  store::Compaction first;
  first.added.push_back(Seg(r.first_seq, r.last_seq, 2, "segment", {}));
  first.folded = r.last_seq;
  REQUIRE(a->WriteSnapshot("d", r.last_seq, "snapshot", first).ok());
  const uint64_t id = Segments(*a, "d").at(0).id;
  for (int round = 0; round < 5; ++round) {
    const uint64_t current = Segments(*a, "d").at(0).id;
    store::Compaction merge;
    merge.replaced = {current};
    merge.added.push_back(Seg(r.first_seq, r.last_seq, 2, "merged", {}));
    Status sa, sb;
    std::thread ta([&] { sa = a->WriteSnapshot("d", r.last_seq, "by a", merge); });
    std::thread tb([&] { sb = b->WriteSnapshot("d", r.last_seq, "by b", merge); });
    ta.join();
    tb.join();
    INFO(sa.ToString() << " / " << sb.ToString());
    CHECK(sa.ok() != sb.ok());
    CHECK((sa.ok() ? sb : sa).code() == StatusCode::kAborted);
    CHECK(Segments(*a, "d").size() == 1);
  }
  CHECK(Segments(*b, "d").at(0).id != id);
}

TEST_CASE("store: PgStore reports a lost connection, connects again, and names damaged rows",
          "[store][postgres]") {
  PgFactory factory;
  auto st = OpenStore(factory);
  Heard heard;
  st->Watch(heard.watcher());
  auto r = Append(*st, "d", kA, {1, 2});

  // The server ends every connection of the store (as a restart or a network cut would).
  REQUIRE(testing::PgServer::RunSql(factory.conninfo(),
                                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                    "WHERE datname = current_database() AND "
                                    "pid <> pg_backend_pid()")
              .ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto lost = st->LastSeq("d");
  CHECK(lost.status().code() == StatusCode::kIOError);
  auto again = st->LastSeq("d");
  INFO(again.status().ToString());
  REQUIRE(again.ok());
  CHECK(*again == r.last_seq);
  // Its listener connects again too: another relay's writes are heard once more (notices sent
  // while it was away are lost, which the contract allows, so write until one is heard).
  auto other = OpenPg(factory.conninfo(), "other");
  bool heard_other = false;
  for (uint64_t k = 10; k < 60 && !heard_other; ++k) {
    auto w = Append(*other, "d", kB, {k});
    heard_other =
        heard.WaitFor([&](const store::StoredNotice& n) { return n.first_seq == w.first_seq; });
  }
  CHECK(heard_other);

  // Bad input: refused clearly, nothing written.
  const std::string nul_doc("d\0x", 3), long_doc(8000, 'x'), data = Bytes(kA, 9);
  auto bad = st->AppendChanges(nul_doc, 1, {Change(kA, 9, data)});
  CHECK(bad.status().code() == StatusCode::kInvalidArgument);
  CHECK(st->AppendChanges(long_doc, 1, {Change(kA, 9, data)}).status().code() ==
        StatusCode::kInvalidArgument);
  CHECK(st->ListDocuments().value() == std::vector<std::string>{"d"});

  // A row whose bytes changed under the store: kCorruption naming the document and seq.
  REQUIRE(testing::PgServer::RunSql(
              factory.conninfo(),
              "UPDATE weft_changes SET data = 'damaged'::bytea WHERE doc = 'd' AND seq = " +
                  std::to_string(r.last_seq))
              .ok());
  Status damaged = st->ReadLog("d", [] {
    store::LogRead read;
    read.row = [](const store::RowInfo&, std::string_view) { return Status::Ok(); };
    return read;
  }());
  CHECK(damaged.code() == StatusCode::kCorruption);
  CHECK(damaged.message().find("\"d\"") != std::string::npos);
  CHECK(damaged.message().find("seq " + std::to_string(r.last_seq)) != std::string::npos);
  CHECK(st->FindRow("d", kA, 2).status().code() == StatusCode::kCorruption);
  CHECK(st->FindRow("d", kA, 1).ok());
}

// Holds the row lock of document `doc` (which must exist) from a connection of the test's own, so
// that a store's batch touching it waits: calls made meanwhile queue for the next batch.
class Gate {
 public:
  Gate(const std::string& conninfo, const std::string& doc) {
    auto s = testing::PgSession::Open(conninfo);
    INFO(s.status().ToString());
    REQUIRE(s.ok());
    session_ = std::move(*s);
    REQUIRE(session_->Exec("BEGIN").ok());
    // `doc` is the test's own constant.
    REQUIRE(
        session_->Exec("SELECT 1 FROM weft_documents WHERE id = '" + doc + "' FOR UPDATE").ok());
  }
  // Waits (up to 20 s) until a backend waits for a lock, i.e. a batch is stuck behind the gate.
  bool WaitForWaiter(const std::string& conninfo) {
    auto probe = testing::PgSession::Open(conninfo);
    if (!probe.ok()) return false;
    for (int i = 0; i < 400; ++i) {
      auto n = (*probe)->Exec(
          "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND "
          "wait_event_type = 'Lock'");
      if (n.ok() && *n != "0") return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }
  void Open() { REQUIRE(session_->Exec("COMMIT").ok()); }

 private:
  std::unique_ptr<testing::PgSession> session_;
};

// Whether the notices cover every seq 1..n of `doc`.
bool Covers(const std::vector<store::StoredNotice>& notices, const std::string& doc, uint64_t n) {
  std::set<uint64_t> seqs;
  for (const auto& x : notices) {
    if (x.doc != doc || x.base || x.first_seq == 0) continue;
    for (uint64_t q = x.first_seq; q <= x.last_seq; ++q) seqs.insert(q);
  }
  return seqs.size() == n && (n == 0 || *seqs.rbegin() == n);
}

// Group commit: many threads append to many documents at once through two stores on one
// database. Each change is stored once, each document's seqs are dense and in commit order, each
// call's result is what it would have been alone, notices cover every seq, and the stores commit
// fewer transactions than calls.
TEST_CASE("store: PgStore group commit: concurrent appends through two stores, each key once",
          "[store][postgres]") {
  PgFactory factory("relay-a");
  auto a = OpenStore(factory);
  auto b = OpenPg(factory.conninfo(), "relay-b");
  Heard heard_a, heard_b;
  a->Watch(heard_a.watcher());
  b->Watch(heard_b.watcher());
  constexpr int kThreadsPerStore = 6, kCalls = 40, kDocs = 5;
  auto doc_of = [](int k) { return "doc-" + std::to_string(k % kDocs); };
  const NodeId kShared{0x5eed};
  // Every document exists: the gate holds the first one's row.
  for (int d = 0; d < kDocs; ++d) {
    const std::string data = Bytes(kShared, 1000000 + d);
    REQUIRE(a->AppendChanges(doc_of(d), 1, {Change(kShared, 1000000 + d, data)}).ok());
  }
  struct Call {
    std::string doc;
    std::vector<std::pair<NodeId, uint64_t>> keys;
    store::AppendResult result;
    Status status;
  };
  std::vector<std::vector<Call>> calls(2 * kThreadsPerStore);
  std::atomic<int> started{0};
  auto work = [&](Store* st, int t) {
    const NodeId own{0x1000 + static_cast<uint64_t>(t)};
    ++started;
    for (int k = 0; k < kCalls; ++k) {
      Call c;
      c.doc = doc_of(k + t);
      // One to three changes of its own, and (every other call) one every thread appends too.
      const int n = 1 + (k + t) % 3;
      for (int i = 0; i < n; ++i) c.keys.emplace_back(own, uint64_t(k * 3 + i + 1));
      if (k % 2 == 0) c.keys.emplace_back(kShared, uint64_t(k + t % kDocs));
      std::vector<std::string> data;
      for (const auto& [author, seq] : c.keys) data.push_back(Bytes(author, seq));
      std::vector<store::NewChange> cs;
      for (size_t i = 0; i < c.keys.size(); ++i) {
        cs.push_back(Change(c.keys[i].first, c.keys[i].second, data[i]));
      }
      auto r = st->AppendChanges(c.doc, 1000, cs);
      c.status = r.status();
      if (r.ok()) c.result = *r;
      calls[t].push_back(std::move(c));
    }
  };
  std::vector<std::thread> threads;
  {
    Gate gate(factory.conninfo(), doc_of(0));
    for (int t = 0; t < 2 * kThreadsPerStore; ++t) {
      threads.emplace_back(work, t < kThreadsPerStore ? a.get() : b.get(), t);
    }
    REQUIRE(gate.WaitForWaiter(factory.conninfo()));
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the others queue
    gate.Open();
  }
  for (auto& th : threads) th.join();

  // Every call succeeded; the calls' stored ranges tile each document's log exactly.
  std::map<std::string, std::vector<const Call*>> by_doc;
  uint64_t stored = 0;
  for (const auto& per_thread : calls) {
    for (const Call& c : per_thread) {
      INFO(c.status.ToString());
      REQUIRE(c.status.ok());
      CHECK(c.result.commit == 0);
      by_doc[c.doc].push_back(&c);
      stored += c.result.stored;
    }
  }
  uint64_t rows_total = 0;
  for (int d = 0; d < kDocs; ++d) {
    const std::string doc = doc_of(d);
    const auto rows = Rows(*b, doc);
    rows_total += rows.size();
    std::set<std::pair<NodeId, uint64_t>> keys;
    std::map<uint64_t, const Logged*> by_seq;
    for (size_t i = 0; i < rows.size(); ++i) {
      CHECK(rows[i].seq == i + 1);                                    // dense, increasing, no gap
      CHECK(keys.emplace(rows[i].author, rows[i].start_seq).second);  // each key once
      CHECK(rows[i].data == Bytes(rows[i].author, rows[i].start_seq));
      by_seq[rows[i].seq] = &rows[i];
    }
    // Each call's result: `stored` rows first_seq..last_seq, all of its own keys, in its order.
    for (const Call* c : by_doc[doc]) {
      if (c->result.stored == 0) {
        CHECK(c->result.first_seq == 0);
        continue;
      }
      CHECK(c->result.last_seq - c->result.first_seq + 1 == c->result.stored);
      size_t next = 0;
      for (uint64_t q = c->result.first_seq; q <= c->result.last_seq; ++q) {
        REQUIRE(by_seq.count(q) == 1);
        const auto key = std::make_pair(by_seq[q]->author, by_seq[q]->start_seq);
        while (next < c->keys.size() && c->keys[next] != key) ++next;
        CHECK(next < c->keys.size());
      }
      // Its own keys are new: it stored each of them.
      size_t own = 0;
      for (const auto& k : c->keys) own += k.first != kShared ? 1 : 0;
      CHECK(c->result.stored >= own);
    }
    // Every key any call appended is in the log.
    for (const Call* c : by_doc[doc]) {
      for (const auto& k : c->keys) CHECK(keys.count(k) == 1);
    }
    // Each store heard of every seq (its own writes, and the other's through the listener).
    for (Heard* h : {&heard_a, &heard_b}) {
      const uint64_t n = rows.size();
      CHECK(h->WaitUntil([&](const auto& notices) { return Covers(notices, doc, n); }));
    }
  }
  CHECK(stored + kDocs == rows_total);
  // Group commit happened: fewer transactions than calls, on each store.
  for (Store* st : {a.get(), b.get()}) {
    const store::SyncStats stats = st->GetSyncStats();
    INFO("commits " << stats.commits << ", transactions " << stats.syncs);
    CHECK(stats.failures == 0);
    CHECK(stats.syncs < stats.commits);
  }
  CHECK(a->GetSyncStats().commits == kThreadsPerStore * kCalls + kDocs);
  CHECK(b->GetSyncStats().commits == kThreadsPerStore * kCalls);
}

// A batch whose transaction fails for one caller's input: the others commit (one by one), the
// bad one fails alone. A batch touching many documents with long IDs sends its notice as several
// NOTIFYs, and another store hears every document.
TEST_CASE("store: PgStore batch: a bad caller fails alone, a long notice is split, not dropped",
          "[store][postgres]") {
  PgFactory factory("relay-a");
  auto a = OpenStore(factory);
  auto b = OpenPg(factory.conninfo(), "relay-b");
  Heard heard_b;
  b->Watch(heard_b.watcher());
  Append(*a, "gate", kA, {1});
  // Twelve documents of 1,000-byte IDs: about 12 kB of notice, over PostgreSQL's 8,000 bytes.
  std::vector<std::string> docs;
  for (int i = 0; i < 12; ++i) docs.push_back(std::string(1000, char('a' + i)) + "-doc");
  // Valid text, but too large (incompressible) for PostgreSQL's index: refused by the server,
  // only once the batch's transaction runs.
  std::string bad_doc;
  uint64_t x = 88172645463325252ull;
  for (int i = 0; i < 7000; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    bad_doc.push_back("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"[x % 64]);
  }
  const std::string data = Bytes(kB, 1);
  std::vector<Result<store::AppendResult>> good(docs.size(),
                                                Status(StatusCode::kInternal, "not run"));
  Result<store::AppendResult> bad = Status(StatusCode::kInternal, "not run");
  Result<store::AppendResult> gated = Status(StatusCode::kInternal, "not run");
  const store::SyncStats before = a->GetSyncStats();
  {
    Gate gate(factory.conninfo(), "gate");
    std::thread leader([&] { gated = a->AppendChanges("gate", 1, {Change(kB, 1, data)}); });
    REQUIRE(gate.WaitForWaiter(factory.conninfo()));
    std::vector<std::thread> threads;
    for (size_t i = 0; i < docs.size(); ++i) {
      threads.emplace_back(
          [&, i] { good[i] = a->AppendChanges(docs[i], 1, {Change(kB, 1, data)}); });
    }
    threads.emplace_back([&] { bad = a->AppendChanges(bad_doc, 1, {Change(kB, 1, data)}); });
    // Bad input a store can see fails at once, never joining a batch.
    const std::string nul_doc("n\0l", 3);
    CHECK(a->AppendChanges(nul_doc, 1, {Change(kB, 1, data)}).status().code() ==
          StatusCode::kInvalidArgument);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));  // all queued
    gate.Open();
    leader.join();
    for (auto& t : threads) t.join();
  }
  REQUIRE(gated.ok());
  INFO(bad.status().ToString());
  CHECK(bad.status().code() == StatusCode::kInvalidArgument);
  for (size_t i = 0; i < docs.size(); ++i) {
    INFO(good[i].status().ToString());
    REQUIRE(good[i].ok());
    CHECK(good[i]->stored == 1);
    CHECK(good[i]->first_seq == 1);
    CHECK(good[i]->last_seq == 1);
  }
  const store::SyncStats after = a->GetSyncStats();
  CHECK(after.failures > before.failures);  // the batch with the bad caller
  CHECK(after.commits - before.commits == docs.size() + 1);
  auto listed = a->ListDocuments();
  REQUIRE(listed.ok());
  CHECK(listed->size() == docs.size() + 1);  // not the bad one
  for (const std::string& d : docs) {
    CHECK(Rows(*b, d).size() == 1);
    CHECK(heard_b.WaitFor([&](const store::StoredNotice& n) {
      return n.doc == d && n.first_seq == 1 && n.last_seq == 1;
    }));
  }

  // The same, without a bad caller: one transaction for the twelve, its notice in two NOTIFYs.
  {
    Gate gate(factory.conninfo(), "gate");
    std::thread leader([&] { gated = a->AppendChanges("gate", 1, {Change(kB, 2, data)}); });
    REQUIRE(gate.WaitForWaiter(factory.conninfo()));
    const store::SyncStats mid = a->GetSyncStats();
    std::vector<std::thread> threads;
    for (size_t i = 0; i < docs.size(); ++i) {
      threads.emplace_back(
          [&, i] { good[i] = a->AppendChanges(docs[i], 1, {Change(kB, 2, data)}); });
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    gate.Open();
    leader.join();
    for (auto& t : threads) t.join();
    const store::SyncStats end = a->GetSyncStats();
    CHECK(end.commits - mid.commits == docs.size() + 1);
    CHECK(end.syncs - mid.syncs == 2);  // the gated one, then all twelve
    CHECK(end.failures == mid.failures);
  }
  for (size_t i = 0; i < docs.size(); ++i) {
    REQUIRE(good[i].ok());
    CHECK(good[i]->first_seq == 2);
    CHECK(heard_b.WaitFor([&](const store::StoredNotice& n) {
      return n.doc == docs[i] && n.first_seq == 2 && n.last_seq == 2;
    }));
  }
  // A notice in the form relays of the previous build send (one document) is read too; one that
  // is not a notice is ignored.
  REQUIRE(testing::PgServer::RunSql(factory.conninfo(),
                                    "SELECT pg_notify('weft_store', 'not a notice'), "
                                    "pg_notify('weft_store', 'a 5 6 old form')")
              .ok());
  CHECK(heard_b.WaitFor([](const store::StoredNotice& n) {
    return n.doc == "old form" && n.first_seq == 5 && n.last_seq == 6 && !n.base;
  }));
  CHECK(heard_b.Count([](const store::StoredNotice& n) { return n.doc == "not a notice"; }) == 0);
}

// Two relays that planned the same compaction: the second, finding the first's segment over the
// seqs it would fold, changes nothing (kAborted). A snapshot older than the stored one leaves it.
TEST_CASE("store: PgStore compactions of one document by two relays never double a segment",
          "[store][postgres]") {
  PgFactory factory("relay-a");
  auto a = OpenStore(factory);
  auto b = OpenPg(factory.conninfo(), "relay-b");
  auto r = Append(*a, "d", kA, {1, 2, 3, 4, 5});
  store::Compaction plan;
  plan.added.push_back(Seg(r.first_seq, r.first_seq + 2, 3, "rows 1..3", {}));
  plan.folded = r.first_seq + 2;
  REQUIRE(a->WriteSnapshot("d", r.first_seq + 3, "by a", plan).ok());
  Status second = b->WriteSnapshot("d", r.first_seq + 3, "by b", plan);
  CHECK(second.code() == StatusCode::kAborted);
  CHECK(Segments(*b, "d").size() == 1);
  CHECK(Rows(*b, "d").size() == 2);
  CHECK(b->GetSnapshot("d").value()->data == "by a");
  // Overlapping only in part: refused too.
  store::Compaction part;
  part.added.push_back(Seg(r.first_seq + 2, r.first_seq + 3, 2, "rows 3..4", {}));
  part.folded = r.first_seq + 3;
  CHECK(b->WriteSnapshot("d", r.last_seq, "by b", part).code() == StatusCode::kAborted);
  CHECK(Rows(*b, "d").size() == 2);
  // The rows after it fold fine.
  store::Compaction rest;
  rest.added.push_back(Seg(r.first_seq + 3, r.last_seq, 2, "rows 4..5", {}));
  rest.folded = r.last_seq;
  REQUIRE(b->WriteSnapshot("d", r.last_seq, "by b, newer", rest).ok());
  CHECK(Segments(*a, "d").size() == 2);
  CHECK(Rows(*a, "d").empty());
  // An older snapshot (a slower relay's) leaves the newer one: OK, nothing moves back.
  REQUIRE(a->WriteSnapshot("d", r.first_seq + 3, "older", {}).ok());
  auto snap = a->GetSnapshot("d").value();
  REQUIRE(snap.has_value());
  CHECK(snap->upto == r.last_seq);
  CHECK(snap->data == "by b, newer");
  REQUIRE(a->WriteSnapshot("d", r.last_seq, "same position", {}).ok());
  CHECK(a->GetSnapshot("d").value()->data == "same position");
}

// A replica needs nothing but the seam: the same work on each store gives the same document,
// survives a reopen, and syncs with a replica on the other store.
// Relays sharing a database: the stores that can be shared.
#define FOR_EVERY_SHARED_STORE()                                              \
  const std::string kind = GENERATE(as<std::string>{}, "memory", "postgres"); \
  INFO("store: " << kind);                                                    \
  auto factory = MakeFactory(kind);                                           \
  auto st = OpenStore(*factory)

std::unique_ptr<Store> OpenPeerStore(StoreFactory& f, const std::string& name) {
  auto s = f.OpenPeer(name);
  INFO(s.status().ToString());
  REQUIRE(s.ok());
  REQUIRE(*s);
  return std::move(*s);
}

TEST_CASE("store: stores sharing data hear each other's writes, and compact one at a time",
          "[store]") {
  FOR_EVERY_SHARED_STORE();
  CHECK(st->Shared());
  auto other = OpenPeerStore(*factory, "peer");
  CHECK(other->node_id() != st->node_id());
  std::mutex mu;
  std::condition_variable cv;
  std::vector<store::StoredNotice> heard;
  st->Watch([&](const store::StoredNotice& n) {
    std::lock_guard l(mu);
    heard.push_back(n);
    cv.notify_all();
  });
  auto mine = Append(*st, "d", kA, {1, 2});
  auto theirs = Append(*other, "d", kB, {1, 2, 3});
  // A document's seqs are its own, with no gaps: a store can tell when another wrote between.
  CHECK(theirs.first_seq == mine.last_seq + 1);
  {
    std::unique_lock l(mu);
    REQUIRE(cv.wait_for(l, std::chrono::seconds(10), [&] { return heard.size() >= 2; }));
    CHECK_FALSE(heard[0].foreign);
    CHECK(heard[0].first_seq == mine.first_seq);
    CHECK(heard[1].foreign);
    CHECK(heard[1].doc == "d");
    CHECK(heard[1].first_seq == theirs.first_seq);
    CHECK(heard[1].last_seq == theirs.last_seq);
  }

  // Both planned to fold the same rows: the second to write changes nothing.
  auto rows = Rows(*st, "d");
  REQUIRE(rows.size() == 5);
  store::Compaction fold;
  fold.added.push_back(Seg(rows[0].seq, rows[2].seq, 3, "folded once", {}));
  fold.folded = rows[2].seq;
  REQUIRE(st->WriteSnapshot("d", rows[2].seq, "mine", fold).ok());
  store::Compaction again = fold;
  again.added[0].data = "folded twice";
  CHECK(other->WriteSnapshot("d", rows[2].seq, "theirs", again).code() == StatusCode::kAborted);
  CHECK(Segments(*st, "d").size() == 1);
  CHECK(Rows(*st, "d").size() == 2);
  CHECK(st->GetSnapshot("d").value()->data == "mine");

  // An older snapshot never replaces a newer one.
  REQUIRE(other->WriteSnapshot("d", rows[4].seq, "newest", {}).ok());
  REQUIRE(st->WriteSnapshot("d", rows[2].seq, "older", {}).ok());
  CHECK(st->GetSnapshot("d").value()->upto == rows[4].seq);
  CHECK(st->GetSnapshot("d").value()->data == "newest");
}

TEST_CASE("store: replicas sharing a store follow each other's writes to a loaded document",
          "[store][replica]") {
  FOR_EVERY_SHARED_STORE();
  ReplicaOptions opts;
  opts.public_documents = true;
  opts.snapshot_every = 9;  // snapshots and compaction on the way, by both
  auto r1 = OpenReplica(std::move(st), opts);
  REQUIRE(r1.ok());
  auto r2 = OpenReplica(OpenPeerStore(*factory, "second"), opts);
  REQUIRE(r2.ok());
  CHECK((*r1)->node_id() != (*r2)->node_id());
  REQUIRE(
      (*r1)->Transact("doc", [](Txn& t) { return t.root().Text("text")->Insert(0, "hi"); }).ok());
  std::string json;
  REQUIRE((*r2)->Read("doc", [&](const View& v) { json = v.ToJson(); }).ok());  // loaded
  CHECK(json == "{\"text\":\"hi\"}");

  std::atomic<int> remote_events{0};
  (*r2)->Subscribe("doc", [&](const ChangeEvent& ev) {
    if (!ev.local && !ev.patches.empty()) ++remote_events;
  });
  // Interleaved writers: each one's appends leave gaps the other's rows fill.
  for (int i = 0; i < 30; ++i) {
    auto& r = i % 3 == 0 ? *r2 : *r1;
    REQUIRE(r->Transact("doc", [&](Txn& t) {
               WEFT_RETURN_IF_ERROR(t.root().Put("k" + std::to_string(i % 4), int64_t{i}));
               return t.root().Text("text")->Insert(0, std::to_string(i % 10));
             }).ok());
  }
  // Each takes the other's changes from the store, without exchanging any.
  for (auto* pair : {&*r1, &*r2}) {
    auto& from = pair == &*r1 ? *r2 : *r1;
    auto token = from->CausalToken("doc");
    REQUIRE(token.ok());
    Status s = (*pair)->WaitFor(*token, std::chrono::seconds(10));
    INFO(s.ToString());
    REQUIRE(s.ok());
  }
  CHECK(*(*r1)->Version("doc") == *(*r2)->Version("doc"));
  std::string j1, j2;
  REQUIRE((*r1)->Read("doc", [&](const View& v) { j1 = v.ToJson(); }).ok());
  REQUIRE((*r2)->Read("doc", [&](const View& v) { j2 = v.ToJson(); }).ok());
  CHECK(j1 == j2);
  CHECK(remote_events.load() > 0);

  // Snapshots either wrote cover only what each had: a third replica loads everything.
  REQUIRE((*r2)->Snapshot("doc").ok());
  REQUIRE((*r1)->Transact("doc", [](Txn& t) { return t.root().Put("last", "yes"); }).ok());
  auto r3 = OpenReplica(OpenPeerStore(*factory, "third"), opts);
  REQUIRE(r3.ok());
  auto token = (*r1)->CausalToken("doc");
  REQUIRE(token.ok());
  CHECK((*r3)->Satisfies(*token).value());
  std::string j3;
  REQUIRE((*r1)->Read("doc", [&](const View& v) { j1 = v.ToJson(); }).ok());
  REQUIRE((*r3)->Read("doc", [&](const View& v) { j3 = v.ToJson(); }).ok());
  CHECK(j3 == j1);
  CHECK((*r3)->History("doc")->size() == 32);
}

// A notice can be missed (the listening connection drops): the slow poll catches up all the same.
TEST_CASE("store: a change followed from a shared store comes with its bytes as stored",
          "[store][replica]") {
  FOR_EVERY_SHARED_STORE();
  ReplicaOptions opts;
  opts.public_documents = true;
  opts.snapshot_every = 0;  // rows stay rows
  opts.follow_in_background = false;
  auto r1 = OpenReplica(std::move(st), opts);
  REQUIRE(r1.ok());
  auto r2 = OpenReplica(OpenPeerStore(*factory, "second"), opts);
  REQUIRE(r2.ok());
  REQUIRE((*r1)->Transact("doc", [](Txn& t) { return t.root().Put("a", int64_t{1}); }).ok());
  (void)(*r2)->FollowStore(true);
  REQUIRE((*r2)->Read("doc", [](const View&) {}).ok());  // loaded
  std::vector<std::string> followed;
  (*r2)->Subscribe("doc", [&](const ChangeEvent& ev) {
    followed.insert(followed.end(), ev.followed.begin(), ev.followed.end());
  });
  VersionVector before = *(*r1)->Version("doc");
  for (int i = 0; i < 3; ++i) {
    REQUIRE((*r1)->Transact("doc", [&](Txn& t) { return t.root().Put("k", int64_t{i}); }).ok());
  }
  CHECK((*r2)->FollowStore(true) == 1);
  auto sent = (*r1)->ChangesSince("doc", before);
  REQUIRE(sent.ok());
  REQUIRE(sent->size() == 3);
  CHECK(followed == *sent);
  // Its own changes are not "followed".
  followed.clear();
  REQUIRE((*r2)->Transact("doc", [](Txn& t) { return t.root().Put("b", int64_t{2}); }).ok());
  CHECK((*r2)->FollowStore(true) == 0);
  CHECK(followed.empty());
}

TEST_CASE("store: a replica on PostgreSQL that hears no notices catches up by polling",
          "[store][replica]") {
  PgFactory factory;
  auto first = factory.Open();
  INFO(first.status().ToString());
  REQUIRE(first.ok());
  ReplicaOptions opts;
  opts.public_documents = true;
  auto writer = OpenReplica(std::move(*first), opts);
  REQUIRE(writer.ok());
  REQUIRE((*writer)->Transact("doc", [](Txn& t) { return t.root().Put("k", int64_t{1}); }).ok());
  auto deaf = factory.OpenPeer("deaf", /*listen=*/false);
  REQUIRE(deaf.ok());
  opts.follow_poll = std::chrono::milliseconds(100);
  auto reader = OpenReplica(std::move(*deaf), opts);
  REQUIRE(reader.ok());
  std::string json;
  REQUIRE((*reader)->Read("doc", [&](const View& v) { json = v.ToJson(); }).ok());  // loaded
  CHECK(json == "{\"k\":1}");
  for (int i = 2; i <= 5; ++i) {
    REQUIRE((*writer)->Transact("doc", [&](Txn& t) { return t.root().Put("k", int64_t{i}); }).ok());
  }
  auto token = (*writer)->CausalToken("doc");
  REQUIRE(token.ok());
  Status s = (*reader)->WaitFor(*token, std::chrono::seconds(10));
  INFO(s.ToString());
  REQUIRE(s.ok());
  REQUIRE((*reader)->Read("doc", [&](const View& v) { json = v.ToJson(); }).ok());
  CHECK(json == "{\"k\":5}");
}

TEST_CASE("store: a replica runs on every store", "[store][replica]") {
  FOR_EVERY_STORE();
  ReplicaOptions opts;
  opts.public_documents = true;
  opts.snapshot_every = 7;  // snapshots and compaction on the way
  auto r = OpenReplica(std::move(st), opts);
  INFO(r.status().ToString());
  REQUIRE(r.ok());
  for (int i = 0; i < 40; ++i) {
    REQUIRE((*r)->Transact("doc",
                           [&](Txn& t) {
                             WEFT_RETURN_IF_ERROR(
                                 t.root().Put("k" + std::to_string(i % 5), int64_t{i}));
                             return t.root().Text("text")->Insert(0, "ab");
                           })
                .ok());
  }
  REQUIRE((*r)->Snapshot("doc").ok());
  REQUIRE((*r)->Transact("doc", [](Txn& t) { return t.root().Put("last", "yes"); }).ok());
  std::string json;
  REQUIRE((*r)->Read("doc", [&](const View& v) { json = v.ToJson(); }).ok());
  const VersionVector version = *(*r)->Version("doc");
  auto history = (*r)->History("doc");
  REQUIRE(history.ok());
  CHECK(history->size() == 41);
  auto all = (*r)->ChangesSince("doc", {});
  REQUIRE(all.ok());
  CHECK(all->size() == 41);

  // Reopened on the same data: the same document, from its snapshot and the log after it.
  r->reset();
  auto again = factory->Open();
  REQUIRE(again.ok());
  auto r2 = OpenReplica(std::move(*again), opts);
  REQUIRE(r2.ok());
  std::string json2;
  REQUIRE((*r2)->Read("doc", [&](const View& v) { json2 = v.ToJson(); }).ok());
  CHECK(json2 == json);
  CHECK(*(*r2)->Version("doc") == version);
  CHECK((*r2)->History("doc")->size() == 41);

  // A replica on the other store takes the changes and converges.
  auto other_factory = MakeFactory(kind == "memory" ? "sqlite" : "memory");
  auto other_store = other_factory->Open();
  REQUIRE(other_store.ok());
  auto other = OpenReplica(std::move(*other_store), opts);
  REQUIRE(other.ok());
  auto since = (*r2)->ChangesSince("doc", {});
  REQUIRE(since.ok());
  auto applied = (*other)->ApplyRemoteChanges("doc", *since);
  INFO(applied.status().ToString());
  REQUIRE(applied.ok());
  CHECK(applied->applied == 41);
  std::string json3;
  REQUIRE((*other)->Read("doc", [&](const View& v) { json3 = v.ToJson(); }).ok());
  CHECK(json3 == json);

  // Bootstrapping from a snapshot, and peers' versions.
  auto snap = (*r2)->ExportSnapshot("doc");
  REQUIRE(snap.ok());
  REQUIRE((*r2)->SetPeerVersion("ws://relay", "doc", version).ok());
  CHECK((*r2)->PeerVersions("ws://relay").value().at(0).second == version);
  REQUIRE((*other)->DeleteDocument("doc").ok());
  auto imported = (*other)->ImportSnapshot("doc", snap->data, &snap->version);
  REQUIRE(imported.ok());
  CHECK(*imported == version);
  CHECK(*(*other)->BaseVersion("doc") == version);
}

}  // namespace
}  // namespace weft
