// Replays the real editing traces in ../shared/traces (README.md there) through the Text API.
#include "trace.h"

#include <catch2/catch.hpp>
#include <fstream>
#include <string>

#include "weft/crdt/sequence.h"
#include "weft/json.h"

namespace {

using weft::crdt::Reader;
using weft::crdt::Text;
using weft::crdt::Writer;
using weft::testing::LoadTrace;
using weft::testing::Replay;
using weft::testing::Trace;

std::string TracePath(const char* name) {
  return std::string(WEFT_TRACES_DIR) + "/" + name;
}

bool Exists(const std::string& path) {
  return std::ifstream(path).good();
}

// Replays a trace, checks every replica and a fresh replica fed all ops as remote ops, and checks
// that the snapshot round-trips.
void CheckTrace(const char* name) {
  std::string path = TracePath(name);
  if (!Exists(path)) {
    WARN("trace " << path << " is missing: skipped");
    return;
  }
  auto trace = LoadTrace(path);
  REQUIRE(trace.ok());
  INFO("trace " << name << ": " << trace->txns.size() << " txns, " << trace->patch_count
                << " patches");
  auto replay = weft::testing::ReplayTrace(*trace);
  INFO(replay.status().ToString());
  REQUIRE(replay.ok());
  REQUIRE(weft::testing::MergeAll(*trace, &*replay).ok());
  for (size_t a = 0; a < replay->replicas.size(); ++a) {
    INFO("replica " << a);
    CHECK(replay->replicas[a].ToString() == trace->end_content);
    CHECK(replay->replicas[a].core().CheckInvariants() == "");
  }
  auto fresh = weft::testing::MergeIntoFresh(*replay);
  REQUIRE(fresh.ok());
  CHECK(fresh->ToString() == trace->end_content);

  Writer w1, w2;
  replay->replicas[0].EncodeState(w1);
  fresh->EncodeState(w2);
  CHECK(w1.data() == w2.data());  // canonical: same ops, same bytes
  for (size_t a = 1; a < replay->replicas.size(); ++a) {
    Writer w;
    replay->replicas[a].EncodeState(w);
    CHECK(w.data() == w1.data());
  }
  Reader r(w1.data());
  auto loaded = Text::DecodeState(r);
  REQUIRE(loaded.ok());
  CHECK(r.Finish("state").ok());
  CHECK(loaded->ToString() == trace->end_content);
  CHECK(loaded->core().CheckInvariants() == "");
  Writer w3;
  loaded->EncodeState(w3);
  CHECK(w3.data() == w1.data());
}

}  // namespace

TEST_CASE("automerge-paper trace replays to its endContent", "[trace]") {
  CheckTrace("automerge-paper.json.gz");
}

TEST_CASE("sveltecomponent trace replays to its endContent", "[trace]") {
  CheckTrace("sveltecomponent.json.gz");
}

TEST_CASE("friendsforever concurrent trace converges on every replica", "[trace]") {
  CheckTrace("friendsforever.json.gz");
}

// ---- the JSON reader and trace loader behind the tests above ----

TEST_CASE("json: parses and serializes values", "[json]") {
  using weft::json::Parse;
  using weft::json::Serialize;
  auto v = Parse(
      R"( {"a": [1, -2.5, 3e2, true, false, null], "s": "x\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00", "o": {}} )");
  REQUIRE(v.ok());
  const auto* a = v->Find("a");
  REQUIRE(a);
  REQUIRE(a->as_array().size() == 6);
  CHECK(a->as_array()[0].as_int() == 1);
  CHECK(a->as_array()[1].as_number() == -2.5);
  CHECK(a->as_array()[2].as_uint() == 300);
  CHECK(a->as_array()[3].as_bool());
  CHECK(a->as_array()[5].is_null());
  CHECK(v->Find("s")->as_string() == "x\"\\/\b\f\n\r\té😀");
  CHECK(v->Find("o")->is_object());
  CHECK(v->Find("missing") == nullptr);
  std::string out = Serialize(*v);
  auto again = Parse(out);
  REQUIRE(again.ok());
  CHECK(*again == *v);
  CHECK(Serialize(*Parse("[0.1,1e-7,-0,12345678901234]")) == "[0.1,1e-07,0,12345678901234]");
}

TEST_CASE("json: rejects malformed input with a position", "[json]") {
  using weft::json::Parse;
  for (const char* bad :
       {"",          "[1,]",     "{\"a\":1,}",   "01",      "1.",          "-",
        "1e",        "[1 2]",    "{a:1}",        "\"\\x\"", "\"\\ud800\"", "\"\\udc00\"",
        "\"\x01\"",  "\"\xff\"", "tru",          "nul",     "[1]x",        "\"abc",
        "{\"a\" 1}", "NaN",      "[\"\\u12g4\"]"}) {
    INFO("input: " << bad);
    auto r = Parse(bad);
    CHECK(r.status().code() == weft::StatusCode::kInvalidArgument);
  }
  auto r = Parse("{\n  \"a\": [1,\n  2,]\n}");
  REQUIRE(!r.ok());
  CHECK(r.status().message().find("line 3") != std::string::npos);
  std::string deep(100000, '[');
  CHECK(!Parse(deep).ok());  // depth limit, no stack overflow
}

TEST_CASE("trace: synthetic traces with startContent and merges", "[trace]") {
  // Sequential, non-empty start, multi-byte text.
  auto seq = weft::testing::ParseTrace(R"({"startContent": "héllo", "endContent": "h😀llo!",
      "txns": [{"time": "x", "patches": [[1, 1, "😀"], [5, 0, "!"]]}]})");
  REQUIRE(seq.ok());
  auto r1 = weft::testing::ReplayTrace(*seq);
  REQUIRE(r1.ok());
  CHECK(r1->replicas[0].ToString() == "h😀llo!");
  auto fresh = weft::testing::MergeIntoFresh(*r1);
  REQUIRE(fresh.ok());
  CHECK(fresh->ToString() == "h😀llo!");
  // Concurrent: two agents edit from a common parent; a third txn merges both.
  auto conc = weft::testing::ParseTrace(R"({"kind": "concurrent", "numAgents": 2,
      "endContent": "abXYcd",
      "txns": [
        {"agent": 0, "parents": [], "patches": [[0, 0, "abcd"]]},
        {"agent": 0, "parents": [0], "patches": [[2, 0, "X"]]},
        {"agent": 1, "parents": [0], "patches": [[2, 0, "Y"]]},
        {"agent": 1, "parents": [1, 2], "patches": []}
      ]})");
  REQUIRE(conc.ok());
  auto r2 = weft::testing::ReplayTrace(*conc);
  REQUIRE(r2.ok());
  REQUIRE(weft::testing::MergeAll(*conc, &*r2).ok());
  CHECK(r2->replicas[0].ToString() == r2->replicas[1].ToString());
  CHECK(r2->replicas[0].ToString().size() == 6);
  // Bad shapes.
  CHECK(!weft::testing::ParseTrace(R"({"txns": []})").ok());
  CHECK(!weft::testing::ParseTrace(R"({"endContent": "", "txns": [{"patches": [[1, 2]]}]})").ok());
  CHECK(!weft::testing::ParseTrace(R"({"kind": "concurrent", "numAgents": 1, "endContent": "",
      "txns": [{"agent": 0, "parents": [0], "patches": []}]})")
             .ok());
  // A patch past the end is an error, not a crash.
  auto past =
      weft::testing::ParseTrace(R"({"endContent": "", "txns": [{"patches": [[3, 0, "x"]]}]})");
  REQUIRE(past.ok());
  CHECK(weft::testing::ReplayTrace(*past).status().code() == weft::StatusCode::kOutOfRange);
}
