// weft-web-native: the native crdt/ core's side of the interop tests of bindings/web
// (test/interop.test.mjs). Lines of text on stdin and stdout; bytes as lowercase hex.
//
//   weft-web-native history SEED AUTHORS STEPS
//     A random history (tests/support RandomHistory: every value kind, concurrent changes by
//     AUTHORS authors), applied to one document. Prints "change HEX" per change in causal order,
//     then "state HEX" (CanonicalState), "json TEXT" (ToJson), "snapshot HEX" (EncodeSnapshot with
//     history) and "version TEXT".
//   weft-web-native apply NODE_HEX
//     Reads "change HEX" and "snapshot HEX" lines. Every change is decoded and re-encoded
//     ("reencoded N differ" counts those whose bytes change), then received in the order given by
//     a document owned by NODE_HEX. Each snapshot is decoded on its own ("snapshot-state HEX").
//     Prints "state HEX", "json TEXT", "pending N", and "error TEXT" (exit status 1) on failure.
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "doc_sim.h"
#include "weft/crdt/document.h"

using namespace weft::crdt;

namespace {

std::string Hex(std::string_view s) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  out.reserve(s.size() * 2);
  for (unsigned char c : s) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

bool Unhex(std::string_view hex, std::string* out) {
  if (hex.size() % 2) return false;
  out->clear();
  for (size_t i = 0; i < hex.size(); i += 2) {
    int v = 0;
    for (char c : hex.substr(i, 2)) {
      int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
      if (d < 0) return false;
      v = v * 16 + d;
    }
    out->push_back(static_cast<char>(v));
  }
  return true;
}

int Fail(const std::string& what) {
  std::printf("error %s\n", what.c_str());
  return 1;
}

int History(uint64_t seed, int authors, int steps) {
  auto history = weft::testing::RandomHistory(seed, authors, steps);
  if (!history.ok()) return Fail(history.status().ToString());
  Document doc(NodeId{0x99});
  for (const Change& c : *history) {
    std::printf("change %s\n", Hex(EncodeChange(c)).c_str());
    weft::Status s = doc.ApplyChange(c);
    if (!s.ok()) return Fail(s.ToString());
  }
  std::printf("state %s\n", Hex(doc.CanonicalState()).c_str());
  std::printf("json %s\n", doc.ToJson().c_str());
  std::printf("snapshot %s\n", Hex(doc.EncodeSnapshot(true)).c_str());
  std::printf("version %s\n", doc.version().ToString().c_str());
  return 0;
}

int Apply(const std::string& node_hex) {
  auto node = NodeId::FromHex(node_hex);
  if (!node) return Fail("bad node ID");
  Document doc(*node);
  std::string line, bytes;
  size_t differ = 0, changes = 0;
  while (std::getline(std::cin, line)) {
    size_t space = line.find(' ');
    if (space == std::string::npos) continue;
    std::string kind = line.substr(0, space);
    if (!Unhex(std::string_view(line).substr(space + 1), &bytes)) return Fail("bad hex");
    if (kind == "change") {
      auto c = DecodeChange(bytes);
      if (!c.ok()) return Fail("decode: " + c.status().ToString());
      ++changes;
      if (EncodeChange(*c) != bytes) ++differ;
      weft::Status s = doc.Receive(std::move(*c));
      if (!s.ok()) return Fail("receive: " + s.ToString());
    } else if (kind == "snapshot") {
      auto d = Document::DecodeSnapshot(bytes, NodeId{0x98});
      if (!d.ok()) return Fail("snapshot: " + d.status().ToString());
      std::printf("snapshot-state %s\n", Hex(d->CanonicalState()).c_str());
    }
  }
  std::printf("reencoded %zu of %zu differ\n", differ, changes);
  std::printf("pending %zu\n", doc.pending());
  std::printf("state %s\n", Hex(doc.CanonicalState()).c_str());
  std::printf("json %s\n", doc.ToJson().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "history" && argc == 5) {
    return History(std::strtoull(argv[2], nullptr, 10), std::atoi(argv[3]), std::atoi(argv[4]));
  }
  if (mode == "apply" && argc == 3) return Apply(argv[2]);
  std::fprintf(stderr,
               "usage: weft-web-native history SEED AUTHORS STEPS | apply NODE_HEX < lines\n");
  return 2;
}
