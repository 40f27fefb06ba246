// TLS for the sync protocol (wss://): OpenSSL contexts for the dialing and the accepting side, and
// the per-connection checks of the dialing side (server name indication, host name verification).
//
// A client context verifies the server's certificate chain against the system's CAs, or only
// against the certificates of one PEM file (a private CA, or a self-signed server certificate).
// A server context holds one certificate chain and its private key, both PEM.
//
// Internal to the SDK and the relay (Boost and OpenSSL types; not a public header).
// Thread safety: a context is shared by the sessions that use it and not changed after it is made.
#pragma once

#include <boost/asio/ssl.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <memory>
#include <string>

#include "weft/status.h"

namespace weft::sync {

namespace ssl = boost::asio::ssl;
using TlsStream = boost::beast::ssl_stream<boost::beast::tcp_stream>;

// A context for dialing wss:// peers: peer verification on, TLS 1.2 or later, trusting the
// certificates in `ca_file` (PEM) or, when empty, the system's. kInvalidArgument when the file
// cannot be read or holds no certificate.
Result<std::shared_ptr<ssl::context>> MakeClientTlsContext(const std::string& ca_file);

// A context for accepting TLS: the certificate chain of `cert_file` and the private key of
// `key_file` (both PEM), which must match. kInvalidArgument with the reason otherwise.
Result<std::shared_ptr<ssl::context>> MakeServerTlsContext(const std::string& cert_file,
                                                           const std::string& key_file);

// Before a client handshake on `stream`: sends `host` as the server name (when it is a name,
// not an address) and makes the handshake fail unless the certificate names `host` (a DNS name,
// or an IP address that must match an IP SAN). kInvalidArgument when OpenSSL refuses the name.
Status PrepareClientHandshake(TlsStream& stream, const std::string& host);

// Why a TLS handshake on `stream` failed, for last_error: names an untrusted certificate as such
// ("the server's certificate was not trusted: ..."), sets *untrusted when it was one.
std::string DescribeHandshakeFailure(TlsStream& stream, const boost::system::error_code& ec,
                                     bool* untrusted);

}  // namespace weft::sync
