#include "replay.h"

#include <sys/resource.h>

#include <chrono>
#include <cstdio>

#include "doc_trace.h"
#include "weft/crdt/document.h"
#include "weft/crdt/encoding.h"
#include "weft/json.h"

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

TraceReport RunTraceBenchmark(const std::string& path) {
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
  if (!r.error.empty()) v.Set("error", json::Value::Str(r.error));
  return json::Serialize(v);
}

}  // namespace weft::bench
