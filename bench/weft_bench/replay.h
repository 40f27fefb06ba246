// The measured steps of `weft-bench trace`: replay, merge into a fresh replica, snapshot, load.
// Each step is a plain function so that the engine it drives (today Text directly, later the
// Document API) can be swapped in one place.
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
};

// Loads and runs the whole benchmark for one trace file.
TraceReport RunTraceBenchmark(const std::string& path);
// One JSON line with the report's fields.
std::string ToJson(const TraceReport& r);

}  // namespace weft::bench
