// TLS contexts and client-side checks (see tls.h).
#include "sync/tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio/ip/address.hpp>
#include <filesystem>

namespace weft::sync {
namespace {

// Refuses TLS before 1.2 on both sides.
Status SetMinimumVersion(ssl::context& ctx) {
  if (SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION) != 1) {
    return Status(StatusCode::kInternal, "OpenSSL refused TLS 1.2 as the minimum version");
  }
  return Status::Ok();
}

// A file that must exist: its own message rather than OpenSSL's "No such file" in a queue.
Status CheckReadable(const std::string& path, const char* what) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return Status::InvalidArgument(std::string(what) + " " + path + " is not a readable file");
  }
  return Status::Ok();
}

Status Refused(const char* what, const std::string& path, const boost::system::error_code& ec) {
  return Status::InvalidArgument(std::string(what) + " " + path + " was refused: " + ec.message());
}

}  // namespace

Result<std::shared_ptr<ssl::context>> MakeClientTlsContext(const std::string& ca_file) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  WEFT_RETURN_IF_ERROR(SetMinimumVersion(*ctx));
  ctx->set_verify_mode(ssl::verify_peer);
  boost::system::error_code ec;
  if (ca_file.empty()) {
    ctx->set_default_verify_paths(ec);
    if (ec) return Status::IOError("cannot load the system's CA certificates: " + ec.message());
    return ctx;
  }
  WEFT_RETURN_IF_ERROR(CheckReadable(ca_file, "the CA file"));
  ctx->load_verify_file(ca_file, ec);
  if (ec) return Refused("the CA file", ca_file, ec);
  return ctx;
}

Result<std::shared_ptr<ssl::context>> MakeServerTlsContext(const std::string& cert_file,
                                                           const std::string& key_file) {
  WEFT_RETURN_IF_ERROR(CheckReadable(cert_file, "the TLS certificate"));
  WEFT_RETURN_IF_ERROR(CheckReadable(key_file, "the TLS key"));
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  WEFT_RETURN_IF_ERROR(SetMinimumVersion(*ctx));
  boost::system::error_code ec;
  ctx->use_certificate_chain_file(cert_file, ec);
  if (ec) return Refused("the TLS certificate", cert_file, ec);
  // OpenSSL checks that the key matches the certificate loaded first.
  ctx->use_private_key_file(key_file, ssl::context::pem, ec);
  if (ec && ec.category() == boost::asio::error::get_ssl_category() &&
      ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == X509_R_KEY_VALUES_MISMATCH) {
    return Status::InvalidArgument("the TLS key " + key_file + " does not match the certificate " +
                                   cert_file);
  }
  if (ec) return Refused("the TLS key", key_file, ec);
  return ctx;
}

Status PrepareClientHandshake(TlsStream& stream, const std::string& host) {
  SSL* ssl = stream.native_handle();
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
  X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  boost::system::error_code not_address;
  boost::asio::ip::make_address(host, not_address);
  bool ok;
  if (not_address) {
    // A name: sent as SNI (never an address, RFC 6066), and checked against the DNS SANs.
    ok = SSL_set_tlsext_host_name(ssl, host.c_str()) == 1 &&
         X509_VERIFY_PARAM_set1_host(param, host.c_str(), host.size()) == 1;
  } else {
    ok = X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str()) == 1;
  }
  if (!ok) {
    ERR_clear_error();
    return Status::InvalidArgument("TLS: cannot verify the host name \"" + host + "\"");
  }
  stream.set_verify_mode(ssl::verify_peer);
  return Status::Ok();
}

std::string DescribeHandshakeFailure(TlsStream& stream, const boost::system::error_code& ec,
                                     bool* untrusted) {
  long result = SSL_get_verify_result(stream.native_handle());
  bool verify_failed =
      ec.category() == boost::asio::error::get_ssl_category() &&
      ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == SSL_R_CERTIFICATE_VERIFY_FAILED;
  if (result != X509_V_OK || verify_failed) {
    *untrusted = true;
    return std::string("TLS: the server's certificate was not trusted: ") +
           (result != X509_V_OK ? X509_verify_cert_error_string(result) : ec.message().c_str());
  }
  return "TLS handshake: " + ec.message();
}

}  // namespace weft::sync
