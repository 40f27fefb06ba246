// Causal delivery through Document::Receive: changes that arrive before what they depend on are
// held, in any order and any number, and applied once it arrives. The held changes are indexed by
// what each waits for; these tests hold that to the plain rule it replaced (every held change
// checked again, in arrival order, after each apply): the same changes held, applied in the same
// order, to the same state. Randomized cases print their seed; WEFT_SEED=N replays one.
#include <algorithm>
#include <catch2/catch.hpp>
#include <optional>
#include <string>
#include <vector>

#include "doc_sim.h"
#include "random.h"
#include "weft/crdt/document.h"

using namespace weft::crdt;
using weft::Status;
using weft::StatusCode;
using weft::testing::Rng;

namespace {

constexpr uint64_t kNow = 1'700'000'000'000;

// The rule Receive follows, kept as simple as it can be: hold what ApplyChange refuses for a
// missing dependency (once per id), and after each apply check the held changes from the first
// that arrived, applying (or dropping, when invalid or a duplicate) the first that is not waiting.
class PlainReceiver {
 public:
  explicit PlainReceiver(NodeId self) : doc_(self) {}

  Status Receive(const Change& c) {
    Status s = doc_.ApplyChange(c);
    if (s.code() == StatusCode::kMissingDependency) {
      bool held = std::any_of(held_.begin(), held_.end(),
                              [&](const Change& h) { return h.id() == c.id(); });
      if (!held) held_.push_back(c);
      return Status::Ok();
    }
    if (!s.ok()) return s;
    for (size_t i = 0; i < held_.size();) {
      if (doc_.ApplyChange(held_[i]).code() == StatusCode::kMissingDependency) {
        ++i;
        continue;
      }
      held_.erase(held_.begin() + static_cast<std::ptrdiff_t>(i));
      i = 0;
    }
    return Status::Ok();
  }

  const Document& doc() const { return doc_; }
  size_t pending() const { return held_.size(); }

 private:
  Document doc_;
  std::vector<Change> held_;
};

Change Commit(Transaction& txn) {
  auto c = txn.Commit();
  REQUIRE(c.has_value());
  return *c;
}

// `n` map writes by one author, each after the one before.
std::vector<Change> Chain(Document& author, int n) {
  std::vector<Change> out;
  for (int i = 0; i < n; ++i) {
    auto txn = author.Begin(kNow + static_cast<uint64_t>(i));
    REQUIRE(txn.Put(kRoot, "k" + std::to_string(i), i).ok());
    out.push_back(Commit(txn));
  }
  return out;
}

std::vector<Change> RandomHistory(uint64_t seed, int authors, int steps) {
  auto history = weft::testing::RandomHistory(seed, authors, steps);
  INFO(history.status().ToString());
  REQUIRE(history.ok());
  return std::move(*history);
}

// The state of a document that received `changes` in the order given.
std::string InOrderState(const std::vector<Change>& changes) {
  Document d(NodeId{99});
  for (const Change& c : changes) REQUIRE(d.Receive(c).ok());
  REQUIRE(d.pending() == 0);
  return d.CanonicalState();
}

// Receives `order` into a document and into the plain rule side by side: after every arrival
// they hold the same number of changes and have the same version; at the end they applied the
// same changes in the same order.
void ReceiveBesidePlainRule(const std::vector<Change>& order) {
  Document d(NodeId{99});
  PlainReceiver plain(NodeId{99});
  for (size_t i = 0; i < order.size(); ++i) {
    INFO("arrival " << i << " of " << order.size() << ": change " << order[i].id().ToString());
    Status got = d.Receive(order[i]);
    Status want = plain.Receive(order[i]);
    REQUIRE(got.code() == want.code());
    REQUIRE(d.pending() == plain.pending());
    REQUIRE(d.version() == plain.doc().version());
  }
  REQUIRE(d.history() == plain.doc().history());
  REQUIRE(d.CanonicalState() == plain.doc().CanonicalState());
}

}  // namespace

TEST_CASE("changes received in reverse dependency order converge to the in-order state",
          "[document][receive]") {
  std::vector<Change> history = RandomHistory(7, 4, 120);
  REQUIRE(history.size() > 100);
  std::string want = InOrderState(history);
  std::vector<Change> reversed(history.rbegin(), history.rend());
  Document d(NodeId{99});
  for (size_t i = 0; i + 1 < reversed.size(); ++i) {
    REQUIRE(d.Receive(reversed[i]).ok());
    CHECK(d.pending() == i + 1);  // nothing applies before the first change arrives
  }
  CHECK(d.version().empty());
  REQUIRE(d.Receive(reversed.back()).ok());
  CHECK(d.pending() == 0);
  CHECK(d.history().size() == history.size());
  CHECK(d.CanonicalState() == want);
  ReceiveBesidePlainRule(reversed);
}

TEST_CASE("random permutations of a multi-author history converge, as the plain rule applies them",
          "[document][receive]") {
  uint64_t only = weft::testing::SeedFromEnv();
  uint64_t first = only ? only : 1, last = only ? only : 100;
  for (uint64_t seed = first; seed <= last; ++seed) {
    INFO("seed " << seed << " (replay: WEFT_SEED=" << seed << ")");
    Rng rng(seed);
    int authors = static_cast<int>(rng.Range(2, 5));
    std::vector<Change> history =
        RandomHistory(seed, authors, static_cast<int>(rng.Range(20, 120)));
    std::string want = InOrderState(history);
    // A permutation, with some changes sent twice.
    std::vector<Change> order = history;
    for (const Change& c : history) {
      if (rng.Chance(10)) order.push_back(c);
    }
    for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng.Below(i)]);
    Document d(NodeId{99});
    for (const Change& c : order) REQUIRE(d.Receive(c).ok());
    CHECK(d.pending() == 0);
    CHECK(d.history().size() == history.size());
    REQUIRE(d.CanonicalState() == want);
    ReceiveBesidePlainRule(order);
  }
}

TEST_CASE("a held change with an invalid op is dropped when its turn comes, the rest applies",
          "[document][receive]") {
  Document a(NodeId{1});
  std::vector<Change> chain = Chain(a, 3);
  // Author 2 saw a's first two changes, and wrote into an object no change made.
  Change bad;
  bad.author = NodeId{2};
  bad.start_seq = 1;
  bad.deps = VersionVector{{NodeId{1}, chain[1].end_seq()}};
  bad.lamport = 10;
  bad.time = {kNow, 0};
  Op op;
  op.type = Op::Type::kMapSet;
  op.object = Dot{NodeId{7}, 7};
  op.key = "x";
  op.scalar = Scalar(int64_t{1});
  bad.ops.push_back(op);
  // And a change after it, which can never apply once it is dropped.
  Change after = bad;
  after.start_seq = 2;
  after.ops[0].object = kRoot;

  std::vector<Change> order{after, bad, chain[2], chain[1], chain[0]};
  Document d(NodeId{99});
  for (size_t i = 0; i + 1 < order.size(); ++i) REQUIRE(d.Receive(order[i]).ok());
  CHECK(d.pending() == 4);
  REQUIRE(d.Receive(chain[0]).ok());  // the drop reaches no caller
  CHECK(d.pending() == 1);            // `after` waits for 2:1, which was dropped
  CHECK_FALSE(d.HasChange(bad.id()));
  CHECK(d.version() == a.version());
  CHECK(d.CanonicalState() == a.CanonicalState());
  ReceiveBesidePlainRule(order);
  // Received directly, the invalid change is refused with its error.
  CHECK(d.Receive(bad).code() == StatusCode::kCorruption);
}

TEST_CASE("a change received twice while held is held once and applied once",
          "[document][receive]") {
  Document a(NodeId{1});
  std::vector<Change> chain = Chain(a, 3);
  Document d(NodeId{99});
  REQUIRE(d.Receive(chain[2]).ok());
  REQUIRE(d.Receive(chain[2]).ok());
  CHECK(d.pending() == 1);
  REQUIRE(d.Receive(chain[1]).ok());
  REQUIRE(d.Receive(chain[2]).ok());
  CHECK(d.pending() == 2);
  REQUIRE(d.Receive(chain[0]).ok());
  CHECK(d.pending() == 0);
  CHECK(d.history().size() == 3);
  CHECK(d.CanonicalState() == a.CanonicalState());
  // Once applied, receiving it again changes nothing.
  REQUIRE(d.Receive(chain[2]).ok());
  CHECK(d.pending() == 0);
  CHECK(d.history().size() == 3);
  ReceiveBesidePlainRule({chain[2], chain[2], chain[1], chain[2], chain[0], chain[2]});
}

TEST_CASE("a change waiting on several authors is applied once the last of them arrives",
          "[document][receive]") {
  Document a(NodeId{1}), b(NodeId{2}), c(NodeId{3});
  Change ca = Chain(a, 1)[0];
  Change cb = Chain(b, 1)[0];
  REQUIRE(c.ApplyChange(ca).ok());
  REQUIRE(c.ApplyChange(cb).ok());
  Change cc = Chain(c, 1)[0];
  CHECK(cc.deps.size() == 2);
  Document d(NodeId{99});
  REQUIRE(d.Receive(cc).ok());
  CHECK(d.CheckReady(cc).readiness == Readiness::kWaiting);
  REQUIRE(d.Receive(cb).ok());
  CHECK(d.pending() == 1);
  CHECK(d.CheckReady(cc).waits_for == ca.id());
  REQUIRE(d.Receive(ca).ok());
  CHECK(d.pending() == 0);
  CHECK(d.version() == c.version());
  ReceiveBesidePlainRule({cc, cb, ca});
  ReceiveBesidePlainRule({cc, ca, cb});
}

TEST_CASE("CheckReady says what a change waits for, without a message", "[document][receive]") {
  Document a(NodeId{1});
  std::vector<Change> chain = Chain(a, 2);
  Document d(NodeId{99});
  ReadyCheck r = d.CheckReady(chain[1]);
  CHECK(r.readiness == Readiness::kWaiting);
  CHECK(r.waits_for == chain[0].id());  // the author's seqs before it
  CHECK(d.CheckReady(chain[0]).readiness == Readiness::kReady);
  REQUIRE(d.ApplyChange(chain[0]).ok());
  CHECK(d.CheckReady(chain[0]).readiness == Readiness::kDuplicate);

  Document b(NodeId{2});
  REQUIRE(b.ApplyChange(chain[0]).ok());
  REQUIRE(b.ApplyChange(chain[1]).ok());
  Change cb = Chain(b, 1)[0];
  Document e(NodeId{98});
  r = e.CheckReady(cb);
  CHECK(r.readiness == Readiness::kWaiting);
  CHECK(r.waits_for == Dot{NodeId{1}, chain[1].end_seq()});  // a dependency on another author

  Change own = cb;
  own.deps.Set(own.author, 1);
  CHECK(e.CheckReady(own).readiness == Readiness::kInvalid);
  CHECK(e.ApplyChange(own).code() == StatusCode::kCorruption);
  Change empty = cb;
  empty.ops.clear();
  CHECK(e.CheckReady(empty).readiness == Readiness::kInvalid);
}

TEST_CASE("a held change waiting on the document's own author is applied after a local commit",
          "[document][receive]") {
  // A document restored from an old copy commits a seq that a peer already built on.
  Document b(NodeId{2});
  Document restored = b;
  Change first = Chain(b, 1)[0];
  Document a(NodeId{1});
  REQUIRE(a.ApplyChange(first).ok());
  Change reply = Chain(a, 1)[0];
  REQUIRE(restored.Receive(reply).ok());
  CHECK(restored.pending() == 1);
  Chain(restored, 1);              // takes seq 1 of node 2 again
  CHECK(restored.pending() == 1);  // as before: held changes are looked at when a change arrives
  REQUIRE(restored.Receive(first).ok());  // a duplicate now
  CHECK(restored.pending() == 0);
  CHECK(restored.HasChange(reply.id()));
}

TEST_CASE("a held change is dropped once another change with its seqs is applied",
          "[document][receive]") {
  // Two changes claiming the same seqs of one author (only a faulty or hostile author makes
  // them): one waits for a change of node 2, the other needs nothing and applies. The held one is
  // then a duplicate, whatever it waits for.
  Document b(NodeId{2});
  Change from_b = Chain(b, 1)[0];
  Document a(NodeId{1});
  Change plain = Chain(a, 1)[0];
  Change forked = plain;
  forked.deps = VersionVector{{NodeId{2}, 1}};
  Document d(NodeId{99});
  REQUIRE(d.Receive(forked).ok());
  CHECK(d.pending() == 1);
  REQUIRE(d.Receive(plain).ok());
  CHECK(d.pending() == 0);
  REQUIRE(d.Receive(from_b).ok());
  CHECK(d.version() == VersionVector{{NodeId{1}, 1}, {NodeId{2}, 1}});
  CHECK(d.history().size() == 2);
  ReceiveBesidePlainRule({forked, plain, from_b});
}

TEST_CASE("a change whose Lamport time its dependencies do not allow is refused", "[document]") {
  Document a(NodeId{1}), b(NodeId{2});
  for (int i = 0; i < 3; ++i) {
    auto t = a.Begin(1'700'000'000'000 + i);
    REQUIRE(t.Put(kRoot, "k", Scalar(int64_t{i})).ok());
    auto c = t.Commit();
    REQUIRE(c);
    REQUIRE(b.ApplyChange(*c).ok());
  }
  auto t = a.Begin(1'700'000'000'100);
  REQUIRE(t.Put(kRoot, "k", Scalar("next")).ok());
  auto honest = t.Commit();
  REQUIRE(honest);
  CHECK(honest->lamport == b.lamport() + 1);
  const std::string before = b.CanonicalState();
  for (uint64_t forged : {uint64_t{0}, b.lamport() + 2, uint64_t{1} << 62}) {
    Change c = *honest;
    c.lamport = forged;
    Status s = b.ApplyChange(c);
    INFO(forged);
    CHECK(s.code() == StatusCode::kCorruption);
    CHECK(s.message().find("Lamport") != std::string::npos);
    CHECK(b.CanonicalState() == before);
  }
  CHECK(b.ApplyChange(*honest).ok());
}

// ApplyChanges queues the text deletes of the whole batch and marks them together at the end;
// the result must be what ApplyChange gives change by change.
TEST_CASE("ApplyChanges of a random history gives the state of ApplyChange one by one",
          "[document][receive]") {
  uint64_t only = weft::testing::SeedFromEnv();
  uint64_t first = only ? only : 1, last = only ? only : 60;
  for (uint64_t seed = first; seed <= last; ++seed) {
    INFO("seed " << seed << " (replay: WEFT_SEED=" << seed << ")");
    Rng rng(seed);
    std::vector<Change> history = RandomHistory(seed, static_cast<int>(rng.Range(2, 5)),
                                                static_cast<int>(rng.Range(20, 300)));
    Document one(NodeId{99});
    for (const Change& c : history) REQUIRE(one.ApplyChange(c).ok());
    Document batch(NodeId{99});
    REQUIRE(batch.ApplyChanges(history).ok());
    REQUIRE(batch.CanonicalState() == one.CanonicalState());
    REQUIRE(batch.history() == one.history());
    // Applied again: every change is a duplicate.
    REQUIRE(batch.ApplyChanges(history).ok());
    REQUIRE(batch.CanonicalState() == one.CanonicalState());
  }
}

TEST_CASE("ApplyChanges stops at an invalid change: those before it stay, nothing of it does",
          "[document][receive]") {
  std::vector<Change> history = RandomHistory(11, 3, 200);
  // A change whose text delete comes before an op on an object no change made: the delete was
  // queued when the op fails, and must be taken back.
  size_t bad = history.size();
  for (size_t i = history.size() / 2; i < history.size() && bad == history.size(); ++i) {
    const std::vector<Op>& ops = history[i].ops;
    for (size_t k = 0; k + 1 < ops.size(); ++k) {
      if (ops[k].type == Op::Type::kSeqDelete) bad = i;
    }
  }
  REQUIRE(bad < history.size());
  std::vector<Change> batch_in(history.begin(), history.begin() + static_cast<std::ptrdiff_t>(bad));
  batch_in.push_back(history[bad]);
  batch_in.back().ops.back().object = Dot{NodeId{12345}, 777};
  batch_in.push_back(history[bad]);  // never reached

  Document want(NodeId{99});
  for (size_t i = 0; i < bad; ++i) REQUIRE(want.ApplyChange(history[i]).ok());
  std::string before = want.CanonicalState();
  // ApplyChange of the bad change changes nothing.
  CHECK_FALSE(want.ApplyChange(batch_in[bad]).ok());
  CHECK(want.CanonicalState() == before);

  Document d(NodeId{99});
  Status s = d.ApplyChanges(batch_in);
  CHECK(s.code() == StatusCode::kCorruption);
  CHECK(d.CanonicalState() == before);
  CHECK(d.version() == want.version());
  // The good change still applies after it.
  REQUIRE(d.ApplyChanges(std::vector<Change>(history.begin() + static_cast<std::ptrdiff_t>(bad),
                                             history.end()))
              .ok());
  for (size_t i = bad; i < history.size(); ++i) REQUIRE(want.ApplyChange(history[i]).ok());
  CHECK(d.CanonicalState() == want.CanonicalState());
}

TEST_CASE("ApplyChanges on a new document stops at a delete of an item never inserted",
          "[document][receive]") {
  // On a new document the batch checks the items of its text deletes when it marks them (one
  // pass at the end), not as they come: a change naming an id that no insert made (here the seq
  // of an earlier delete op) must still stop the batch exactly there, with the changes after it
  // (applied before the check found it) not applied either.
  std::vector<Change> history = RandomHistory(23, 3, 200);
  // The dot of the first delete op of the history, and a later change with a delete op.
  std::optional<Dot> not_an_item;
  size_t bad = history.size();
  for (size_t i = 0; i < history.size() && bad == history.size(); ++i) {
    uint64_t seq = history[i].start_seq;
    for (Op& op : history[i].ops) {
      if (op.type == Op::Type::kSeqDelete && !op.ranges.empty()) {
        if (!not_an_item) {
          not_an_item = Dot{history[i].author, seq};
        } else if (i > history.size() / 2) {
          bad = i;
          break;
        }
      }
      seq += OpSpan(op);
    }
  }
  REQUIRE(not_an_item);
  REQUIRE(bad < history.size());
  std::vector<Change> batch_in = history;
  for (Op& op : batch_in[bad].ops) {
    if (op.type == Op::Type::kSeqDelete && !op.ranges.empty()) {
      op.ranges.push_back(DotRange{not_an_item->node, not_an_item->seq, not_an_item->seq});
      break;
    }
  }

  Document want(NodeId{99});
  for (size_t i = 0; i < bad; ++i) REQUIRE(want.ApplyChange(history[i]).ok());
  const std::string before = want.CanonicalState();
  Status one = want.ApplyChange(batch_in[bad]);
  CHECK(one.code() == StatusCode::kCorruption);
  CHECK(want.CanonicalState() == before);

  Document d(NodeId{99});
  Status s = d.ApplyChanges(batch_in);
  CHECK(s.code() == one.code());
  CHECK(s.message() == one.message());
  CHECK(d.CanonicalState() == before);
  CHECK(d.version() == want.version());
  // The good change and the rest still apply after it.
  REQUIRE(d.ApplyChanges(std::vector<Change>(history.begin() + static_cast<std::ptrdiff_t>(bad),
                                             history.end()))
              .ok());
  for (size_t i = bad; i < history.size(); ++i) REQUIRE(want.ApplyChange(history[i]).ok());
  CHECK(d.CanonicalState() == want.CanonicalState());
}
