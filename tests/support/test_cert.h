// Self-signed TLS certificates made at test time (never checked in): an EC P-256 key and an X.509
// v3 certificate for "localhost" with the SANs DNS:localhost and IP:127.0.0.1, valid from an hour
// ago for a day, usable both as a server certificate and as the CA file that trusts it.
//
// Used by the TLS tests in-process and, through the weft-test-cert tool, by process tests.
#pragma once

#include <string>

#include "weft/status.h"

namespace weft::testing {

struct TestCert {
  std::string cert_file;  // DIR/cert.pem
  std::string key_file;   // DIR/key.pem
};

// Writes a new key pair and its self-signed certificate to DIR/cert.pem and DIR/key.pem (the
// key file owner-only). Each call makes a new key, so two calls give certificates that do not
// trust each other. kIOError or kInternal with OpenSSL's reason on failure.
Result<TestCert> WriteTestCert(const std::string& dir);

}  // namespace weft::testing
