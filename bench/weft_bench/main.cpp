// weft-bench: benchmarks of Weft on real editing traces.
//
//   weft-bench trace FILE   replay a trace (../shared/traces/README.md format, gzipped or plain
//                           JSON) and print one JSON line: trace, ops, apply_ms, merge_ms,
//                           snapshot_bytes, load_ms, peak_rss_kb, ok.
// Exit status: 0 when ok, 1 when the replay did not reproduce endContent, 2 on usage errors.
#include <cstdio>
#include <cstring>
#include <string>

#include "replay.h"

int main(int argc, char** argv) {
  if (argc != 3 || std::strcmp(argv[1], "trace") != 0) {
    std::fprintf(stderr, "usage: %s trace FILE\n", argv[0]);
    return 2;
  }
  weft::bench::TraceReport rep = weft::bench::RunTraceBenchmark(argv[2]);
  std::printf("%s\n", weft::bench::ToJson(rep).c_str());
  return rep.ok ? 0 : 1;
}
