// Uses the installed C++ SDK: opens a replica, commits a change, reads it back.
#include <cstdio>
#include <string>

#include "weft/replica.h"

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  auto replica = weft::Replica::Open(argv[1]);
  if (!replica.ok()) return 1;
  auto& r = **replica;
  auto commit = r.Transact("doc", [](weft::Txn& txn) {
    auto likes = txn.root().Counter("likes");
    if (!likes.ok()) return likes.status();
    return likes->Increment(3);
  });
  if (!commit.ok()) return 1;
  std::string json;
  auto read = r.Read("doc", [&](const weft::View& v) { json = v.ToJson(); });
  if (!read.ok()) return 1;
  std::printf("weft C++ SDK: %s\n", json.c_str());
  return json.find("3") != std::string::npos ? 0 : 1;
}
