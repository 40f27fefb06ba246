// Self-signed test certificates with the OpenSSL 3 API (see test_cert.h).
#include "test_cert.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <cstdio>
#include <memory>

namespace weft::testing {
namespace {

template <class T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using KeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using CertPtr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using ExtPtr = std::unique_ptr<X509_EXTENSION, Deleter<X509_EXTENSION, X509_EXTENSION_free>>;

Status OpenSslError(const std::string& what) {
  unsigned long e = ERR_get_error();
  char buf[256] = "unknown error";
  if (e != 0) ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return Status(StatusCode::kInternal, "test certificate: " + what + ": " + buf);
}

// The extensions of `openssl req -x509 -addext subjectAltName=...`: a CA certificate (so that it
// can be its own trust anchor) that names the test server.
Status AddExtensions(X509* cert) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  const std::pair<int, const char*> kExtensions[] = {
      {NID_basic_constraints, "critical,CA:TRUE"},
      {NID_key_usage, "critical,digitalSignature,keyCertSign"},
      {NID_ext_key_usage, "serverAuth"},
      {NID_subject_key_identifier, "hash"},
      {NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1"},
  };
  for (const auto& [nid, value] : kExtensions) {
    ExtPtr ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
    if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) return OpenSslError(value);
  }
  return Status::Ok();
}

Status WritePem(const std::string& path, bool secret, EVP_PKEY* key, X509* cert) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (!f) return Status::IOError("cannot write " + path);
  if (secret) ::chmod(path.c_str(), 0600);
  bool ok = key ? PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr) == 1
                : PEM_write_X509(f, cert) == 1;
  ok = std::fclose(f) == 0 && ok;
  return ok ? Status::Ok() : OpenSslError("writing " + path);
}

}  // namespace

Result<TestCert> WriteTestCert(const std::string& dir) {
  KeyPtr key(EVP_EC_gen("P-256"));
  if (!key) return OpenSslError("EC key");
  CertPtr cert(X509_new());
  if (!cert) return OpenSslError("X509_new");
  unsigned char serial[16];
  if (RAND_bytes(serial, sizeof serial) != 1) return OpenSslError("serial");
  serial[0] &= 0x7f;  // positive
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  bool ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get())) != nullptr;
  BN_free(bn);
  if (!ok || X509_set_version(cert.get(), X509_VERSION_3) != 1) return OpenSslError("serial");
  // Valid now, whatever the clock skew between steps of a test.
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 24 * 3600);
  X509_NAME* name = X509_get_subject_name(cert.get());
  if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                 reinterpret_cast<const unsigned char*>("localhost"), -1, -1,
                                 0) != 1 ||
      X509_set_issuer_name(cert.get(), name) != 1 || X509_set_pubkey(cert.get(), key.get()) != 1) {
    return OpenSslError("subject");
  }
  WEFT_RETURN_IF_ERROR(AddExtensions(cert.get()));
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0) return OpenSslError("signing");
  TestCert out{dir + "/cert.pem", dir + "/key.pem"};
  WEFT_RETURN_IF_ERROR(WritePem(out.key_file, true, key.get(), nullptr));
  WEFT_RETURN_IF_ERROR(WritePem(out.cert_file, false, nullptr, cert.get()));
  return out;
}

}  // namespace weft::testing
