// The measured steps of `weft-bench trace`: replay through documents, merge into a fresh
// replica, snapshot, load; and with --persist, the same edits through the SDK into a database.
#pragma once

#include <string>

#include "trace.h"

namespace weft::bench {

struct TraceReport {
  std::string trace;  // file name without directories and .json.gz
  size_t ops = 0;     // patches applied
  double apply_ms = 0;
  double merge_ms = 0;
  size_t snapshot_bytes = 0;
  double load_ms = 0;
  long peak_rss_kb = 0;
  bool ok = false;
  std::string error;  // why ok is false, when known
  // --persist
  bool persisted = false;
  double persist_ms = 0;
  double commit_p50_us = 0;
  double commit_p99_us = 0;
  uint64_t db_bytes = 0;
  double reopen_ms = 0;
};

struct PersistOptions {
  std::string db;       // empty: no persistence run
  size_t txn_size = 1;  // patches per transaction
};

// Loads and runs the whole benchmark for one trace file.
TraceReport RunTraceBenchmark(const std::string& path, const PersistOptions& persist = {});
// One JSON line with the report's fields.
std::string ToJson(const TraceReport& r);

}  // namespace weft::bench
