// End-to-end encrypted documents through the weft-relay binary (a child process on loopback, a
// free port, SQLite store): devices sync an encrypted document through it, members read and write
// it, and none of its content is anywhere in the relay's files (database, WAL, anything else),
// while a plain document's content is (the control that shows the search finds stored content).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "relay_process.h"
#include "temp_dir.h"
#include "weft/replica.h"
#include "weft/sync.h"

using namespace weft;
using namespace std::chrono_literals;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

using testing::FreePort;
using testing::RelayProcess;

void Check(const Status& s) {
  INFO(s.ToString());
  REQUIRE(s.ok());
}

std::unique_ptr<Replica> OpenDevice(const std::string& path) {
  auto r = Replica::Open(path);
  INFO(r.status().ToString());
  REQUIRE(r.ok());
  return std::move(*r);
}

SyncOptions FastOptions() {
  SyncOptions o;
  o.initial_backoff = 50ms;
  o.max_backoff = 500ms;
  return o;
}

void SyncVia(Replica& r, uint16_t port, const std::vector<std::string>& docs) {
  auto s = SyncOnce(r, "ws://127.0.0.1:" + std::to_string(port), docs, 30s, FastOptions());
  INFO(s.status().ToString());
  REQUIRE(s.ok());
}

std::string State(Replica& r, const std::string& doc) {
  std::string s;
  Check(r.Read(doc, [&](const View& v) { s = v.CanonicalState(); }));
  return s;
}

// Every file under `dir` (the relay's database, its WAL and shared memory, keys, anything else)
// that holds `needle`.
std::vector<std::string> FilesHolding(const std::string& dir, const std::string& needle) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    std::ifstream in(e.path(), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (bytes.find(needle) != std::string::npos) out.push_back(e.path().string());
  }
  return out;
}

}  // namespace

TEST_CASE("an encrypted document syncs through weft-relay, which never holds its content",
          "[sync][e2e][security]") {
  testing::TempDir dir;
  const std::string data = dir.File("relay");
  const uint16_t port = FreePort();
  RelayProcess relay(data, port);
  auto owner = OpenDevice(dir.File("owner.db"));
  auto writer = OpenDevice(dir.File("writer.db"));
  auto reader = OpenDevice(dir.File("reader.db"));
  const std::vector<std::string> markers = {"E2E-MARKER-OWNER-93d1f0", "E2E-MARKER-TEXT-5be2a7",
                                            "E2E-MARKER-WRITER-c4e9b3"};

  Check(owner->CreateEncryptedDocument("vault"));
  Check(owner
            ->Transact("vault",
                       [&](Txn& t) { return t.root().Put("MAPKEY-9a1c77", Scalar(markers[0])); })
            .status());
  Check(owner->Grant("vault", writer->public_key(), Role::kWriter).status());
  Check(owner->Grant("vault", reader->public_key(), Role::kReader).status());
  Check(owner
            ->Transact("vault",
                       [&](Txn& t) {
                         auto text = t.root().Text("notes");
                         if (!text.ok()) return text.status();
                         return text->Insert(0, markers[1]);
                       })
            .status());
  // The control: a plain document's content is in the relay's files once synced.
  const std::string control = "PLAIN-CONTROL-MARKER-71aa0e";
  Check(owner->Transact("plain", [&](Txn& t) { return t.root().Put("k", Scalar(control)); })
            .status());
  Check(owner->Grant("plain", reader->public_key(), Role::kReader).status());
  SyncVia(*owner, port, {"vault", "plain"});

  // The writer takes the document from the relay, reads it and writes under the current epoch.
  SyncVia(*writer, port, {"vault"});
  CHECK(State(*writer, "vault") == State(*owner, "vault"));
  Check(writer->Transact("vault", [&](Txn& t) { return t.root().Put("reply", Scalar(markers[2])); })
            .status());
  SyncVia(*writer, port, {"vault"});
  SyncVia(*owner, port, {"vault"});
  CHECK(State(*owner, "vault").find(markers[2]) != std::string::npos);

  // The reader reads everything, its epochs' keys opened from the records the relay stored.
  SyncVia(*reader, port, {"vault", "plain"});
  const std::string state = State(*reader, "vault");
  CHECK(state == State(*owner, "vault"));
  for (const std::string& m : markers) CHECK(state.find(m) != std::string::npos);
  auto info = reader->Encryption("vault");
  REQUIRE(info.ok());
  CHECK(info->encrypted);
  CHECK(info->has_key);
  CHECK(info->missing_epochs.empty());
  CHECK(State(*reader, "plain").find(control) != std::string::npos);

  // None of the encrypted content is in the relay's files, running (with its WAL) or killed.
  for (int pass = 0; pass < 2; ++pass) {
    INFO((pass == 0 ? "relay running" : "relay killed"));
    CHECK(!FilesHolding(data, control).empty());
    for (const std::string& m : markers) {
      INFO(m);
      CHECK(FilesHolding(data, m).empty());
    }
    CHECK(FilesHolding(data, "MAPKEY-9a1c77").empty());  // map keys are content too
    if (pass == 0) CHECK(WIFSIGNALED(relay.Kill(SIGKILL)));
  }
}
