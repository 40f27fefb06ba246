// What the sync benchmarks share (drive.h).
#include "drive.h"

#include <algorithm>
#include <chrono>
#include <climits>
#include <thread>

namespace weft::bench {

using Clock = std::chrono::steady_clock;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(i), v.end());
  return v[i];
}

Driven DriveEdits(int n, double rate, double warmup_s, double duration_s, int max_drivers,
                  std::atomic<int64_t>& measure_from, const std::function<void()>& at_measure,
                  const std::function<void(int, const std::string&, int64_t)>& edit) {
  const int drivers = std::max(1, std::min(n, max_drivers));
  measure_from.store(INT64_MAX);
  std::atomic<uint64_t> measured{0};
  const auto start = Clock::now();
  const auto measure_start =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(warmup_s));
  const auto end = measure_start + std::chrono::duration_cast<Clock::duration>(
                                       std::chrono::duration<double>(duration_s));
  std::thread marker([&] {
    std::this_thread::sleep_until(measure_start);
    measure_from.store(NowNs());
    at_measure();
  });
  std::vector<std::thread> threads;
  for (int t = 0; t < drivers; ++t) {
    threads.emplace_back([&, t] {
      std::vector<int> mine;
      for (int i = t; i < n; i += drivers) mine.push_back(i);
      const double interval_s = 1.0 / (rate * static_cast<double>(mine.size()));
      std::vector<uint64_t> seq(mine.size(), 0);
      for (uint64_t k = 0;; ++k) {
        auto when = start + std::chrono::duration_cast<Clock::duration>(
                                std::chrono::duration<double>(interval_s * static_cast<double>(k)) +
                                std::chrono::duration<double>(interval_s * t / drivers));
        if (when >= end) break;
        std::this_thread::sleep_until(when);
        size_t j = k % mine.size();
        int64_t sent = NowNs();
        edit(mine[j],
             std::to_string(mine[j]) + ":" + std::to_string(seq[j]++) + ":" + std::to_string(sent),
             sent);
        if (sent >= measure_from.load()) measured.fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  marker.join();
  return {measured.load(), std::chrono::duration<double>(Clock::now() - measure_start).count()};
}

}  // namespace weft::bench
