// Seeded randomness for randomized tests: every run prints its seed and replays from it.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>

namespace weft::testing {

// A small, fast generator (splitmix64) whose sequence is the same on every platform, unlike the
// standard distributions.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n); n > 0.
  uint64_t Below(uint64_t n) { return Next() % n; }
  // Uniform in [lo, hi].
  int64_t Range(int64_t lo, int64_t hi) {
    return lo + static_cast<int64_t>(Below(static_cast<uint64_t>(hi - lo + 1)));
  }
  bool Chance(unsigned percent) { return Below(100) < percent; }

 private:
  uint64_t state_;
};

// WEFT_SEED=N in the environment replays one seed; otherwise nullopt-like 0 means "run them all".
inline uint64_t SeedFromEnv() {
  const char* s = std::getenv("WEFT_SEED");
  return s ? std::strtoull(s, nullptr, 10) : 0;
}

}  // namespace weft::testing
