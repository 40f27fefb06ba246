// Times the end-to-end encryption core: what an admin pays to rotate a document's key for N
// reader devices (a new key sealed to each, the previous key wrapped, the record signed and
// encoded), what a reader pays to verify the record and open its key, and payload encryption.
// Prints min, median and max over the runs, of wall time and of this thread's CPU time (which a
// shared machine disturbs less); no assertion.
//
//   weft-e2e-bench [--readers N] [--runs R]
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "e2e.h"

using namespace weft;
using namespace weft::e2e;
using Clock = std::chrono::steady_clock;

namespace {

void Report(const char* what, std::vector<double> ms) {
  std::sort(ms.begin(), ms.end());
  std::printf("%-44s min %8.3f ms  median %8.3f ms  max %8.3f ms  (%zu runs)\n", what, ms.front(),
              ms[ms.size() / 2], ms.back(), ms.size());
}

double Since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// This thread's CPU time in milliseconds.
double CpuMs() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

[[noreturn]] void Die(const Status& s) {
  std::fprintf(stderr, "weft-e2e-bench: %s\n", s.ToString().c_str());
  std::exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  size_t readers = 100;
  int runs = 50;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--readers") == 0) readers = std::strtoul(argv[i + 1], nullptr, 10);
    if (std::strcmp(argv[i], "--runs") == 0) runs = std::atoi(argv[i + 1]);
  }
  if (readers == 0 || runs <= 0) {
    std::fprintf(stderr, "usage: weft-e2e-bench [--readers N] [--runs R]\n");
    return 2;
  }
  SecretKey admin;
  if (auto pk = admin.Generate(); !pk.ok()) Die(pk.status());
  std::vector<std::unique_ptr<SecretKey>> devices;
  std::vector<PublicKey> keys;
  for (size_t i = 0; i < readers; ++i) {
    devices.push_back(std::make_unique<SecretKey>());
    auto pk = devices.back()->Generate();
    if (!pk.ok()) Die(pk.status());
    keys.push_back(*pk);
  }
  const std::string doc = "bench/e2e";
  auto k0 = NewEpochKey();
  if (!k0.ok()) Die(k0.status());
  auto r0 = MakeKeyRecord(admin, doc, keys, *k0);
  if (!r0.ok()) Die(r0.status());

  std::vector<double> rotate, rotate_cpu, verify_open, encrypt, decrypt;
  size_t record_bytes = 0;
  for (int run = 0; run < runs; ++run) {
    // The admin's side: a new key for every reader, the chain link, the signature, the bytes.
    auto t0 = Clock::now();
    double c0 = CpuMs();
    auto k1 = NewEpochKey();
    if (!k1.ok()) Die(k1.status());
    auto r1 = MakeKeyRecord(admin, doc, keys, *k1, &*r0, &*k0);
    if (!r1.ok()) Die(r1.status());
    std::string bytes = EncodeKeyRecord(*r1);
    rotate.push_back(Since(t0));
    rotate_cpu.push_back(CpuMs() - c0);
    record_bytes = bytes.size();

    // One reader's side: decode, check the admin, open its key, unwrap the previous one.
    t0 = Clock::now();
    auto got = DecodeKeyRecord(bytes);
    if (!got.ok()) Die(got.status());
    std::vector<PublicKey> admins = {admin.public_key()};
    if (Status s = VerifyKeyRecord(*got, admins); !s.ok()) Die(s);
    auto mine = OpenEpochKey(*got, *devices[run % readers]);
    if (!mine.ok()) Die(mine.status());
    auto prev = UnwrapPreviousKey(*got, *mine, *r0);
    if (!prev.ok()) Die(prev.status());
    verify_open.push_back(Since(t0));

    // A 1 KiB change payload.
    std::string plain(1024, 'x');
    t0 = Clock::now();
    auto c = EncryptPayload(*mine, 1, "header", plain);
    if (!c.ok()) Die(c.status());
    encrypt.push_back(Since(t0));
    t0 = Clock::now();
    auto p = DecryptPayload(*mine, "header", *c);
    if (!p.ok()) Die(p.status());
    decrypt.push_back(Since(t0));
  }
  std::printf("%zu readers, record %zu bytes\n", readers, record_bytes);
  Report("rotate (admin: make + sign + encode)", rotate);
  Report("rotate, CPU time of the thread", rotate_cpu);
  Report("reader: decode + verify + open + unwrap", verify_open);
  Report("encrypt 1 KiB payload", encrypt);
  Report("decrypt 1 KiB payload", decrypt);
  return 0;
}
