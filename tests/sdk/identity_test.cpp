// Device identities (weft/identity.h): a key pair made on first open, kept in the database, the
// file made owner-only, the same key on every open, and damage to it refused.
#include "weft/identity.h"

#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <memory>
#include <string>

#include "open_replica.h"
#include "sql_exec.h"
#include "temp_dir.h"
#include "weft/replica.h"

using namespace weft;

namespace {

using testing::OpenReplicaAt;
constexpr auto OpenAt = [](const std::string& path, ReplicaOptions opts = {}) {
  return OpenReplicaAt(path, std::move(opts));
};

}  // namespace

TEST_CASE("a replica makes its device key on first open and keeps it", "[sdk]") {
  testing::TempDir dir;
  const std::string path = dir.File("a.db");
  PublicKey key;
  {
    auto r = OpenAt(path);
    key = r->public_key();
    CHECK(key.valid());
    CHECK(key.ToHex().size() == 64);
    REQUIRE(r->Transact("d", [](Txn& t) { return t.root().Put("k", Scalar("v")); }).ok());
  }
  // Owner-only: the file now holds a secret.
  struct stat st {};
  REQUIRE(stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  // The same identity on every open; another database has another.
  CHECK(OpenAt(path)->public_key() == key);
  CHECK(OpenAt(dir.File("b.db"))->public_key() != key);
}

TEST_CASE("a damaged device key is refused at open", "[sdk]") {
  testing::TempDir dir;
  const std::string path = dir.File("a.db");
  (void)OpenAt(path);
  SECTION("a public key that does not match the secret") {
    REQUIRE(testing::ExecSql(path, "UPDATE meta SET value = '" + std::string(64, '1') +
                                       "' WHERE key = 'device_key'")
                .empty());
  }
  SECTION("a secret of the wrong size") {
    REQUIRE(testing::ExecSql(path,
                             "UPDATE meta SET value = X'0102' WHERE key = "
                             "'device_secret_key'")
                .empty());
  }
  auto r = Replica::Open(path);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == StatusCode::kCorruption);
  CHECK(r.status().message().find("device") != std::string::npos);
}

TEST_CASE("public keys print and parse as 64 hex characters", "[sdk]") {
  auto k = PublicKey::FromHex(std::string(62, 'a') + "Bc");
  REQUIRE(k);
  CHECK(k->ToHex() == std::string(62, 'a') + "bc");
  CHECK(PublicKey::FromHex(k->ToHex()) == k);
  CHECK_FALSE(PublicKey::FromHex(std::string(63, 'a')));
  CHECK_FALSE(PublicKey::FromHex(std::string(65, 'a')));
  CHECK_FALSE(PublicKey::FromHex(std::string(63, 'a') + "g"));
  CHECK_FALSE(PublicKey::FromHex(std::string(64, '0')));  // the zero key is no key
  CHECK_FALSE(PublicKey().valid());
}
