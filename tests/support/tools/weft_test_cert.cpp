// weft-test-cert DIR: writes a new self-signed certificate (DIR/cert.pem, for localhost and
// 127.0.0.1) and its key (DIR/key.pem) for process tests, which must not depend on the openssl
// command. Test-only; see test_cert.h.
#include <cstdio>

#include "test_cert.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: weft-test-cert DIR\n");
    return 2;
  }
  auto made = weft::testing::WriteTestCert(argv[1]);
  if (!made.ok()) {
    std::fprintf(stderr, "weft-test-cert: %s\n", made.status().ToString().c_str());
    return 1;
  }
  std::printf("%s\n%s\n", made->cert_file.c_str(), made->key_file.c_str());
  return 0;
}
