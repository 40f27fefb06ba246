// What the sync benchmarks share (weft-sync-bench, weft-scale-bench): the clock, percentiles and
// the paced edits of a run.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace weft::bench {

// The steady clock, in nanoseconds.
int64_t NowNs();

// The p-quantile (0..1) of `v` (0 when empty).
double Percentile(std::vector<double> v, double p);

// The edits of one run: `n` devices edit at `rate` a second each for warmup + duration, spread
// evenly over time by up to `max_drivers` driver threads (device i on thread i mod drivers);
// `edit(device, element, sent_ns)` makes one (the element is "device:seq:sent_ns"). When the
// warm-up ends, `measure_from` is set to the steady clock (ns) and `at_measure` runs. Returns the
// edits sent at or after measure_from and the seconds from then to the end of the schedule.
struct Driven {
  uint64_t measured = 0;
  double window_s = 0;
};
Driven DriveEdits(int n, double rate, double warmup_s, double duration_s, int max_drivers,
                  std::atomic<int64_t>& measure_from, const std::function<void()>& at_measure,
                  const std::function<void(int, const std::string&, int64_t)>& edit);

}  // namespace weft::bench
