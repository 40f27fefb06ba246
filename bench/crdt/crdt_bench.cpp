// Microbenchmarks of the CRDT core: local writes through documents (one transaction, one change
// per write, as an app would make them), the raw types, and applying remote changes (into a
// document, and through an SDK replica on SQLite for a batch in the worst order).
// `make bench` runs them; items_per_second is ops/s.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <string>
#include <vector>

#include "temp_dir.h"
#include "weft/crdt/document.h"
#include "weft/replica.h"

using namespace weft::crdt;

namespace {

constexpr uint64_t kNow = 1'700'000'000'000;

std::vector<std::string> Keys(int n) {
  std::vector<std::string> keys;
  for (int i = 0; i < n; ++i) keys.push_back("key" + std::to_string(i));
  return keys;
}

void BM_MapWrite(benchmark::State& state) {
  auto keys = Keys(1000);
  Document doc(NodeId{1}, {HybridClock::kDefaultMaxDriftMs, /*keep_history=*/false});
  uint64_t i = 0;
  for (auto _ : state) {
    auto txn = doc.Begin(kNow + i);
    (void)txn.Put(kRoot, keys[i % keys.size()], static_cast<int64_t>(i));
    benchmark::DoNotOptimize(txn.Commit());
    ++i;
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_MapWrite);

void BM_MapWrite100PerTransaction(benchmark::State& state) {
  auto keys = Keys(1000);
  Document doc(NodeId{1}, {HybridClock::kDefaultMaxDriftMs, false});
  uint64_t i = 0;
  for (auto _ : state) {
    auto txn = doc.Begin(kNow + i);
    for (int k = 0; k < 100; ++k, ++i) {
      (void)txn.Put(kRoot, keys[i % keys.size()], static_cast<int64_t>(i));
    }
    benchmark::DoNotOptimize(txn.Commit());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * 100);
}
BENCHMARK(BM_MapWrite100PerTransaction);

void BM_CounterIncrement(benchmark::State& state) {
  Document doc(NodeId{1}, {HybridClock::kDefaultMaxDriftMs, false});
  ObjectId counter;
  {
    auto txn = doc.Begin(kNow);
    counter = *txn.PutObject(kRoot, "n", ObjectKind::kCounter);
    txn.Commit();
  }
  uint64_t i = 0;
  for (auto _ : state) {
    auto txn = doc.Begin(kNow + ++i);
    (void)txn.Increment(counter, 1);
    benchmark::DoNotOptimize(txn.Commit());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_CounterIncrement);

void BM_SetAddRemove(benchmark::State& state) {
  Document doc(NodeId{1}, {HybridClock::kDefaultMaxDriftMs, false});
  ObjectId set;
  {
    auto txn = doc.Begin(kNow);
    set = *txn.PutObject(kRoot, "s", ObjectKind::kSet);
    txn.Commit();
  }
  int64_t i = 0;
  for (auto _ : state) {
    auto txn = doc.Begin(kNow + static_cast<uint64_t>(i));
    (void)txn.SetAdd(set, i % 1000);
    (void)txn.SetRemove(set, (i + 500) % 1000);
    benchmark::DoNotOptimize(txn.Commit());
    ++i;
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * 2);
}
BENCHMARK(BM_SetAddRemove);

// The raw types, without documents or transactions.
void BM_RawCounterAdd(benchmark::State& state) {
  Counter c;
  uint64_t seq = 0;
  for (auto _ : state) benchmark::DoNotOptimize(c.Add({NodeId{1}, ++seq}, 1));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_RawCounterAdd);

void BM_RawSetAddRemove(benchmark::State& state) {
  ORSet<int64_t> s;
  uint64_t seq = 0;
  int64_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(s.Add({NodeId{1}, ++seq}, i % 1000));
    benchmark::DoNotOptimize(s.Remove({NodeId{1}, ++seq}, (i + 500) % 1000));
    ++i;
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * 2);
}
BENCHMARK(BM_RawSetAddRemove);

// Time to apply 100,000 remote changes (map writes, counter increments and set edits from three
// authors, interleaved causally) into a fresh replica.
void BM_Apply100kRemoteChanges(benchmark::State& state) {
  constexpr int kChanges = 100'000;
  std::vector<Change> changes;
  changes.reserve(kChanges);
  {
    std::vector<Document> authors;
    for (uint64_t n = 1; n <= 3; ++n) authors.emplace_back(NodeId{n});
    ObjectId counter, set;
    {
      auto txn = authors[0].Begin(kNow);
      counter = *txn.PutObject(kRoot, "n", ObjectKind::kCounter);
      set = *txn.PutObject(kRoot, "s", ObjectKind::kSet);
      changes.push_back(*txn.Commit());
    }
    for (int a = 1; a < 3; ++a) (void)authors[a].ApplyChange(changes[0]);
    auto keys = Keys(1000);
    for (int i = 1; i < kChanges; ++i) {
      Document& d = authors[i % 3];
      auto txn = d.Begin(kNow + static_cast<uint64_t>(i));
      switch (i % 4) {
        case 0: (void)txn.Increment(counter, 1); break;
        case 1: (void)txn.SetAdd(set, static_cast<int64_t>(i % 500)); break;
        default: (void)txn.Put(kRoot, keys[static_cast<size_t>(i) % keys.size()], i); break;
      }
      changes.push_back(*txn.Commit());
      // Every author sees the others' changes soon after (here: at once), so changes depend on
      // each other across authors.
      for (int a = 0; a < 3; ++a) {
        if (&authors[a] != &d) (void)authors[a].ApplyChange(changes.back());
      }
    }
  }
  for (auto _ : state) {
    Document fresh(NodeId{9});
    for (const Change& c : changes) {
      weft::Status s = fresh.ApplyChange(c);
      if (!s.ok()) state.SkipWithError(s.ToString().c_str());
    }
    benchmark::DoNotOptimize(fresh.version());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * kChanges);
}
BENCHMARK(BM_Apply100kRemoteChanges)->Unit(benchmark::kMillisecond);

// Decoding and applying encoded changes, as a replica receiving them over the wire does.
void BM_DecodeAndApply100kRemoteChanges(benchmark::State& state) {
  constexpr int kChanges = 100'000;
  std::vector<std::string> wire;
  {
    Document author(NodeId{1}, {HybridClock::kDefaultMaxDriftMs, false});
    auto keys = Keys(1000);
    for (int i = 0; i < kChanges; ++i) {
      auto txn = author.Begin(kNow + static_cast<uint64_t>(i));
      (void)txn.Put(kRoot, keys[static_cast<size_t>(i) % keys.size()], i);
      wire.push_back(EncodeChange(*txn.Commit()));
    }
  }
  for (auto _ : state) {
    Document fresh(NodeId{9});
    for (const std::string& bytes : wire) {
      auto c = DecodeChange(bytes);
      weft::Status s = fresh.ApplyChange(*c);
      if (!s.ok()) state.SkipWithError(s.ToString().c_str());
    }
    benchmark::DoNotOptimize(fresh.version());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * kChanges);
}
BENCHMARK(BM_DecodeAndApply100kRemoteChanges)->Unit(benchmark::kMillisecond);

// A history of `n` changes by four authors in which each change depends on the one before it
// (every author sees each change at once, and they take turns): the longest possible chain, so
// that in reverse order every change but one waits.
std::vector<Change> ChainedHistory(int n) {
  std::vector<Document> authors;
  for (uint64_t a = 1; a <= 4; ++a) authors.emplace_back(NodeId{a});
  std::vector<Change> changes;
  changes.reserve(static_cast<size_t>(n));
  auto keys = Keys(100);
  for (int i = 0; i < n; ++i) {
    Document& d = authors[static_cast<size_t>(i) % authors.size()];
    auto txn = d.Begin(kNow + static_cast<uint64_t>(i));
    (void)txn.Put(kRoot, keys[static_cast<size_t>(i) % keys.size()], i);
    changes.push_back(*txn.Commit());
    for (Document& other : authors) {
      if (&other != &d) (void)other.ApplyChange(changes.back());
    }
  }
  return changes;
}

constexpr int kReverseChanges = 4096;

// 4,096 changes in reverse dependency order (a hostile or unlucky peer), received one by one:
// each is held until the change it waits for arrives, and the last one received releases them all.
void BM_Receive4096ChangesInReverseDependencyOrder(benchmark::State& state) {
  std::vector<Change> changes = ChainedHistory(kReverseChanges);
  std::reverse(changes.begin(), changes.end());
  for (auto _ : state) {
    state.PauseTiming();
    std::vector<Change> batch = changes;  // Receive takes its change by value
    state.ResumeTiming();
    Document fresh(NodeId{9});
    for (Change& c : batch) {
      weft::Status s = fresh.Receive(std::move(c));
      if (!s.ok()) state.SkipWithError(s.ToString().c_str());
    }
    if (fresh.pending() != 0 || fresh.history().size() != changes.size()) {
      state.SkipWithError("not every change was applied");
    }
    benchmark::DoNotOptimize(fresh.version());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * kReverseChanges);
}
BENCHMARK(BM_Receive4096ChangesInReverseDependencyOrder)->Unit(benchmark::kMillisecond);

// The same 4,096 changes as one batch through Replica::ApplyRemoteChanges, into a new replica on a
// temporary SQLite file (opening it is not timed; storing the batch is).
void BM_ReplicaApply4096ChangesInReverseDependencyOrder(benchmark::State& state) {
  std::vector<Change> changes = ChainedHistory(kReverseChanges);
  std::vector<weft::ChangeBlob> blobs;
  for (auto it = changes.rbegin(); it != changes.rend(); ++it) blobs.push_back(EncodeChange(*it));
  weft::testing::TempDir dir;
  int run = 0;
  for (auto _ : state) {
    state.PauseTiming();
    auto replica = weft::Replica::Open(dir.File("r" + std::to_string(run++) + ".db"));
    if (!replica.ok()) {
      state.SkipWithError(replica.status().ToString().c_str());
      break;
    }
    state.ResumeTiming();
    auto report = (*replica)->ApplyRemoteChanges("doc", blobs);
    state.PauseTiming();
    if (!report.ok()) {
      state.SkipWithError(report.status().ToString().c_str());
    } else if (report->applied != blobs.size()) {
      state.SkipWithError("not every change was applied");
    }
    replica->reset();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * kReverseChanges);
}
BENCHMARK(BM_ReplicaApply4096ChangesInReverseDependencyOrder)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
