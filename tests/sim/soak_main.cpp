// weft-sim-soak: runs simulation seeds (tests/sim/sim.h) for as long as it is given, and prints
// seeds per second and every failing seed (replay one with WEFT_SEED=N in sim_test, or here
// with --first N --seconds 0).
//   weft-sim-soak [--seconds S] [--first SEED] [--steps N] [--e2e]
// --e2e: every seed also has an end-to-end encrypted document whose admins grant and revoke
// (key rotations) during partitions (replay one: WEFT_SEED=N in sim_test's encrypted case).
// Without --first the seeds start at a random point (printed first), so that every soak covers
// new ground. WEFT_SIM_TRACE=1 prints each step and frame (of a short run: --seconds 0).
// Exit status 0 when every seed converged and lost nothing, 1 otherwise.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>

#include "sim.h"

int main(int argc, char** argv) {
  double seconds = 60;
  // A random start below 2^53 (so that it prints and parses exactly everywhere).
  std::random_device device;
  uint64_t first = ((uint64_t{device()} << 32) | device()) & ((uint64_t{1} << 53) - 1);
  int steps = 300;
  weft::sim::SimOptions options;
  for (int i = 1; i < argc; ++i) {
    auto arg = [&](const char* name) {
      if (std::strcmp(argv[i], name) != 0 || i + 1 >= argc)
        return static_cast<const char*>(nullptr);
      return static_cast<const char*>(argv[++i]);
    };
    if (const char* v = arg("--seconds")) {
      seconds = std::atof(v);
    } else if (const char* v2 = arg("--first")) {
      first = std::strtoull(v2, nullptr, 10);
    } else if (const char* v3 = arg("--steps")) {
      steps = std::atoi(v3);
    } else if (std::strcmp(argv[i], "--e2e") == 0) {
      options.devices = 5;
      options.e2e_document = "vault";
    } else {
      std::fprintf(stderr,
                   "usage: weft-sim-soak [--seconds S] [--first SEED] [--steps N] [--e2e]\n");
      return 2;
    }
  }
  std::printf("soak: %d steps a seed, seeds from %llu (replay one: WEFT_SEED=N sim_test)\n", steps,
              static_cast<unsigned long long>(first));
  std::fflush(stdout);
  auto start = std::chrono::steady_clock::now();
  uint64_t seeds = 0, failures = 0, commits = 0;
  for (uint64_t seed = first;; ++seed) {
    weft::sim::Sim sim(seed, options);
    static const bool trace = std::getenv("WEFT_SIM_TRACE") != nullptr;
    for (int i = 0; i < steps; ++i) {
      std::string what = sim.Step();
      if (trace) std::fprintf(stderr, "step %d: %s\n", i, what.c_str());
    }
    sim.Heal();
    sim.Settle();
    if (!options.e2e_document.empty()) {
      // As sim_test: the owner writes last, under an epoch made after every revoke.
      auto w = sim.Edit(sim.device(0), options.e2e_document, [](weft::Txn& t) {
        return t.root().Put("last", weft::Scalar("written after the run"));
      });
      if (!w.ok())
        std::printf("seed %llu: the last write failed: %s\n", static_cast<unsigned long long>(seed),
                    w.status().ToString().c_str());
      sim.Settle();
    }
    weft::sim::SimReport r = sim.Check();
    ++seeds;
    commits += r.commits;
    if (!r.problems.empty()) {
      ++failures;
      std::printf("FAIL seed %llu: %s\n", static_cast<unsigned long long>(seed),
                  r.problems.front().c_str());
      std::fflush(stdout);
    }
    double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (elapsed >= seconds) {
      std::printf(
          "{\"seeds\":%llu,\"first\":%llu,\"steps\":%d,\"failures\":%llu,\"commits\":%llu,"
          "\"seconds\":%.1f,\"seeds_per_second\":%.2f}\n",
          static_cast<unsigned long long>(seeds), static_cast<unsigned long long>(first), steps,
          static_cast<unsigned long long>(failures), static_cast<unsigned long long>(commits),
          elapsed, seeds / elapsed);
      return failures == 0 ? 0 : 1;
    }
  }
}
