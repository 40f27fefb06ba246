// Opening a replica in a Catch2 test: the test stops, with the status, when it cannot be opened.
// Header-only, for test files (which link Catch2).
#pragma once

#include <catch2/catch.hpp>
#include <memory>
#include <string>

#include "weft/replica.h"

namespace weft::testing {

// Its documents are public (anyone may write them): the tests that use it are about storage,
// sync and merging; the access-list tests open replicas with owned documents themselves.
inline std::unique_ptr<Replica> OpenReplicaAt(const std::string& path, ReplicaOptions opts = {}) {
  opts.public_documents = true;
  auto r = Replica::Open(path, std::move(opts));
  INFO(r.status().ToString());
  REQUIRE(r.ok());
  return std::move(*r);
}

}  // namespace weft::testing
