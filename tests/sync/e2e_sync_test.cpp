// End-to-end encrypted documents through the weft-relay binary (a child process on loopback, on a
// port the kernel picks, SQLite store): devices sync an encrypted document through it, members
// read and write it, and none of its content is anywhere in the relay's files (database, WAL,
// anything else), while a plain document's content is (the control that shows the search finds
// stored content).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "relay_process.h"
#include "temp_dir.h"
#include "weft/replica.h"
#include "weft/sync.h"

using namespace weft;
using namespace std::chrono_literals;

namespace {

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

// The encrypted document's content: values, a text and a map key (keys are content too).
constexpr char kOwnerValue[] = "E2E-MARKER-OWNER-93d1f0";
constexpr char kText[] = "E2E-MARKER-TEXT-5be2a7";
constexpr char kWriterValue[] = "E2E-MARKER-WRITER-c4e9b3";
constexpr char kMapKey[] = "MAPKEY-9a1c77";
std::vector<std::string> Secrets() {
  return {kOwnerValue, kText, kWriterValue, kMapKey};
}
// The plain document's value: the control.
constexpr char kControl[] = "PLAIN-CONTROL-MARKER-71aa0e";

struct Devices {
  std::unique_ptr<Replica> owner;
  std::unique_ptr<Replica> writer;
  std::unique_ptr<Replica> reader;
};

// The owner creates the encrypted document "vault" (a value under kMapKey, a text), grants it to
// a writer and a reader, and writes the plain document "plain" (kControl); all sync through the
// relay on `port`. The writer reads the document and writes to it under the current epoch; the
// reader reads all of it, its epochs' keys opened from the records the relay stored.
Devices ShareThroughRelay(const testing::TempDir& dir, uint16_t port) {
  Devices d{OpenDevice(dir.File("owner.db")), OpenDevice(dir.File("writer.db")),
            OpenDevice(dir.File("reader.db"))};
  Replica& owner = *d.owner;
  Check(owner.CreateEncryptedDocument("vault"));
  Check(owner.Transact("vault", [&](Txn& t) { return t.root().Put(kMapKey, Scalar(kOwnerValue)); })
            .status());
  Check(owner.Grant("vault", d.writer->public_key(), Role::kWriter).status());
  Check(owner.Grant("vault", d.reader->public_key(), Role::kReader).status());
  Check(owner
            .Transact("vault",
                      [&](Txn& t) {
                        auto text = t.root().Text("notes");
                        if (!text.ok()) return text.status();
                        return text->Insert(0, kText);
                      })
            .status());
  Check(owner.Transact("plain", [&](Txn& t) { return t.root().Put("k", Scalar(kControl)); })
            .status());
  Check(owner.Grant("plain", d.reader->public_key(), Role::kReader).status());
  SyncVia(owner, port, {"vault", "plain"});

  SyncVia(*d.writer, port, {"vault"});
  CHECK(State(*d.writer, "vault") == State(owner, "vault"));
  Check(d.writer
            ->Transact("vault", [&](Txn& t) { return t.root().Put("reply", Scalar(kWriterValue)); })
            .status());
  SyncVia(*d.writer, port, {"vault"});
  SyncVia(owner, port, {"vault"});
  CHECK(State(owner, "vault").find(kWriterValue) != std::string::npos);

  SyncVia(*d.reader, port, {"vault", "plain"});
  const std::string state = State(*d.reader, "vault");
  CHECK(state == State(owner, "vault"));
  for (const char* m : {kOwnerValue, kText, kWriterValue}) {
    INFO(m);
    CHECK(state.find(m) != std::string::npos);
  }
  auto info = d.reader->Encryption("vault");
  REQUIRE(info.ok());
  CHECK(info->encrypted);
  CHECK(info->has_key);
  CHECK(info->missing_epochs.empty());
  CHECK(State(*d.reader, "plain").find(kControl) != std::string::npos);
  return d;
}

// For each needle looked for, the places (files) holding it.
using Found = std::map<std::string, std::vector<std::string>>;

// Every file under `dir` (a database, its WAL and shared memory, keys, anything else) that holds
// each of `needles`; each file read once.
Found FilesHolding(const std::string& dir, const std::vector<std::string>& needles) {
  Found found;
  for (const std::string& n : needles) found[n];
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    std::ifstream in(e.path(), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    for (const std::string& n : needles) {
      if (bytes.find(n) != std::string::npos) found[n].push_back(e.path().string());
    }
  }
  return found;
}

// Requires none of the encrypted document's content among `found`.
void CheckNoSecrets(const Found& found) {
  for (const std::string& s : Secrets()) {
    INFO(s);
    CHECK(found.at(s) == std::vector<std::string>{});
  }
}

// The needles every search looks for: the encrypted content and the control.
std::vector<std::string> Needles() {
  std::vector<std::string> n = Secrets();
  n.push_back(kControl);
  return n;
}

}  // namespace

TEST_CASE("an encrypted document syncs through weft-relay, which never holds its content",
          "[sync][e2e][security]") {
  testing::TempDir dir;
  const std::string data = dir.File("relay");
  RelayProcess relay(data, 0);
  Devices devices = ShareThroughRelay(dir, relay.port());

  // None of the encrypted content is in the relay's files, running (with its WAL) or killed.
  for (int pass = 0; pass < 2; ++pass) {
    INFO((pass == 0 ? "relay running" : "relay killed"));
    const Found found = FilesHolding(data, Needles());
    CHECK_FALSE(found.at(kControl).empty());
    CheckNoSecrets(found);
    if (pass == 0) CHECK(WIFSIGNALED(relay.Kill(SIGKILL)));
  }
}
