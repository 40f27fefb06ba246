#include "replay.h"

#include <sys/resource.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "doc_trace.h"
#include "weft/crdt/document.h"
#include "weft/crdt/encoding.h"
#include "weft/json.h"
#include "weft/replica.h"

namespace weft::bench {
namespace {

using Clock = std::chrono::steady_clock;

double MsSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

std::string BaseName(const std::string& path) {
  std::string name = path.substr(path.find_last_of('/') + 1);
  for (const char* ext : {".gz", ".json"}) {
    std::string e(ext);
    if (name.size() > e.size() && name.compare(name.size() - e.size(), e.size(), e) == 0) {
      name.resize(name.size() - e.size());
    }
  }
  return name;
}

long PeakRssKb() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;  // kilobytes on Linux
}

}  // namespace

// Replays a sequential trace through the SDK into a database file, `txn_size` patches a
// transaction, timing each commit; then reopens the database and reads the text.
void RunPersist(const testing::Trace& trace, const PersistOptions& opts, TraceReport* rep) {
  rep->persisted = true;
  if (trace.concurrent) {
    rep->ok = false;
    rep->error = "--persist replays sequential traces only";
    return;
  }
  for (const char* suffix : {"", "-wal", "-shm"}) std::remove((opts.db + suffix).c_str());
  std::vector<double> commits_us;
  auto t0 = Clock::now();
  {
    auto replica = Replica::Open(opts.db);
    if (!replica.ok()) {
      rep->ok = false;
      rep->error = replica.status().ToString();
      return;
    }
    std::vector<const testing::TracePatch*> patches;
    for (const auto& txn : trace.txns) {
      for (const auto& p : txn.patches) patches.push_back(&p);
    }
    if (!trace.start_content.empty()) {
      auto c = (*replica)->Transact(
          "trace", [&](Txn& t) { return t.root().Text("text")->Insert(0, trace.start_content); });
      if (!c.ok()) rep->error = c.status().ToString();
    }
    size_t step = std::max<size_t>(opts.txn_size, 1);
    for (size_t i = 0; i < patches.size() && rep->error.empty(); i += step) {
      auto c0 = Clock::now();
      auto c = (*replica)->Transact("trace", [&](Txn& t) {
        auto text = t.root().Text("text");
        if (!text.ok()) return text.status();
        for (size_t k = i; k < std::min(patches.size(), i + step); ++k) {
          const testing::TracePatch& p = *patches[k];
          if (p.del) WEFT_RETURN_IF_ERROR(text->Delete(p.pos, p.del));
          if (!p.insert.empty()) WEFT_RETURN_IF_ERROR(text->Insert(p.pos, p.insert));
        }
        return Status::Ok();
      });
      commits_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - c0).count());
      if (!c.ok()) rep->error = c.status().ToString();
    }
  }
  rep->persist_ms = MsSince(t0);
  if (!rep->error.empty()) {
    rep->ok = false;
    return;
  }
  std::sort(commits_us.begin(), commits_us.end());
  if (!commits_us.empty()) {
    rep->commit_p50_us = commits_us[commits_us.size() / 2];
    rep->commit_p99_us = commits_us[std::min(commits_us.size() - 1, commits_us.size() * 99 / 100)];
  }
  for (const char* suffix : {"", "-wal"}) {
    struct stat st {};
    if (stat((opts.db + suffix).c_str(), &st) == 0)
      rep->db_bytes += static_cast<uint64_t>(st.st_size);
  }
  t0 = Clock::now();
  std::string text;
  auto replica = Replica::Open(opts.db);
  Status read = replica.ok() ? (*replica)->Read("trace",
                                                [&](const View& v) {
                                                  auto t = v.root().Text("text");
                                                  if (t.ok()) text = *t->Read();
                                                })
                             : replica.status();
  rep->reopen_ms = MsSince(t0);
  if (!read.ok() || text != trace.end_content) {
    rep->ok = false;
    rep->error = read.ok() ? "the reopened text differs from endContent" : read.ToString();
  }
}

TraceReport RunTraceBenchmark(const std::string& path, const PersistOptions& persist) {
  TraceReport rep;
  rep.trace = BaseName(path);
  Result<testing::Trace> trace = testing::LoadTrace(path);
  if (!trace.ok()) {
    rep.error = trace.status().ToString();
    rep.peak_rss_kb = PeakRssKb();
    return rep;
  }
  rep.ops = trace->patch_count;

  // apply: every edit through documents and transactions, one per txn (each agent its own
  // replica, receiving its parents' changes before a txn).
  auto t0 = Clock::now();
  Result<testing::DocReplay> replay = testing::ReplayTraceIntoDocuments(*trace);
  rep.apply_ms = MsSince(t0);
  if (!replay.ok()) {
    rep.error = replay.status().ToString();
    rep.peak_rss_kb = PeakRssKb();
    return rep;
  }
  Status merged = testing::MergeAllDocuments(&*replay);
  bool ok = merged.ok();
  if (!ok) rep.error = merged.ToString();
  for (const crdt::Document& d : replay->replicas) {
    auto text = d.ReadText(replay->text);
    ok = ok && text.ok() && *text == trace->end_content;
  }

  // merge: a fresh replica applies every change as a remote change.
  t0 = Clock::now();
  Result<crdt::Document> fresh = testing::MergeIntoFreshDocument(*replay);
  rep.merge_ms = MsSince(t0);
  ok = ok && fresh.ok() && *fresh->ReadText(replay->text) == trace->end_content;

  // snapshot (the document's state: enough to merge any concurrent change) and load.
  std::string snapshot = replay->replicas[0].EncodeSnapshot(false);
  rep.snapshot_bytes = snapshot.size();
  t0 = Clock::now();
  auto loaded = crdt::Document::DecodeSnapshot(snapshot, crdt::NodeId{0xFFFFFFFDull});
  std::string loaded_text = loaded.ok() ? *loaded->ReadText(replay->text) : std::string();
  rep.load_ms = MsSince(t0);
  ok = ok && loaded.ok() && loaded_text == trace->end_content;
  if (ok && fresh.ok() && fresh->CanonicalState() != replay->replicas[0].CanonicalState()) {
    ok = false;
    rep.error = "fresh replica's state differs";
  }
  if (!ok && rep.error.empty()) rep.error = "final text differs from endContent";
  rep.ok = ok;
  if (!persist.db.empty()) RunPersist(*trace, persist, &rep);
  rep.peak_rss_kb = PeakRssKb();
  return rep;
}

std::string ToJson(const TraceReport& r) {
  json::Value v = json::Value::MakeObject();
  v.Set("trace", json::Value::Str(r.trace));
  v.Set("ops", json::Value::Number(static_cast<double>(r.ops)));
  auto ms = [](double d) {
    return json::Value::Number(static_cast<double>(static_cast<int64_t>(d * 1000 + 0.5)) / 1000);
  };
  v.Set("apply_ms", ms(r.apply_ms));
  v.Set("merge_ms", ms(r.merge_ms));
  v.Set("snapshot_bytes", json::Value::Number(static_cast<double>(r.snapshot_bytes)));
  v.Set("load_ms", ms(r.load_ms));
  v.Set("peak_rss_kb", json::Value::Number(static_cast<double>(r.peak_rss_kb)));
  v.Set("ok", json::Value::Bool(r.ok));
  if (r.persisted) {
    v.Set("persist_ms", ms(r.persist_ms));
    v.Set("commit_p50_us", ms(r.commit_p50_us));
    v.Set("commit_p99_us", ms(r.commit_p99_us));
    v.Set("db_bytes", json::Value::Number(static_cast<double>(r.db_bytes)));
    v.Set("reopen_ms", ms(r.reopen_ms));
  }
  if (!r.error.empty()) v.Set("error", json::Value::Str(r.error));
  return json::Serialize(v);
}

}  // namespace weft::bench
