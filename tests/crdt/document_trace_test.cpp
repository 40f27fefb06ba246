// Real editing traces replayed through documents and transactions (the public API), as
// weft-bench does: every replica ends with exactly the trace's endContent.
#include <catch2/catch.hpp>
#include <fstream>
#include <string>

#include "doc_trace.h"

using namespace weft::testing;

namespace {

void ReplayAndCheck(const std::string& name) {
  std::string path = std::string(WEFT_TRACES_DIR) + "/" + name;
  if (!std::ifstream(path).good()) {
    WARN("skipped: " << path << " not found");
    return;
  }
  auto trace = LoadTrace(path);
  REQUIRE(trace.ok());
  auto replay = ReplayTraceIntoDocuments(*trace);
  INFO(replay.status().ToString());
  REQUIRE(replay.ok());
  REQUIRE(MergeAllDocuments(&*replay).ok());
  for (const auto& doc : replay->replicas) {
    auto text = doc.ReadText(replay->text);
    REQUIRE(text.ok());
    CHECK(*text == trace->end_content);
    CHECK(doc.CanonicalState() == replay->replicas[0].CanonicalState());
  }
  auto fresh = MergeIntoFreshDocument(*replay);
  REQUIRE(fresh.ok());
  CHECK(fresh->CanonicalState() == replay->replicas[0].CanonicalState());
  auto loaded = weft::crdt::Document::DecodeSnapshot(replay->replicas[0].EncodeSnapshot(false),
                                                     weft::crdt::NodeId{77});
  REQUIRE(loaded.ok());
  CHECK(*loaded->ReadText(replay->text) == trace->end_content);
}

}  // namespace

TEST_CASE("automerge-paper through documents gives endContent", "[trace][document]") {
  ReplayAndCheck("automerge-paper.json.gz");
}

TEST_CASE("sveltecomponent through documents gives endContent", "[trace][document]") {
  ReplayAndCheck("sveltecomponent.json.gz");
}

TEST_CASE("friendsforever through documents converges to endContent on every replica",
          "[trace][document]") {
  ReplayAndCheck("friendsforever.json.gz");
}
