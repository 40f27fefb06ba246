// Randomized convergence and non-interleaving of the sequence CRDT (Text).
//
// Every test prints its seed on failure; WEFT_SEED=N replays just that seed.
#include <algorithm>
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "support/random.h"
#include "weft/crdt/sequence.h"

namespace {

using weft::crdt::DeleteOp;
using weft::crdt::Dot;
using weft::crdt::NodeId;
using weft::crdt::Reader;
using weft::crdt::Text;
using weft::crdt::TextInsertOp;
using weft::crdt::TextOp;
using weft::crdt::Writer;
using weft::testing::Rng;

std::vector<uint64_t> Seeds(uint64_t count, uint64_t base) {
  uint64_t one = weft::testing::SeedFromEnv();
  if (one != 0) return {one};
  std::vector<uint64_t> seeds;
  for (uint64_t i = 1; i <= count; ++i) seeds.push_back(base + i);
  return seeds;
}

std::string Encode(const Text& t) {
  Writer w;
  t.EncodeState(w);
  return w.Take();
}

// A message: an op plus the causal context it was made in (ops seen per replica).
struct Message {
  TextOp op;
  size_t author;
  std::vector<uint64_t>
      deps;  // deps[r]: ops of replica r the author had applied (own: this op's number - 1)
};

struct Replica {
  Text text;
  NodeId node;
  uint64_t next_seq = 1;
  std::vector<uint64_t> seen;  // ops applied per author
  std::vector<size_t> inbox;   // indexes into the message log
};

const char* const kPieces[] = {"a", "b", "c", "xyz", "é", "中", "😀", "ab😀c", "ñandú", "\n"};

std::string RandomText(Rng& rng) {
  std::string s;
  size_t n = rng.Chance(50) ? 1 : static_cast<size_t>(rng.Range(1, 6));
  for (size_t i = 0; i < n; ++i) {
    if (rng.Chance(60)) {
      s.push_back(static_cast<char>('a' + rng.Below(26)));
    } else {
      s += kPieces[rng.Below(sizeof kPieces / sizeof kPieces[0])];
    }
  }
  return s;
}

bool Deliverable(const Replica& r, const Message& m) {
  for (size_t i = 0; i < m.deps.size(); ++i) {
    if (i == m.author) {
      if (r.seen[i] < m.deps[i]) return false;  // needs the author's earlier ops
    } else if (r.seen[i] < m.deps[i]) {
      return false;
    }
  }
  return true;
}

void RunConvergence(uint64_t seed) {
  INFO("seed " << seed << " (replay with WEFT_SEED=" << seed << ")");
  Rng rng(seed);
  size_t n = static_cast<size_t>(rng.Range(3, 5));
  std::vector<Replica> reps(n);
  for (size_t i = 0; i < n; ++i) {
    reps[i].node = NodeId{rng.Next() | 1};
    reps[i].seen.assign(n, 0);
  }
  std::vector<Message> log;
  size_t steps = static_cast<size_t>(rng.Range(20, 80));
  for (size_t step = 0; step < steps; ++step) {
    size_t ri = rng.Below(n);
    Replica& r = reps[ri];
    if (rng.Chance(35) && !r.inbox.empty()) {
      // Deliver some deliverable messages, sometimes keeping them for a duplicate delivery.
      size_t tries = static_cast<size_t>(rng.Range(1, 4));
      for (size_t t = 0; t < tries && !r.inbox.empty(); ++t) {
        size_t k = rng.Below(r.inbox.size());
        const Message& m = log[r.inbox[k]];
        if (!Deliverable(r, m)) continue;
        REQUIRE(r.text.Validate(m.op).ok());
        REQUIRE(r.text.Apply(m.op).ok());
        r.seen[m.author] = std::max(r.seen[m.author], m.deps[m.author] + 1);
        if (!rng.Chance(20)) r.inbox.erase(r.inbox.begin() + static_cast<long>(k));
      }
      continue;
    }
    std::optional<TextOp> op;
    if (r.text.size() == 0 || rng.Chance(60)) {
      size_t pos = rng.Below(r.text.size() + 1);
      std::string s = RandomText(rng);
      if (rng.Chance(10)) r.next_seq += rng.Below(3);  // seqs used by other objects
      auto ins = r.text.LocalInsert(pos, s, Dot{r.node, r.next_seq});
      REQUIRE(ins.ok());
      r.next_seq += weft::crdt::CountCodePoints(s);
      op = TextOp(*ins);
    } else {
      size_t size = r.text.size();
      size_t pos = rng.Below(size);
      size_t len = rng.Chance(70) ? static_cast<size_t>(rng.Range(1, 3))
                                  : static_cast<size_t>(rng.Range(1, static_cast<int64_t>(size)));
      len = std::min(len, size - pos);
      std::string before = r.text.ToString();
      auto del = r.text.LocalDelete(pos, len);
      REQUIRE(del.ok());
      REQUIRE(r.text.size() == size - len);
      op = TextOp(*del);
    }
    Message m{*op, ri, r.seen};
    r.seen[ri] += 1;
    log.push_back(std::move(m));
    for (size_t j = 0; j < n; ++j) {
      if (j != ri) reps[j].inbox.push_back(log.size() - 1);
    }
  }
  // Deliver everything left, in random deliverable order.
  for (Replica& r : reps) {
    while (!r.inbox.empty()) {
      std::vector<size_t> ready;
      for (size_t k = 0; k < r.inbox.size(); ++k) {
        if (Deliverable(r, log[r.inbox[k]])) ready.push_back(k);
      }
      REQUIRE(!ready.empty());
      size_t k = ready[rng.Below(ready.size())];
      const Message& m = log[r.inbox[k]];
      REQUIRE(r.text.Apply(m.op).ok());
      r.seen[m.author] = std::max(r.seen[m.author], m.deps[m.author] + 1);
      r.inbox.erase(r.inbox.begin() + static_cast<long>(k));
    }
  }
  std::string text0 = reps[0].text.ToString();
  std::string enc0 = Encode(reps[0].text);
  for (size_t i = 0; i < n; ++i) {
    INFO("replica " << i);
    REQUIRE(reps[i].text.core().CheckInvariants() == "");
    REQUIRE(reps[i].text.ToString() == text0);
    REQUIRE(Encode(reps[i].text) == enc0);
  }
  // The snapshot loads back to the same state, and a replay of every op from scratch (in log
  // order, which is causal) gives the same bytes too.
  Reader rd(enc0);
  auto loaded = Text::DecodeState(rd);
  REQUIRE(loaded.ok());
  REQUIRE(loaded->ToString() == text0);
  REQUIRE(Encode(*loaded) == enc0);
  Text fresh;
  for (const Message& m : log) REQUIRE(fresh.Apply(m.op).ok());
  REQUIRE(Encode(fresh) == enc0);
}

// The runs typed by each replica appear contiguously at `pos`, in some order.
void RunNonInterleaving(uint64_t seed) {
  INFO("seed " << seed << " (replay with WEFT_SEED=" << seed << ")");
  Rng rng(seed);
  size_t n = static_cast<size_t>(rng.Range(2, 3));
  Text base;
  NodeId base_node{rng.Next() | 1};
  std::vector<TextOp> base_ops;
  uint64_t bseq = 1;
  // A shared starting document, maybe with tombstones, built from a few ops.
  size_t base_ops_n = rng.Below(4);
  for (size_t i = 0; i < base_ops_n; ++i) {
    if (base.size() > 0 && rng.Chance(30)) {
      size_t pos = rng.Below(base.size());
      auto d = base.LocalDelete(pos, 1);
      REQUIRE(d.ok());
      base_ops.push_back(*d);
    } else {
      std::string s(static_cast<size_t>(rng.Range(1, 4)), '.');
      auto ins = base.LocalInsert(rng.Below(base.size() + 1), s, Dot{base_node, bseq});
      REQUIRE(ins.ok());
      bseq += s.size();
      base_ops.push_back(*ins);
    }
  }
  size_t pos = rng.Below(base.size() + 1);
  std::vector<Text> reps(n, base);
  std::vector<std::vector<TextOp>> ops(n);
  std::vector<std::string> runs(n);
  const char alphabets[3] = {'a', 'A', '0'};
  for (size_t r = 0; r < n; ++r) {
    NodeId node{rng.Next() | 1};
    size_t len = static_cast<size_t>(rng.Range(1, 8));
    for (size_t k = 0; k < len; ++k) runs[r].push_back(static_cast<char>(alphabets[r] + k));
    int mode = static_cast<int>(rng.Below(4));
    uint64_t seq = 1;
    if (mode == 0) {  // one insert
      auto ins = reps[r].LocalInsert(pos, runs[r], Dot{node, seq});
      REQUIRE(ins.ok());
      ops[r].push_back(*ins);
    } else if (mode == 1) {  // typed forwards, one char at a time
      for (size_t k = 0; k < len; ++k) {
        auto ins = reps[r].LocalInsert(pos + k, runs[r].substr(k, 1), Dot{node, seq++});
        REQUIRE(ins.ok());
        ops[r].push_back(*ins);
      }
    } else if (mode == 2) {  // typed backwards: every char at pos (the run reads reversed)
      for (size_t k = len; k-- > 0;) {
        auto ins = reps[r].LocalInsert(pos, runs[r].substr(k, 1), Dot{node, seq++});
        REQUIRE(ins.ok());
        ops[r].push_back(*ins);
      }
    } else {  // typed in chunks
      size_t k = 0;
      while (k < len) {
        size_t c = std::min(len - k, static_cast<size_t>(rng.Range(1, 3)));
        auto ins = reps[r].LocalInsert(pos + k, runs[r].substr(k, c), Dot{node, seq});
        REQUIRE(ins.ok());
        seq += c;
        ops[r].push_back(*ins);
        k += c;
      }
    }
  }
  // Exchange: each replica receives the others' op streams, interleaved at random.
  for (size_t r = 0; r < n; ++r) {
    std::vector<size_t> next(n, 0);
    while (true) {
      std::vector<size_t> ready;
      for (size_t o = 0; o < n; ++o) {
        if (o != r && next[o] < ops[o].size()) ready.push_back(o);
      }
      if (ready.empty()) break;
      size_t o = ready[rng.Below(ready.size())];
      REQUIRE(reps[r].Apply(ops[o][next[o]++]).ok());
    }
  }
  std::string result = reps[0].ToString();
  for (size_t r = 1; r < n; ++r) REQUIRE(reps[r].ToString() == result);
  std::string b = base.ToString();
  REQUIRE(result.size() == b.size() + [&] {
    size_t t = 0;
    for (auto& s : runs) t += s.size();
    return t;
  }());
  REQUIRE(result.substr(0, pos) == b.substr(0, pos));
  REQUIRE(result.substr(result.size() - (b.size() - pos)) == b.substr(pos));
  std::string middle = result.substr(pos, result.size() - b.size());
  INFO("runs inserted at " << pos << " of '" << b << "' became '" << middle << "'");
  for (size_t r = 0; r < n; ++r) REQUIRE(middle.find(runs[r]) != std::string::npos);
}

}  // namespace

TEST_CASE("sequence: 1000 random runs of 3-5 replicas converge", "[sequence][convergence]") {
  for (uint64_t seed : Seeds(1000, 1000)) RunConvergence(seed);
}

TEST_CASE("sequence: concurrent runs at one position never interleave (10000 trials)",
          "[sequence][interleaving]") {
  for (uint64_t seed : Seeds(10000, 500000)) RunNonInterleaving(seed);
}
