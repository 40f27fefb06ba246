// Algebraic laws of each CRDT type: every causal order of a set of concurrent and sequential ops
// gives the same state, and delivering an op twice changes nothing.
#include <catch2/catch.hpp>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "random.h"
#include "weft/crdt/counter.h"
#include "weft/crdt/document.h"
#include "weft/crdt/orset.h"
#include "weft/crdt/register.h"

using namespace weft::crdt;
using weft::testing::Rng;

namespace {

// Plays `n_ops` random ops over `replicas` replicas of T with random merges between them, records
// each op with the ops its author had seen, then replays every causal order (a linear extension
// of happened-before) into a fresh T and checks that all give the same state; and that
// duplicates, delivered at random later points, change nothing.
template <typename T, typename Op>
struct LawChecker {
  std::function<Op(T&, const Dot&, Rng&)> local;  // makes (and applies) a local op
  // When set, called with the converged state of each run.
  std::function<void(const T&)> converged;

  struct Recorded {
    Op op;
    std::vector<size_t> deps;  // indexes of ops seen by its author when it was made
  };

  void Run(uint64_t seed, int replicas, int n_ops) {
    INFO("seed " << seed);
    Rng rng(seed);
    std::vector<T> state(replicas);
    std::vector<std::vector<size_t>> seen(replicas);  // op indexes each replica has applied
    std::vector<uint64_t> counter(replicas, 0);
    std::vector<Recorded> ops;
    while (static_cast<int>(ops.size()) < n_ops) {
      int r = static_cast<int>(rng.Below(replicas));
      if (rng.Chance(35) && !ops.empty()) {
        // Merge everything another replica has into r, in the order the other applied it.
        int from = static_cast<int>(rng.Below(replicas));
        for (size_t i : seen[from]) {
          if (std::find(seen[r].begin(), seen[r].end(), i) == seen[r].end()) {
            state[r].Apply(ops[i].op);
            seen[r].push_back(i);
          }
        }
        continue;
      }
      Dot dot{NodeId{static_cast<uint64_t>(r + 1)}, ++counter[r]};
      Op op = local(state[r], dot, rng);
      ops.push_back({op, seen[r]});
      seen[r].push_back(ops.size() - 1);
    }

    // Enumerate causal orders.
    std::vector<size_t> order;
    std::vector<bool> placed(ops.size(), false);
    std::optional<T> reference;
    size_t orders = 0;
    std::function<void()> dfs = [&]() {
      if (order.size() == ops.size()) {
        T t;
        for (size_t i : order) t.Apply(ops[i].op);
        ++orders;
        if (!reference) {
          reference = t;
        } else {
          REQUIRE(t == *reference);
        }
        // Same order with duplicates: each op redelivered at a random later point.
        if (orders % 7 == 1) {
          T d;
          std::vector<size_t> applied;
          for (size_t i : order) {
            d.Apply(ops[i].op);
            applied.push_back(i);
            if (rng.Chance(50)) CHECK_FALSE(d.Apply(ops[applied[rng.Below(applied.size())]].op));
          }
          REQUIRE(d == *reference);
        }
        return;
      }
      for (size_t i = 0; i < ops.size(); ++i) {
        if (placed[i]) continue;
        bool ready = true;
        for (size_t d : ops[i].deps) ready = ready && placed[d];
        if (!ready) continue;
        placed[i] = true;
        order.push_back(i);
        dfs();
        order.pop_back();
        placed[i] = false;
      }
    };
    dfs();
    CHECK(orders >= 1);
    if (converged && reference) converged(*reference);
  }
};

}  // namespace

TEST_CASE("MV register: every causal order of up to 7 ops converges, duplicates are no-ops",
          "[types][laws]") {
  LawChecker<MVRegister<int>, MVRegister<int>::Op> check;
  check.local = [](MVRegister<int>& r, const Dot& dot, Rng& rng) {
    if (rng.Chance(15)) return r.Clear(dot);
    return r.Set(dot, static_cast<int>(rng.Below(100)));
  };
  for (uint64_t seed = 1; seed <= 200; ++seed) check.Run(seed, 3, 1 + static_cast<int>(seed % 7));
}

TEST_CASE("LWW register: every causal order of up to 7 ops converges", "[types][laws]") {
  LawChecker<LWWRegister<int>, LWWRegister<int>::Op> check;
  check.local = [](LWWRegister<int>& r, const Dot& dot, Rng& rng) {
    return r.Set(dot, static_cast<int>(rng.Below(100)), HlcTimestamp{rng.Below(5), 0});
  };
  for (uint64_t seed = 1; seed <= 200; ++seed) check.Run(seed, 3, 1 + static_cast<int>(seed % 7));
}

TEST_CASE("counter: every causal order of up to 7 ops converges", "[types][laws]") {
  LawChecker<Counter, Counter::Op> check;
  check.local = [](Counter& c, const Dot& dot, Rng& rng) { return c.Add(dot, rng.Range(-5, 5)); };
  for (uint64_t seed = 1; seed <= 200; ++seed) check.Run(seed, 3, 1 + static_cast<int>(seed % 7));
}

TEST_CASE("OR-set: every causal order of up to 7 ops converges", "[types][laws]") {
  LawChecker<ORSet<int>, ORSet<int>::Op> check;
  check.local = [](ORSet<int>& s, const Dot& dot, Rng& rng) {
    int e = static_cast<int>(rng.Below(3));
    if (rng.Chance(45)) return s.Remove(dot, e);
    return s.Add(dot, e);
  };
  for (uint64_t seed = 1; seed <= 300; ++seed) check.Run(seed, 3, 1 + static_cast<int>(seed % 7));
}

TEST_CASE(
    "MV register keeps concurrent writes as siblings, a write after reading them "
    "replaces exactly those",
    "[types]") {
  const NodeId A{1}, B{2}, C{3};
  MVRegister<std::string> a, b, c;
  auto w1 = a.Set({A, 1}, "from A");
  auto w2 = b.Set({B, 1}, "from B");
  a.Apply(w2);
  b.Apply(w1);
  REQUIRE(a.Siblings().size() == 2);
  CHECK(a == b);
  // A reads both siblings; meanwhile C (who saw only w1) writes concurrently.
  c.Apply(w1);
  VersionVector read = a.Context();
  auto w3 = c.Set({C, 1}, "from C");
  auto w4 = a.SetAfterRead({A, 2}, "merged", read);
  for (auto* r : {&a, &b, &c}) {
    for (const auto* op : {&w1, &w2, &w3, &w4}) r->Apply(*op);
  }
  CHECK(a == b);
  CHECK(b == c);
  // w4 replaced w1 and w2 (it read them); w3 was concurrent with w4 and stays.
  REQUIRE(a.Siblings().size() == 2);
  CHECK(a.Siblings()[0].value == "merged");  // siblings are sorted by dot: A:2 before C:1
  CHECK(a.Siblings()[1].value == "from C");
}

TEST_CASE("LWW register picks the latest time, ties by node, and shows what it overwrote",
          "[types]") {
  const NodeId A{1}, B{2};
  LWWRegister<std::string> a, b;
  auto wa = a.Set({A, 1}, "a", {100, 0});
  auto wb = b.Set({B, 1}, "b", {100, 0});  // same time: B's larger node id wins
  a.Apply(wb);
  b.Apply(wa);
  REQUIRE(a.Value());
  CHECK(*a.Value() == "b");
  CHECK(*b.Value() == "b");
  REQUIRE(a.Overwritten().size() == 1);
  CHECK(a.Overwritten()[0]->value.value == "a");
  // A later write that has seen both replaces both.
  auto w = a.Set({A, 2}, "c", {101, 0});
  b.Apply(w);
  CHECK(*b.Value() == "c");
  CHECK(b.Overwritten().empty());
}

TEST_CASE("counter sums increments and decrements from 5 replicas exactly", "[types]") {
  std::vector<Counter> replicas(5);
  std::vector<Counter::Op> ops;
  int64_t expected = 0;
  for (int r = 0; r < 5; ++r) {
    for (int i = 1; i <= 100; ++i) {
      int64_t d = (i % 3 == 0) ? -i : i;
      expected += d;
      ops.push_back(
          replicas[r].Add({NodeId{static_cast<uint64_t>(r + 1)}, static_cast<uint64_t>(i)}, d));
    }
  }
  for (auto& c : replicas) {
    for (const auto& op : ops) c.Apply(op);
    CHECK(c.Value() == expected);
  }
}

TEST_CASE("OR-set: concurrent add and remove of an element keeps it (add wins)", "[types]") {
  const NodeId A{1}, B{2};
  ORSet<std::string> a, b;
  auto add1 = a.Add({A, 1}, "x");
  b.Apply(add1);
  auto rm = b.Remove({B, 1}, "x");  // B removes what it saw
  auto add2 = a.Add({A, 2}, "x");   // A re-adds concurrently
  a.Apply(rm);
  b.Apply(add2);
  CHECK(a.Contains("x"));
  CHECK(b.Contains("x"));
  CHECK(a == b);
}

TEST_CASE("OR-set keeps no metadata for removed elements", "[types]") {
  const NodeId A{1};
  ORSet<int> s;
  uint64_t seq = 0;
  for (int round = 0; round < 1000; ++round) {
    s.Add({A, ++seq}, round);
    s.Remove({A, ++seq}, round);
  }
  CHECK(s.size() == 0);
  CHECK(s.entries().empty());
  CHECK(s.seen().size() == 1);  // one entry per node that ever wrote
}

namespace {

// A document as a CRDT for the law checker: its ops are whole changes.
struct DocState {
  Document doc{NodeId{1000}};
  bool Apply(const Change& c) {
    if (doc.HasChange(c.id())) return false;
    weft::Status s = doc.ApplyChange(c);
    REQUIRE(s.ok());
    return true;
  }
  friend bool operator==(const DocState& a, const DocState& b) {
    return a.doc.CanonicalState() == b.doc.CanonicalState();
  }
};

// One local change of a replica that works on the container of `kind` at root key "k": creates it
// (PutObject, also over an existing one), edits it, deletes the key, or writes a scalar or a
// container of another kind there.
Change ContainerEdit(DocState& t, const Dot& dot, Rng& rng, ObjectKind kind) {
  auto author = Document::DecodeSnapshot(t.doc.EncodeSnapshot(false), dot.node);
  REQUIRE(author.ok());
  Document& d = *author;
  auto txn = d.Begin(1'700'000'000'000);
  auto find = [&]() -> std::optional<ObjectId> {
    auto read = d.Get(kRoot, "k");
    for (const auto& e : read->values) {
      if (e.value.is_object() && e.value.object().kind == kind) return e.value.object().id;
    }
    return std::nullopt;
  };
  auto edit = [&](ObjectId id) {
    switch (kind) {
      case ObjectKind::kCounter: REQUIRE(txn.Increment(id, rng.Range(-5, 5)).ok()); break;
      case ObjectKind::kText: {
        size_t n = *d.SequenceSize(id);
        if (n > 0 && rng.Chance(30))
          REQUIRE(txn.TextDelete(id, rng.Below(n), 1).ok());
        else
          REQUIRE(txn.TextInsert(id, rng.Below(n + 1), rng.Chance(50) ? "ab" : "xyz").ok());
        break;
      }
      case ObjectKind::kList: {
        size_t n = *d.SequenceSize(id);
        if (n > 0 && rng.Chance(30))
          REQUIRE(txn.ListDelete(id, rng.Below(n), 1).ok());
        else if (rng.Chance(25))
          REQUIRE(txn.ListInsertObject(id, rng.Below(n + 1), ObjectKind::kMap).ok());
        else
          REQUIRE(txn.ListInsert(id, rng.Below(n + 1), {static_cast<int64_t>(rng.Below(9))}).ok());
        break;
      }
      case ObjectKind::kSet: {
        Scalar e(static_cast<int64_t>(rng.Below(3)));
        REQUIRE((rng.Chance(40) ? txn.SetRemove(id, e) : txn.SetAdd(id, e)).ok());
        break;
      }
      default: {
        uint64_t what = rng.Below(4);
        if (what == 0) {
          REQUIRE(txn.Delete(id, "x").ok());
        } else if (what == 1) {
          // A named container nested in the named map.
          auto c = txn.PutObject(id, "c", ObjectKind::kCounter);
          REQUIRE(c.ok());
          REQUIRE(txn.Increment(*c, 1 + rng.Below(3)).ok());
        } else {
          REQUIRE(txn.Put(id, "x", static_cast<int64_t>(rng.Below(9))).ok());
        }
      }
    }
  };
  uint64_t what = rng.Below(10);
  std::optional<ObjectId> held = find();
  if (what < 3 || (what < 7 && !held)) {
    auto id = txn.PutObject(kRoot, "k", kind);
    REQUIRE(id.ok());
    if (rng.Chance(70)) edit(*id);
  } else if (what < 7) {
    edit(*held);
  } else if (what == 7) {
    REQUIRE(txn.Delete(kRoot, "k").ok());
    if (txn.size() == 0) REQUIRE(txn.Put(kRoot, "other", 1).ok());
  } else if (what == 8) {
    REQUIRE(txn.Put(kRoot, "k", static_cast<int64_t>(rng.Below(9))).ok());
  } else {
    ObjectKind other = kind == ObjectKind::kCounter ? ObjectKind::kText : ObjectKind::kCounter;
    REQUIRE(txn.PutObject(kRoot, "k", other).ok());
  }
  auto c = txn.Commit();
  REQUIRE(c.has_value());
  REQUIRE(t.Apply(*c));
  return *c;
}

}  // namespace

TEST_CASE("containers created concurrently under one key: every causal order converges",
          "[types][laws][named]") {
  for (ObjectKind kind : {ObjectKind::kCounter, ObjectKind::kText, ObjectKind::kList,
                          ObjectKind::kSet, ObjectKind::kMap}) {
    INFO("kind " << ObjectKindName(kind));
    LawChecker<DocState, Change> check;
    check.local = [kind](DocState& t, const Dot& dot, Rng& rng) {
      return ContainerEdit(t, dot, rng, kind);
    };
    // Concurrent creations of one kind are one container: the key never shows two of a kind
    // (with creations named by their dots, it would).
    size_t merged_runs = 0;
    check.converged = [&](const DocState& t) {
      auto read = t.doc.Get(kRoot, "k");
      REQUIRE(read.ok());
      std::set<ObjectKind> kinds;
      for (const auto& e : read->values) {
        if (!e.value.is_object()) continue;
        CHECK(kinds.insert(e.value.object().kind).second);
      }
      // Runs in which the key holds two writes of the same container.
      size_t same = 0;
      for (const auto& e : read->values) {
        if (e.value.is_object() && e.value.object().kind == kind) ++same;
      }
      // Every sibling is from a different node, so the context has one entry per sibling.
      size_t siblings_of_kind = read->context.entries().size() - (read->values.size() - same);
      if (same == 1 && siblings_of_kind > 1) ++merged_runs;
    };
    for (uint64_t seed = 1; seed <= 60; ++seed) {
      check.Run(seed, 3, 2 + static_cast<int>(seed % 5));
    }
    CHECK(merged_runs > 0);
  }
}
