// Convergence: seeded runs of 3 to 5 replicas making random edits to nested maps, sets, counters
// and registers, exchanging encoded changes with random delay, duplication and reordering. At the
// end every replica's canonical state is byte-identical. A failing run names its seed; set
// WEFT_SEED=N to replay just that one.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include "doc_sim.h"
#include "random.h"
#include "weft/crdt/document.h"

using namespace weft::crdt;
using namespace weft::testing;
using weft::Status;

namespace {

struct Message {
  uint64_t deliver_at;
  std::string bytes;  // an encoded change
};

using EditFn = Status (*)(Document&, Transaction&, Rng&);

// Half of the edits create containers at two shared keys of the root or of a map, each key
// taking one of two kinds, so replicas often create the same container concurrently; the other
// half are RandomEdit.
Status SharedContainerEdit(Document& doc, Transaction& txn, Rng& rng) {
  if (rng.Chance(50)) return RandomEdit(doc, txn, rng);
  static const ObjectKind kKinds[][2] = {{ObjectKind::kCounter, ObjectKind::kText},
                                         {ObjectKind::kMap, ObjectKind::kList},
                                         {ObjectKind::kSet, ObjectKind::kCounter}};
  static const char* kKeys[] = {"a", "b", "c"};
  ObjectId map = kRoot;
  auto objects = CollectObjects(doc);
  for (const auto& o : objects) {
    if (o.kind == ObjectKind::kMap && o.depth < 2 && rng.Chance(30)) map = o.id;
  }
  size_t k = rng.Below(3);
  return txn.PutObject(map, kKeys[k], kKinds[k][rng.Below(100) < 85 ? 0 : 1]).status();
}

// How many keys of `doc` hold several writes of one container (merged concurrent creations);
// fails (returns an error) when a key holds two distinct containers of one mergeable kind.
std::string CountMerged(const Document& doc, size_t* merged) {
  for (const auto& o : CollectObjects(doc)) {
    if (o.kind != ObjectKind::kMap) continue;
    auto keys = doc.Keys(o.id);
    for (const auto& key : *keys) {
      auto read = doc.Get(o.id, key);
      std::set<ObjectKind> kinds;
      for (const auto& e : read->values) {
        if (!e.value.is_object()) continue;
        ObjectKind kind = e.value.object().kind;
        if (IsMergeableKind(kind) && !kinds.insert(kind).second) {
          return "key " + key + " holds two " + ObjectKindName(kind) + " containers";
        }
      }
      // One context entry per sibling: more than values means shared containers.
      if (read->context.entries().size() > read->values.size()) ++*merged;
    }
  }
  return std::string();
}

// Returns an empty string on success, else a description of the divergence.
std::string RunOnce(uint64_t seed, uint64_t* total_ops, EditFn edit = RandomEdit,
                    size_t* merged = nullptr) {
  Rng rng(seed);
  int n = static_cast<int>(rng.Range(3, 5));
  std::vector<Document> replicas;
  std::vector<int64_t> skew_ms;
  for (int i = 0; i < n; ++i) {
    replicas.emplace_back(NodeId{seed * 8 + static_cast<uint64_t>(i) + 1});
    // Clocks skewed by up to a day either way.
    skew_ms.push_back(rng.Range(-86'400'000, 86'400'000));
  }
  std::vector<std::vector<Message>> inbox(n);
  int steps = static_cast<int>(rng.Range(20, 60));
  auto deliver = [&](int r, uint64_t now) {
    auto& box = inbox[r];
    // Deliver the due messages in random order.
    std::vector<Message> due;
    for (auto it = box.begin(); it != box.end();) {
      if (it->deliver_at <= now) {
        due.push_back(std::move(*it));
        it = box.erase(it);
      } else {
        ++it;
      }
    }
    for (size_t i = due.size(); i > 1; --i) std::swap(due[i - 1], due[rng.Below(i)]);
    for (const auto& m : due) {
      auto change = DecodeChange(m.bytes);
      if (!change.ok()) return "decode failed: " + change.status().ToString();
      Status s = replicas[r].Receive(std::move(*change));
      if (!s.ok()) return "receive failed: " + s.ToString();
    }
    return std::string();
  };
  for (int step = 0; step < steps; ++step) {
    int r = static_cast<int>(rng.Below(n));
    uint64_t now = static_cast<uint64_t>(1'700'000'000'000 + step * 10 + skew_ms[r]);
    auto txn = replicas[r].Begin(now);
    int edits = static_cast<int>(rng.Range(1, 3));
    for (int e = 0; e < edits; ++e) {
      Status s = edit(replicas[r], txn, rng);
      if (!s.ok()) return "local edit failed: " + s.ToString();
    }
    auto change = txn.Commit();
    if (change) {
      std::string bytes = EncodeChange(*change);
      for (int o = 0; o < n; ++o) {
        if (o == r) continue;
        uint64_t at = static_cast<uint64_t>(step) + rng.Below(12);
        inbox[o].push_back({at, bytes});
        if (rng.Chance(15)) inbox[o].push_back({at + rng.Below(5), bytes});  // duplicate
      }
    }
    for (int o = 0; o < n; ++o) {
      std::string err = deliver(o, static_cast<uint64_t>(step));
      if (!err.empty()) return err;
    }
  }
  for (int o = 0; o < n; ++o) {
    std::string err = deliver(o, UINT64_MAX);
    if (!err.empty()) return err;
  }
  std::string reference = replicas[0].CanonicalState();
  *total_ops += replicas[0].version().TotalOps();
  for (int o = 0; o < n; ++o) {
    if (replicas[o].pending() != 0) return "replica " + std::to_string(o) + " holds changes";
    if (replicas[o].version() != replicas[0].version()) {
      return "version vectors differ: " + replicas[o].version().ToString() + " vs " +
             replicas[0].version().ToString();
    }
    if (replicas[o].CanonicalJson() != replicas[0].CanonicalJson()) return "canonical JSON differs";
    if (replicas[o].CanonicalState() != reference) {
      return "state differs:\n" + replicas[0].ToJson() + "\n" + replicas[o].ToJson();
    }
  }
  // A snapshot of a converged replica decodes to the same state.
  auto copy = Document::DecodeSnapshot(replicas[0].EncodeSnapshot(true), NodeId{999});
  if (!copy.ok()) return "snapshot failed: " + copy.status().ToString();
  if (copy->CanonicalState() != reference) return "snapshot state differs";
  if (std::getenv("WEFT_VERBOSE")) std::printf("%s\n", replicas[0].ToJson().c_str());
  if (merged) return CountMerged(replicas[0], merged);
  return std::string();
}

}  // namespace

TEST_CASE("1,000 seeded runs of 3 to 5 replicas converge byte for byte", "[convergence]") {
  uint64_t only = SeedFromEnv();
  uint64_t first = only ? only : 1, last = only ? only : 1000;
  uint64_t total_ops = 0;
  for (uint64_t seed = first; seed <= last; ++seed) {
    std::string err = RunOnce(seed, &total_ops);
    if (!err.empty()) FAIL("seed " << seed << " (replay: WEFT_SEED=" << seed << "): " << err);
  }
  // Every run made edits (at least 20 steps of 1 to 3 ops each).
  CHECK(total_ops >= 20 * (last - first + 1));
}

TEST_CASE("seeded runs creating the same containers concurrently converge into one each",
          "[convergence][named]") {
  uint64_t only = SeedFromEnv();
  uint64_t first = only ? only : 1, last = only ? only : 300;
  uint64_t total_ops = 0;
  size_t merged = 0;
  for (uint64_t seed = first; seed <= last; ++seed) {
    std::string err = RunOnce(seed, &total_ops, SharedContainerEdit, &merged);
    if (!err.empty()) FAIL("seed " << seed << " (replay: WEFT_SEED=" << seed << "): " << err);
  }
  // Concurrent creations of one container did happen, and merged.
  if (!only) CHECK(merged >= 10);
}
