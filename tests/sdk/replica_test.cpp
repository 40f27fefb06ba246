// The SDK replica: transactions, reopen, documents, remote changes, change feed, causal tokens,
// conflict resolution and concurrent readers.
#include "weft/replica.h"

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <future>
#include <mutex>
#include <thread>

#include "doc_sim.h"
#include "open_replica.h"
#include "random.h"
#include "temp_dir.h"

using namespace weft;
using weft::testing::TempDir;

namespace {

std::unique_ptr<Replica> OpenAt(const std::string& path, ReplicaOptions opts = {}) {
  return testing::OpenReplicaAt(path, std::move(opts));
}

std::string Canonical(Replica& r, std::string_view doc) {
  std::string out;
  REQUIRE(r.Read(doc, [&](const View& v) { out = v.CanonicalState(); }).ok());
  return out;
}

std::string Json(Replica& r, std::string_view doc) {
  std::string out;
  REQUIRE(r.Read(doc, [&](const View& v) { out = v.ToJson(); }).ok());
  return out;
}

// Sends what `to` lacks of `doc` from `from`.
size_t Sync(Replica& from, Replica& to, std::string_view doc) {
  VersionVector have;
  auto v = to.Version(doc);
  if (v.ok()) have = *v;
  auto changes = from.ChangesSince(doc, have);
  REQUIRE(changes.ok());
  if (changes->empty()) return 0;
  auto report = to.ApplyRemoteChanges(doc, *changes);
  INFO(report.status().ToString());
  REQUIRE(report.ok());
  return report->applied;
}

// What ApplyRemoteChanges did with a batch before it indexed waiting changes: passes over what is
// left, each applying in batch order what it can, until one applies nothing. The reference for
// the order changes are applied (and logged) in, the counts and the error.
struct Passes {
  std::vector<size_t> order;  // batch indexes, in the order applied
  size_t duplicates = 0;
  Status status;
};
Passes ApplyInPasses(crdt::Document doc, const std::vector<crdt::Change>& batch) {
  Passes out;
  std::vector<bool> done(batch.size(), false);
  bool progress = true;
  while (progress) {
    progress = false;
    for (size_t i = 0; i < batch.size(); ++i) {
      const crdt::Change& c = batch[i];
      if (done[i]) continue;
      if (doc.HasChange({c.author, c.end_seq()})) {
        done[i] = true, ++out.duplicates, progress = true;
        continue;
      }
      Status s = doc.ApplyChange(c);
      if (s.code() == StatusCode::kMissingDependency) continue;
      if (!s.ok()) {
        out.status = Status(s.code(), "change " + c.id().ToString() + ": " + s.message());
        return out;
      }
      done[i] = true, progress = true;
      out.order.push_back(i);
    }
  }
  for (size_t i = 0; i < batch.size(); ++i) {
    if (!done[i]) {
      out.status = doc.ApplyChange(batch[i]);
      break;
    }
  }
  return out;
}

std::vector<crdt::Change> History(uint64_t seed, int authors, int steps) {
  auto history = weft::testing::RandomHistory(seed, authors, steps);
  INFO(history.status().ToString());
  REQUIRE(history.ok());
  return std::move(*history);
}

std::vector<ChangeBlob> Encode(const std::vector<crdt::Change>& changes) {
  std::vector<ChangeBlob> out;
  for (const crdt::Change& c : changes) out.push_back(crdt::EncodeChange(c));
  return out;
}

// Applies `batch` to document "d" of a new replica and checks it against the passes: the same
// result, the same changes logged in the same order, the state of `history` applied in order.
void ApplyBesidePasses(const std::string& path, const std::vector<crdt::Change>& batch,
                       const std::vector<crdt::Change>& history) {
  auto r = OpenAt(path);
  Passes want = ApplyInPasses(crdt::Document(NodeId{99}), batch);
  auto got = r->ApplyRemoteChanges("d", Encode(batch));
  if (!want.status.ok()) {
    CHECK(got.status().code() == want.status.code());
    CHECK(got.status().message() == want.status.message());
    CHECK(r->Version("d").status().code() == StatusCode::kNotFound);
    return;
  }
  INFO(got.status().ToString());
  REQUIRE(got.ok());
  CHECK(got->applied == want.order.size());
  CHECK(got->duplicates == want.duplicates);
  std::vector<ChangeBlob> logged_want;
  for (size_t i : want.order) logged_want.push_back(crdt::EncodeChange(batch[i]));
  CHECK(*r->ChangesSince("d", {}) == logged_want);
  crdt::Document in_order(NodeId{99});
  for (const crdt::Change& c : history) REQUIRE(in_order.ApplyChange(c).ok());
  CHECK(Canonical(*r, "d") == in_order.CanonicalState());
}

}  // namespace

TEST_CASE("a replica keeps its node id and its documents across reopen", "[sdk]") {
  TempDir dir;
  NodeId id;
  {
    auto r = OpenAt(dir.File("a.db"));
    id = r->node_id();
    CHECK(id.valid());
    auto c = r->Transact("todo", [](Txn& t) { return t.root().Put("title", "milk"); });
    REQUIRE(c.ok());
    CHECK(c->changed);
    REQUIRE(r->CreateDocument("empty").ok());
  }
  auto r = OpenAt(dir.File("a.db"));
  CHECK(r->node_id() == id);
  CHECK(*r->ListDocuments() == std::vector<std::string>{"empty", "todo"});
  CHECK(Json(*r, "todo") == R"({"title":"milk"})");
  REQUIRE(r->DeleteDocument("todo").ok());
  CHECK_FALSE(r->HasDocument("todo"));
  CHECK(r->Read("todo", [](const View&) {}).code() == StatusCode::kNotFound);
  CHECK(r->DeleteDocument("todo").code() == StatusCode::kNotFound);
}

TEST_CASE("reopening after random transactions gives the same canonical state", "[sdk]") {
  for (uint64_t seed = 1; seed <= 8; ++seed) {
    INFO("seed " << seed);
    TempDir dir;
    weft::testing::Rng rng(seed);
    std::string before;
    {
      ReplicaOptions opts;
      opts.snapshot_every = 1 + static_cast<uint32_t>(seed % 4) * 7;  // snapshots and log replay
      auto r = OpenAt(dir.File("r.db"), opts);
      for (int i = 0; i < 60; ++i) {
        auto c = r->Transact("doc", [&](Txn& t) {
          int n = static_cast<int>(rng.Range(1, 3));
          for (int k = 0; k < n; ++k) {
            Status s =
                weft::testing::RandomEdit(const_cast<crdt::Document&>(t.document()), t.raw(), rng);
            if (!s.ok()) return s;
          }
          return Status::Ok();
        });
        REQUIRE(c.ok());
      }
      before = Canonical(*r, "doc");
    }
    auto r = OpenAt(dir.File("r.db"));
    CHECK(Canonical(*r, "doc") == before);
  }
}

TEST_CASE("a failing or throwing transaction leaves nothing behind", "[sdk]") {
  TempDir dir;
  auto r = OpenAt(dir.File("a.db"));
  REQUIRE(r->Transact("d", [](Txn& t) { return t.root().Put("k", 1); }).ok());
  std::string before = Canonical(*r, "d");
  auto failed = r->Transact("d", [](Txn& t) {
    (void)t.root().Put("k", 2);
    (void)t.root().Put("other", true);
    return Status::InvalidArgument("changed my mind");
  });
  CHECK(failed.status().code() == StatusCode::kInvalidArgument);
  CHECK(Canonical(*r, "d") == before);
  auto threw = r->Transact("d", [](Txn& t) -> Status {
    (void)t.root().Put("k", 3);
    throw std::runtime_error("boom");
  });
  CHECK(threw.status().code() == StatusCode::kAborted);
  CHECK(Canonical(*r, "d") == before);
  // A failing transaction on a new document does not create it.
  CHECK_FALSE(r->Transact("new", [](Txn&) { return Status::Aborted("no"); }).ok());
  CHECK_FALSE(r->HasDocument("new"));
  r.reset();
  auto again = OpenAt(dir.File("a.db"));
  CHECK(Canonical(*again, "d") == before);
}

TEST_CASE("typed handles read and write every value type", "[sdk]") {
  TempDir dir;
  auto r = OpenAt(dir.File("a.db"));
  REQUIRE(r->Transact("d", [](Txn& t) {
             auto root = t.root();
             WEFT_RETURN_IF_ERROR(root.Put("title", "hello"));
             auto likes = root.Counter("likes");
             WEFT_RETURN_IF_ERROR(likes.status());
             WEFT_RETURN_IF_ERROR(likes->Increment(3));
             auto tags = root.Set("tags");
             WEFT_RETURN_IF_ERROR(tags->Add("a"));
             auto reg = root.Register("reg");
             WEFT_RETURN_IF_ERROR(reg->Set(1.5));
             auto lww = root.Lww("lww");
             WEFT_RETURN_IF_ERROR(lww->Set("x"));
             auto inner = root.Map("inner");
             return inner->Put("k", int64_t{7});
           }).ok());
  REQUIRE(r->Read("d", [](const View& v) {
             auto root = v.root();
             CHECK(*root.Counter("likes")->Value() == 3);
             CHECK(*root.Set("tags")->Contains("a"));
             CHECK(root.Register("reg")->Siblings()->at(0).value == crdt::Scalar(1.5));
             CHECK(*root.Lww("lww")->Read()->value == crdt::Scalar("x"));
             CHECK(root.Map("inner")->Get("k")->values.at(0).value.scalar() ==
                   crdt::Scalar(int64_t{7}));
             // Read-only: no writes, no creation, type errors reported.
             CHECK(root.Put("x", 1).code() == StatusCode::kInvalidArgument);
             CHECK(root.Counter("absent").status().code() == StatusCode::kNotFound);
             CHECK(root.Counter("title").status().code() == StatusCode::kTypeMismatch);
           }).ok());
}

TEST_CASE("remote changes: batches in any order, duplicates, missing dependencies", "[sdk]") {
  TempDir dir;
  auto a = OpenAt(dir.File("a.db")), b = OpenAt(dir.File("b.db"));
  for (int i = 0; i < 5; ++i) {
    REQUIRE(
        a->Transact("d", [&](Txn& t) { return t.root().Put("k" + std::to_string(i), i); }).ok());
  }
  auto all = a->ChangesSince("d", {});
  REQUIRE(all->size() == 5);
  // A batch missing its first change is refused whole.
  std::vector<ChangeBlob> tail(all->begin() + 1, all->end());
  auto refused = b->ApplyRemoteChanges("d", tail);
  CHECK(refused.status().code() == StatusCode::kMissingDependency);
  CHECK(b->Version("d").status().code() == StatusCode::kNotFound);
  // Reversed order within one batch is fine.
  std::vector<ChangeBlob> reversed(all->rbegin(), all->rend());
  auto ok = b->ApplyRemoteChanges("d", reversed);
  REQUIRE(ok.ok());
  CHECK(ok->applied == 5);
  auto dup = b->ApplyRemoteChanges("d", *all);
  REQUIRE(dup.ok());
  CHECK(dup->applied == 0);
  CHECK(dup->duplicates == 5);
  CHECK(Canonical(*a, "d") == Canonical(*b, "d"));
  // The receiver's log serves the changes on to a third replica.
  auto c = OpenAt(dir.File("c.db"));
  CHECK(Sync(*b, *c, "d") == 5);
  CHECK(Canonical(*c, "d") == Canonical(*a, "d"));
}

TEST_CASE("a batch of many authors' changes in reverse dependency order applies whole", "[sdk]") {
  TempDir dir;
  std::vector<crdt::Change> history = History(3, 4, 150);
  REQUIRE(history.size() > 100);
  std::vector<crdt::Change> reversed(history.rbegin(), history.rend());
  auto r = OpenAt(dir.File("r.db"));
  auto report = r->ApplyRemoteChanges("d", Encode(reversed));
  INFO(report.status().ToString());
  REQUIRE(report.ok());
  CHECK(report->applied == history.size());
  CHECK(report->duplicates == 0);
  // Logged in a causal order, so that the log serves them on as they are.
  auto logged = r->ChangesSince("d", {});
  REQUIRE(logged->size() == history.size());
  crdt::Document replay(NodeId{99});
  for (const ChangeBlob& blob : *logged)
    REQUIRE(replay.ApplyChange(*crdt::DecodeChange(blob)).ok());
  CHECK(Canonical(*r, "d") == replay.CanonicalState());
  ApplyBesidePasses(dir.File("passes.db"), reversed, history);
}

TEST_CASE("batches in random orders apply as passes over them would, and converge", "[sdk]") {
  TempDir dir;
  uint64_t only = weft::testing::SeedFromEnv();
  uint64_t first = only ? only : 1, last = only ? only : 30;
  for (uint64_t seed = first; seed <= last; ++seed) {
    INFO("seed " << seed << " (replay: WEFT_SEED=" << seed << ")");
    weft::testing::Rng rng(seed);
    std::vector<crdt::Change> history =
        History(seed, static_cast<int>(rng.Range(2, 5)), static_cast<int>(rng.Range(10, 100)));
    // A permutation, with some changes twice.
    std::vector<crdt::Change> batch = history;
    for (const crdt::Change& c : history) {
      if (rng.Chance(10)) batch.push_back(c);
    }
    for (size_t i = batch.size(); i > 1; --i) std::swap(batch[i - 1], batch[rng.Below(i)]);
    ApplyBesidePasses(dir.File("r" + std::to_string(seed) + ".db"), batch, history);
  }
}

TEST_CASE("a batch that fails fails as before: the same error, nothing applied", "[sdk]") {
  TempDir dir;
  std::vector<crdt::Change> history = History(5, 3, 60);
  std::vector<crdt::Change> reversed(history.rbegin(), history.rend());
  // A change after the first ten that a later change of its author needs.
  size_t needed = 10;
  auto later_of_author = [&](size_t k) {
    for (size_t j = k + 1; j < history.size(); ++j) {
      if (history[j].author == history[k].author) return true;
    }
    return false;
  };
  while (needed < history.size() && !later_of_author(needed)) ++needed;
  REQUIRE(needed < history.size());
  // Its place in `reversed`.
  auto gap = static_cast<std::ptrdiff_t>(history.size() - 1 - needed);
  SECTION("a change depends on one neither held nor in the batch") {
    std::vector<crdt::Change> batch = reversed;
    batch.erase(batch.begin() + gap);
    Passes want = ApplyInPasses(crdt::Document(NodeId{99}), batch);
    REQUIRE(want.status.code() == StatusCode::kMissingDependency);
    ApplyBesidePasses(dir.File("missing.db"), batch, history);
  }
  SECTION("an invalid change") {
    std::vector<crdt::Change> batch = reversed;
    batch[batch.size() / 2].ops[0].object = crdt::Dot{NodeId{77}, 5};  // no change made it
    Passes want = ApplyInPasses(crdt::Document(NodeId{99}), batch);
    REQUIRE(want.status.code() == StatusCode::kCorruption);
    ApplyBesidePasses(dir.File("invalid.db"), batch, history);
  }
  SECTION("a replica that holds part of the history keeps it") {
    auto r = OpenAt(dir.File("part.db"));
    std::vector<crdt::Change> head(history.begin(), history.begin() + 10);
    REQUIRE(r->ApplyRemoteChanges("d", Encode(head)).ok());
    std::string before = Canonical(*r, "d");
    std::vector<crdt::Change> batch = reversed;
    batch.erase(batch.begin() + gap);
    batch.pop_back();  // the first change, held already
    auto report = r->ApplyRemoteChanges("d", Encode(batch));
    CHECK(report.status().code() == StatusCode::kMissingDependency);
    CHECK(Canonical(*r, "d") == before);
    CHECK(r->ChangesSince("d", {})->size() == 10);
  }
}

TEST_CASE("two replicas edit offline and converge, with siblings where due", "[sdk]") {
  TempDir dir;
  auto a = OpenAt(dir.File("a.db")), b = OpenAt(dir.File("b.db"));
  REQUIRE(a->Transact("d", [](Txn& t) {
             WEFT_RETURN_IF_ERROR(t.root().Counter("n")->Increment(1));
             return t.root().Set("s").status();
           }).ok());
  Sync(*a, *b, "d");
  REQUIRE(a->Transact("d", [](Txn& t) {
             WEFT_RETURN_IF_ERROR(t.root().Put("title", "A"));
             WEFT_RETURN_IF_ERROR(t.root().Counter("n")->Increment(2));
             return t.root().Set("s")->Add("x");
           }).ok());
  REQUIRE(b->Transact("d", [](Txn& t) {
             WEFT_RETURN_IF_ERROR(t.root().Put("title", "B"));
             WEFT_RETURN_IF_ERROR(t.root().Counter("n")->Increment(5));
             return t.root().Set("s")->Add("y");
           }).ok());
  Sync(*a, *b, "d");
  Sync(*b, *a, "d");
  CHECK(Canonical(*a, "d") == Canonical(*b, "d"));
  // Siblings are ordered by dot, and node ids are random: accept either order.
  std::string json = Json(*a, "d");
  CHECK((json == R"({"n":8,"s":["x","y"],"title":{"conflict":["A","B"]}})" ||
         json == R"({"n":8,"s":["x","y"],"title":{"conflict":["B","A"]}})"));
}

TEST_CASE("the change feed reports local and remote commits in order", "[sdk][feed]") {
  TempDir dir;
  auto a = OpenAt(dir.File("a.db")), b = OpenAt(dir.File("b.db"));
  std::vector<ChangeEvent> seen_a, seen_b_doc, seen_b_all;
  a->Subscribe("", [&](const ChangeEvent& e) { seen_a.push_back(e); });
  b->Subscribe("d", [&](const ChangeEvent& e) { seen_b_doc.push_back(e); });
  uint64_t all_id = b->Subscribe("", [&](const ChangeEvent& e) { seen_b_all.push_back(e); });
  REQUIRE(a->Transact("d", [](Txn& t) { return t.root().Put("k", 1); }).ok());
  REQUIRE(a->Transact("other", [](Txn& t) { return t.root().Set("s")->Add("e"); }).ok());
  REQUIRE(seen_a.size() == 2);
  CHECK(seen_a[0].local);
  CHECK(seen_a[0].doc == "d");
  REQUIRE(seen_a[0].patches.size() == 1);
  CHECK(seen_a[0].patches[0].key == "k");
  CHECK(seen_a[1].doc == "other");
  CHECK(seen_a[1].patches.back().type == crdt::Patch::Type::kSetAdd);
  Sync(*a, *b, "d");
  Sync(*a, *b, "other");
  REQUIRE(seen_b_doc.size() == 1);
  CHECK_FALSE(seen_b_doc[0].local);
  CHECK(seen_b_doc[0].patches[0].key == "k");
  CHECK(seen_b_all.size() == 2);
  b->Unsubscribe(all_id);
  REQUIRE(b->Transact("d", [](Txn& t) { return t.root().Put("k", 2); }).ok());
  CHECK(seen_b_all.size() == 2);
  CHECK(seen_b_doc.size() == 2);
  // A callback may commit: its event follows, in order.
  std::vector<std::string> order;
  a->Subscribe("chain", [&](const ChangeEvent& e) {
    order.push_back(e.patches.at(0).key);
    if (e.patches.at(0).key == "first") {
      REQUIRE(a->Transact("chain", [](Txn& t) { return t.root().Put("second", 1); }).ok());
    }
  });
  REQUIRE(a->Transact("chain", [](Txn& t) { return t.root().Put("first", 1); }).ok());
  CHECK(order == std::vector<std::string>{"first", "second"});
}

TEST_CASE("causal tokens give cross-device read-after-write", "[sdk][token]") {
  TempDir dir;
  auto phone = OpenAt(dir.File("phone.db")), laptop = OpenAt(dir.File("laptop.db"));
  REQUIRE(phone->Transact("d", [](Txn& t) { return t.root().Put("k", 1); }).ok());
  std::string token = *phone->CausalToken("d");
  CHECK(*phone->Satisfies(token));
  CHECK_FALSE(*laptop->Satisfies(token));
  CHECK(laptop->WaitFor(token, std::chrono::milliseconds(20)).code() == StatusCode::kTimeout);
  std::thread syncer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    Sync(*phone, *laptop, "d");
  });
  Status waited = laptop->WaitFor(token, std::chrono::seconds(30));
  syncer.join();
  CHECK(waited.ok());
  CHECK(*laptop->Satisfies(token));
  auto decoded = DecodeCausalToken(token);
  REQUIRE(decoded.ok());
  CHECK(decoded->first == "d");
  CHECK(decoded->second == *phone->Version("d"));
  CHECK_FALSE(DecodeCausalToken("no at sign").ok());
  CHECK_FALSE(DecodeCausalToken("d@zz.1").ok());
}

TEST_CASE("a resolver settles siblings created by a remote change", "[sdk][conflict]") {
  TempDir dir;
  auto a = OpenAt(dir.File("a.db")), b = OpenAt(dir.File("b.db"));
  std::vector<ConflictInfo> shown;
  b->SetConflictResolver("d", [&](const ConflictInfo& info) -> std::optional<crdt::Scalar> {
    shown.push_back(info);
    std::string merged;
    for (const auto& v : info.siblings) merged += v.scalar().as<std::string>();
    return crdt::Scalar(merged);
  });
  REQUIRE(a->Transact("d", [](Txn& t) { return t.root().Put("title", "A"); }).ok());
  REQUIRE(b->Transact("d", [](Txn& t) { return t.root().Put("title", "B"); }).ok());
  Sync(*a, *b, "d");
  REQUIRE(shown.size() == 1);
  CHECK(shown[0].key == "title");
  CHECK(shown[0].siblings.size() == 2);
  std::string resolved = Json(*b, "d");
  CHECK((resolved == R"({"title":"AB"})" || resolved == R"({"title":"BA"})"));
  Sync(*b, *a, "d");
  CHECK(Json(*a, "d") == resolved);
}

TEST_CASE("readers run while a writer commits", "[sdk][threads]") {
  TempDir dir;
  auto r = OpenAt(dir.File("a.db"));
  REQUIRE(r->Transact("d", [](Txn& t) { return t.root().Counter("n").status(); }).ok());
  std::atomic<bool> stop{false};
  std::atomic<int64_t> reads{0};
  std::atomic<bool> monotonic{true};
  std::vector<std::thread> readers;
  for (int i = 0; i < 3; ++i) {
    readers.emplace_back([&] {
      int64_t last = 0;
      while (!stop) {
        (void)r->Read("d", [&](const View& v) {
          int64_t n = *v.root().Counter("n")->Value();
          if (n < last) monotonic = false;
          last = n;
        });
        ++reads;
      }
    });
  }
  for (int i = 0; i < 300; ++i) {
    REQUIRE(r->Transact("d", [](Txn& t) { return t.root().Counter("n")->Increment(1); }).ok());
  }
  stop = true;
  for (auto& t : readers) t.join();
  CHECK(monotonic);
  CHECK(reads > 0);
  int64_t n = 0;
  REQUIRE(r->Read("d", [&](const View& v) { n = *v.root().Counter("n")->Value(); }).ok());
  CHECK(n == 300);
}

TEST_CASE("a writer of one document holds up no other document", "[sdk][threads]") {
  TempDir dir;
  auto r = OpenAt(dir.File("a.db"));
  auto other = OpenAt(dir.File("b.db"));
  REQUIRE(other->Transact("c", [](Txn& t) { return t.root().Put("k", "v"); }).ok());
  auto from_other = other->ChangesSince("c", {});
  REQUIRE(from_other.ok());
  // A transaction on "a" that does not end until this test lets it.
  std::mutex mu;
  std::condition_variable cv;
  bool entered = false, release = false;
  std::thread held([&] {
    auto c = r->Transact("a", [&](Txn& t) {
      std::unique_lock l(mu);
      entered = true;
      cv.notify_all();
      cv.wait(l, [&] { return release; });
      return t.root().Put("k", "a");
    });
    CHECK(c.ok());
  });
  {
    std::unique_lock l(mu);
    cv.wait(l, [&] { return entered; });
  }
  // Meanwhile other documents commit, take a peer's batch, are read and snapshotted. Each runs on
  // a thread of its own, so that a lock shared with "a" fails the test instead of hanging it.
  auto others = std::async(std::launch::async, [&] {
    Status s = r->Transact("b", [](Txn& t) { return t.root().Put("k", "b"); }).status();
    if (s.ok()) s = r->ApplyRemoteChanges("c", *from_other).status();
    if (s.ok()) s = r->Snapshot("b");
    std::string json;
    if (s.ok()) s = r->Read("c", [&](const View& v) { json = v.ToJson(); });
    return s.ok() ? json : s.ToString();
  });
  const bool done = others.wait_for(std::chrono::seconds(30)) == std::future_status::ready;
  {
    std::lock_guard l(mu);
    release = true;
  }
  cv.notify_all();
  held.join();
  REQUIRE(done);
  CHECK(others.get() == R"({"k":"v"})");
  CHECK(Json(*r, "a") == R"({"k":"a"})");
  CHECK(Json(*r, "b") == R"({"k":"b"})");
}

TEST_CASE("text and lists through handles, synced between replicas", "[sdk][text]") {
  TempDir dir;
  auto a = OpenAt(dir.File("a.db")), b = OpenAt(dir.File("b.db"));
  REQUIRE(a->Transact("d", [](Txn& t) {
             auto text = t.root().Text("body");
             WEFT_RETURN_IF_ERROR(text.status());
             WEFT_RETURN_IF_ERROR(text->Insert(0, "héllo"));
             auto list = t.root().List("todo");
             WEFT_RETURN_IF_ERROR(list->Insert(0, {"milk", "eggs"}));
             auto item = list->InsertMap(2);
             WEFT_RETURN_IF_ERROR(item.status());
             return item->Put("title", "bread");
           }).ok());
  Sync(*a, *b, "d");
  REQUIRE(b->Transact("d", [](Txn& t) {
             WEFT_RETURN_IF_ERROR(t.root().Text("body")->Insert(5, " world"));
             return t.root().List("todo")->Delete(0, 1);
           }).ok());
  Sync(*b, *a, "d");
  CHECK(Json(*a, "d") == R"({"body":"héllo world","todo":["eggs",{"title":"bread"}]})");
  REQUIRE(a->Read("d", [](const View& v) {
             auto text = v.root().Text("body");
             CHECK(*text->Size() == 11);
             auto anchor = text->AnchorAt(5, crdt::Bias::kRight);
             CHECK(*text->IndexOf(*anchor) == 5);
             CHECK(text->Insert(0, "x").code() == StatusCode::kInvalidArgument);
           }).ok());
  a.reset();
  auto again = OpenAt(dir.File("a.db"));
  CHECK(Canonical(*again, "d") == Canonical(*b, "d"));
}

TEST_CASE("the stored hook of remote changes runs before the change feed and never on failure",
          "[sdk]") {
  TempDir dir;
  auto a = OpenAt(dir.File("a.db")), b = OpenAt(dir.File("b.db"));
  for (int i = 0; i < 3; ++i) {
    REQUIRE(
        a->Transact("d", [&](Txn& t) { return t.root().Put("k" + std::to_string(i), i); }).ok());
  }
  auto all = a->ChangesSince("d", {});
  REQUIRE(all.ok());
  std::vector<std::string> order;
  uint64_t sub = b->Subscribe("d", [&](const ChangeEvent&) { order.push_back("feed"); });
  // A refused batch (its first change missing) runs no hook.
  std::vector<ChangeBlob> tail(all->begin() + 1, all->end());
  bool ran = false;
  auto refused = b->ApplyRemoteChanges("d", tail, [&](const ApplyReport&) { ran = true; });
  CHECK(refused.status().code() == StatusCode::kMissingDependency);
  CHECK_FALSE(ran);
  VersionVector seen;
  auto ok = b->ApplyRemoteChanges("d", *all, [&](const ApplyReport& r) {
    order.push_back("stored");
    seen = r.version;
  });
  REQUIRE(ok.ok());
  CHECK(seen == *a->Version("d"));
  CHECK(order == std::vector<std::string>{"stored", "feed"});
  b->Unsubscribe(sub);
}

TEST_CASE("group durability: remote changes report a commit to wait on, local ones wait", "[sdk]") {
  TempDir dir;
  auto a = OpenAt(dir.File("a.db"));
  for (int i = 0; i < 4; ++i) {
    REQUIRE(
        a->Transact("d", [&](Txn& t) { return t.root().Put("k" + std::to_string(i), i); }).ok());
  }
  auto all = a->ChangesSince("d", {});
  REQUIRE(all.ok());
  ReplicaOptions grouped;
  grouped.durability = Durability::kGroup;
  {
    auto b = OpenAt(dir.File("b.db"), grouped);
    auto first = b->ApplyRemoteChanges("d", {(*all)[0], (*all)[1]});
    REQUIRE(first.ok());
    CHECK(first->commit > 0);
    auto second = b->ApplyRemoteChanges("d", {(*all)[2], (*all)[3]});
    REQUIRE(second.ok());
    CHECK(second->commit > first->commit);
    // Nothing new stored: the commit to wait on is the latest one (what it duplicated may not be
    // durable yet).
    auto dup = b->ApplyRemoteChanges("d", {(*all)[3]});
    REQUIRE(dup.ok());
    CHECK(dup->applied == 0);
    CHECK(dup->commit == second->commit);
    // Each told once durable.
    std::mutex mu;
    std::condition_variable cv;
    std::vector<uint64_t> told;
    for (uint64_t c : {first->commit, second->commit}) {
      b->WhenDurable(c, [&, c](Status s) {
        CHECK(s.ok());
        std::lock_guard lock(mu);
        told.push_back(c);
        cv.notify_all();
      });
    }
    REQUIRE(b->WaitDurable(second->commit).ok());
    {
      // WaitDurable returns once the commits are durable, possibly before the log-sync thread has
      // told its waiters; and a waiter that asks once its commit is durable is told at once on
      // its own thread, so the order holds only among those the thread tells.
      std::unique_lock lock(mu);
      REQUIRE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return told.size() >= 2; }));
      std::sort(told.begin(), told.end());
      CHECK(told == std::vector<uint64_t>{first->commit, second->commit});
    }
    // Already durable: at once.
    bool now = false;
    b->WhenDurable(first->commit, [&](Status s) { now = s.ok(); });
    CHECK(now);
    // A local commit returns durable (nothing to wait for).
    REQUIRE(b->Transact("d", [](Txn& t) { return t.root().Put("local", 1); }).ok());
  }
  // Everything is there after reopening.
  auto b = OpenAt(dir.File("b.db"), grouped);
  CHECK(b->Version("d")->Dominates(*a->Version("d")));
  CHECK(Json(*b, "d").find("\"local\":1") != std::string::npos);
  // Other durabilities report nothing to wait on.
  auto c = OpenAt(dir.File("c.db"));
  auto plain = c->ApplyRemoteChanges("d", *all);
  REQUIRE(plain.ok());
  CHECK(plain->commit == 0);
  CHECK(c->WaitDurable(0).ok());
}

TEST_CASE("group durability checkpoints the log off the commit path", "[sdk]") {
  // The writer does not checkpoint (below LogSyncer::kMaxFrames): the database file grows only
  // when the log-sync thread copies the WAL into it.
  TempDir dir;
  ReplicaOptions grouped;
  grouped.durability = Durability::kGroup;
  grouped.snapshot_every = 0;  // only the commits below write
  auto r = OpenAt(dir.File("g.db"), grouped);
  const std::string db = dir.File("g.db");
  const auto before = std::filesystem::file_size(db);
  std::string pad(3000, 'x');  // about a page per commit
  for (int i = 0; i < 1500; ++i) {
    REQUIRE(
        r->Transact("d", [&](Txn& t) { return t.root().Put("k" + std::to_string(i), pad); }).ok());
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::filesystem::file_size(db) <= before && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  CHECK(std::filesystem::file_size(db) > before);
  CHECK(std::filesystem::file_size(dir.File("g.db-wal")) > 0);
}
