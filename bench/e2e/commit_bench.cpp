// weft-e2e-commit-bench: the cost of a local commit in an end-to-end encrypted document against
// the same commit in a plain (owned) document: each is one Transact of a map write and a text
// insert, on its own replica (SQLite, Durability::kNormal) in a temporary directory. Prints the
// median and 90th percentile per kind and the ratio of the medians (the goal: at most 1.5).
//
//   weft-e2e-commit-bench [--commits N] [--readers R]
//
// The encrypted document has R members (the owner and R-1 readers), so its key record is that
// large; the plain one has the same members.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "weft/replica.h"

using namespace weft;

namespace {

int Fail(const Status& s) {
  std::fprintf(stderr, "weft-e2e-commit-bench: %s\n", s.ToString().c_str());
  return 1;
}

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(p * static_cast<double>(v.size() - 1))];
}

}  // namespace

int main(int argc, char** argv) {
  int commits = 2000;
  int readers = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--commits") == 0) commits = std::atoi(argv[i + 1]);
    if (std::strcmp(argv[i], "--readers") == 0) readers = std::atoi(argv[i + 1]);
  }
  if (commits < 10 || readers < 1) {
    std::fprintf(stderr, "usage: weft-e2e-commit-bench [--commits N>=10] [--readers R>=1]\n");
    return 2;
  }
  std::string tmpl = (std::filesystem::temp_directory_path() / "weft-e2e-bench-XXXXXX").string();
  if (!mkdtemp(tmpl.data())) return 1;
  const std::filesystem::path dir = tmpl;
  auto open = [&](const std::string& name) { return Replica::Open((dir / name).string()); };
  auto plain = open("plain.db");
  auto enc = open("enc.db");
  if (!plain.ok()) return Fail(plain.status());
  if (!enc.ok()) return Fail(enc.status());
  if (Status s = (*enc)->CreateEncryptedDocument("doc"); !s.ok()) return Fail(s);
  if (Status s = (*plain)->CreateDocument("doc"); !s.ok()) return Fail(s);
  for (int i = 1; i < readers; ++i) {
    auto member = open("member" + std::to_string(i) + ".db");
    if (!member.ok()) return Fail(member.status());
    for (auto* r : {&*plain, &*enc}) {
      auto g = (**r).Grant("doc", (*member)->public_key(), Role::kReader);
      if (!g.ok()) return Fail(g.status());
    }
  }
  const std::string value(100, 'v');
  std::vector<double> times[2];
  // Interleaved, so that both kinds see the same machine load.
  for (int i = 0; i < commits; ++i) {
    for (int k = 0; k < 2; ++k) {
      Replica& r = k == 0 ? **plain : **enc;
      auto t0 = std::chrono::steady_clock::now();
      auto c = r.Transact("doc", [&](Txn& t) {
        WEFT_RETURN_IF_ERROR(t.root().Put("k" + std::to_string(i % 50), Scalar(value)));
        auto text = t.root().Text("text");
        if (!text.ok()) return text.status();
        return text->Insert(0, "abc");
      });
      auto t1 = std::chrono::steady_clock::now();
      if (!c.ok()) return Fail(c.status());
      times[k].push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
    }
  }
  const char* names[2] = {"plain", "encrypted"};
  for (int k = 0; k < 2; ++k) {
    std::printf("%-10s commits %d  p50 %8.1f us  p90 %8.1f us\n", names[k], commits,
                Percentile(times[k], 0.5), Percentile(times[k], 0.9));
  }
  std::printf("ratio of medians (encrypted / plain): %.2f\n",
              Percentile(times[1], 0.5) / Percentile(times[0], 0.5));
  plain->reset();
  enc->reset();
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return 0;
}
