// weft-bench: benchmarks of Weft on real editing traces.
//
//   weft-bench trace FILE   replay a trace (../shared/traces/README.md format, gzipped or plain
//                           JSON) and print one JSON line: trace, ops, apply_ms, merge_ms,
//                           snapshot_bytes, load_ms, peak_rss_kb, ok.
//   weft-bench trace FILE --persist DB [--txn-size N]
//                           also replays a sequential trace through the SDK into database DB, N
//                           patches a transaction (default 1), adding persist_ms, commit_p50_us,
//                           commit_p99_us, db_bytes and reopen_ms.
// Exit status: 0 when ok, 1 when the replay did not reproduce endContent, 2 on usage errors.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "replay.h"

int main(int argc, char** argv) {
  if (argc < 3 || std::strcmp(argv[1], "trace") != 0) {
    std::fprintf(stderr, "usage: %s trace FILE [--persist DB [--txn-size N]]\n", argv[0]);
    return 2;
  }
  weft::bench::PersistOptions persist;
  for (int i = 3; i < argc; ++i) {
    if (std::strcmp(argv[i], "--persist") == 0 && i + 1 < argc) {
      persist.db = argv[++i];
    } else if (std::strcmp(argv[i], "--txn-size") == 0 && i + 1 < argc) {
      persist.txn_size = static_cast<size_t>(std::strtoull(argv[++i], nullptr, 10));
    } else {
      std::fprintf(stderr, "usage: %s trace FILE [--persist DB [--txn-size N]]\n", argv[0]);
      return 2;
    }
  }
  if (persist.txn_size == 0) {
    std::fprintf(stderr, "--txn-size must be at least 1\n");
    return 2;
  }
  weft::bench::TraceReport rep = weft::bench::RunTraceBenchmark(argv[2], persist);
  std::printf("%s\n", weft::bench::ToJson(rep).c_str());
  return rep.ok ? 0 : 1;
}
