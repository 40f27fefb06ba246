// TLS for sync (wss://): a relay in-process with a self-signed certificate made at test time
// (tests/support/test_cert.h), and clients that trust it, trust something else, or do not speak
// TLS at all. Every test case names TLS, so `ctest -R TLS` runs them all.
#include <boost/asio.hpp>
#include <boost/beast.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <functional>
#include <string>
#include <thread>

#include "open_replica.h"
#include "relay.h"
#include "sync/dialer.h"
#include "temp_dir.h"
#include "test_cert.h"
#include "weft/replica.h"
#include "weft/sync.h"

using namespace weft;
using namespace std::chrono_literals;
namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using testing::OpenReplicaAt;

namespace {

testing::TestCert MakeCert(const std::string& dir) {
  auto c = testing::WriteTestCert(dir);
  INFO(c.status().ToString());
  REQUIRE(c.ok());
  return *c;
}

// A relay on 127.0.0.1, port 0, storing in `data_dir`, serving TLS with `cert_file`, `key_file`.
relay::RelayOptions TlsOptions(const std::string& data_dir, const std::string& cert_file,
                               const std::string& key_file) {
  relay::RelayOptions o;
  o.listen_port = 0;
  o.data_dir = data_dir;
  o.durability = Durability::kNormal;
  o.initial_backoff = 50ms;
  o.max_backoff = 500ms;
  o.tls_cert_file = cert_file;
  o.tls_key_file = key_file;
  return o;
}

// A relay on `host`, port 0, serving TLS with a certificate of its own (cert) in its temp dir.
struct TlsRelay {
  explicit TlsRelay(const std::string& host = "127.0.0.1",
                    const std::function<void(relay::RelayOptions&)>& tweak = nullptr)
      : host(host), cert(MakeCert(dir.path())) {
    relay::RelayOptions o = TlsOptions(dir.File("relay"), cert.cert_file, cert.key_file);
    o.listen_host = host;
    if (tweak) tweak(o);
    auto r = relay::Relay::Start(o);
    INFO(r.status().ToString());
    REQUIRE(r.ok());
    relay = std::move(*r);
  }
  std::string Url(const std::string& scheme = "wss", const std::string& name = "") const {
    return scheme + "://" + (name.empty() ? host : name) + ":" + std::to_string(relay->port());
  }

  testing::TempDir dir;
  std::string host;
  testing::TestCert cert;
  std::unique_ptr<relay::Relay> relay;
};

SyncOptions Trusting(const std::string& ca_file) {
  SyncOptions o;
  o.initial_backoff = 50ms;
  o.max_backoff = 200ms;
  o.tls_ca_file = ca_file;
  return o;
}

void Put(Replica& r, const std::string& doc, const std::string& key, const std::string& value) {
  auto c = r.Transact(doc, [&](Txn& t) { return t.root().Put(key, Scalar(value)); });
  INFO(c.status().ToString());
  REQUIRE(c.ok());
}

std::string State(Replica& r, const std::string& doc) {
  std::string s = "<absent>";
  (void)r.Read(doc, [&](const View& v) { s = v.CanonicalState(); });
  return s;
}

void RequireSynced(Replica& r, const std::string& url, const std::string& ca_file) {
  auto s = SyncOnce(r, url, {}, 20s, Trusting(ca_file));
  INFO(url << ": " << s.status().ToString());
  REQUIRE(s.ok());
}

// A refusal for the certificate: at once (not a timeout), saying so.
void RequireUntrusted(Replica& r, const std::string& url, const std::string& ca_file) {
  auto s = SyncOnce(r, url, {}, 20s, Trusting(ca_file));
  INFO(s.status().ToString());
  REQUIRE(s.status().code() == StatusCode::kPermissionDenied);
  CHECK(s.status().message().find("certificate was not trusted") != std::string::npos);
}

// GET `target` over TLS trusting `ca_file`: the status and body.
std::pair<unsigned, std::string> HttpsGet(const TlsRelay& t, const std::string& target) {
  net::io_context ioc;
  net::ssl::context ctx(net::ssl::context::tls_client);
  ctx.load_verify_file(t.cert.cert_file);
  ctx.set_verify_mode(net::ssl::verify_peer);
  beast::ssl_stream<beast::tcp_stream> s(ioc, ctx);
  tcp::resolver resolver(ioc);
  beast::get_lowest_layer(s).connect(resolver.resolve(t.host, std::to_string(t.relay->port())));
  s.handshake(net::ssl::stream_base::client);
  http::request<http::empty_body> req(http::verb::get, target, 11);
  req.set(http::field::host, t.host);
  http::write(s, req);
  beast::flat_buffer b;
  http::response<http::string_body> res;
  http::read(s, b, res);
  return {res.result_int(), res.body()};
}

bool Eventually(const std::function<bool()>& cond, std::chrono::milliseconds limit = 20s) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!cond()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

}  // namespace

TEST_CASE("TLS: wss URLs parse with port 443 by default", "[sync][tls]") {
  auto u = sync::ParseWsUrl("wss://relay.example/sync");
  REQUIRE(u.ok());
  CHECK(u->tls);
  CHECK(u->host == "relay.example");
  CHECK(u->port == "443");
  CHECK(u->target == "/sync");
  auto p = sync::ParseWsUrl("ws://[::1]:9000");
  REQUIRE(p.ok());
  CHECK(!p->tls);
  CHECK(p->port == "9000");
  CHECK(!sync::ParseWsUrl("https://relay.example").ok());
}

TEST_CASE("TLS: a client trusting the relay's certificate syncs both ways and converges",
          "[sync][tls]") {
  TlsRelay t;
  testing::TempDir dir;
  auto a = OpenReplicaAt(dir.File("a.db"));
  auto b = OpenReplicaAt(dir.File("b.db"));
  Put(*a, "doc", "from a", "1");
  Put(*b, "doc", "from b", "2");
  RequireSynced(*a, t.Url(), t.cert.cert_file);
  // (By IP only: a test never resolves a name, which a minimal machine may not even know.)
  RequireSynced(*b, t.Url(), t.cert.cert_file);
  RequireSynced(*a, t.Url(), t.cert.cert_file);
  CHECK(State(*a, "doc") == State(*b, "doc"));
  CHECK(State(*a, "doc") == State(t.relay->replica(), "doc"));
  CHECK(State(*a, "doc").find("from b") != std::string::npos);
  // /healthz and /metrics on the same port, over TLS too.
  CHECK(HttpsGet(t, "/healthz") == std::make_pair(200u, std::string("ok\n")));
  auto [code, body] = HttpsGet(t, "/metrics");
  CHECK(code == 200);
  CHECK(body.find("weft_relay_tls_handshake_failures_total 0\n") != std::string::npos);
}

TEST_CASE("TLS: a client without the relay's CA is refused and the relay stays healthy",
          "[sync][tls]") {
  TlsRelay t;
  testing::TempDir dir;
  auto a = OpenReplicaAt(dir.File("a.db"));
  Put(*a, "doc", "k", "v");
  // The system's CAs do not know a self-signed certificate.
  RequireUntrusted(*a, t.Url(), "");
  // A client keeps retrying with backoff, each attempt refused for the certificate.
  auto client = SyncClient::Create(*a, Trusting(""));
  REQUIRE(client.ok());
  REQUIRE((*client)->AddPeer(t.Url()).ok());
  REQUIRE(Eventually([&] { return (*client)->Peers().at(0).failed_attempts >= 2; }));
  PeerStatus p = (*client)->Peers().at(0);
  CHECK(p.state != ConnectionState::kConnected);
  CHECK(p.last_error.find("certificate was not trusted") != std::string::npos);
  (*client)->Stop();
  // It never connected: nothing reached the relay, which still serves a trusting client.
  CHECK(t.relay->Counter("connections_total") == 0);
  CHECK(!t.relay->replica().HasDocument("doc"));
  RequireSynced(*a, t.Url(), t.cert.cert_file);
  CHECK(State(*a, "doc") == State(t.relay->replica(), "doc"));
}

TEST_CASE("TLS: a client trusting another self-signed certificate is refused", "[sync][tls]") {
  TlsRelay t;
  testing::TempDir dir, other;
  auto stranger = MakeCert(other.path());
  auto a = OpenReplicaAt(dir.File("a.db"));
  Put(*a, "doc", "k", "v");
  RequireUntrusted(*a, t.Url(), stranger.cert_file);
  CHECK(!t.relay->replica().HasDocument("doc"));
}

TEST_CASE("TLS: a certificate that does not name the host is refused", "[sync][tls]") {
  // The certificate names 127.0.0.1 and localhost; the relay listens on another loopback address.
  TlsRelay t("127.0.0.2");
  testing::TempDir dir;
  auto a = OpenReplicaAt(dir.File("a.db"));
  Put(*a, "doc", "k", "v");
  RequireUntrusted(*a, t.Url(), t.cert.cert_file);
  CHECK(!t.relay->replica().HasDocument("doc"));
}

TEST_CASE("TLS: a plain ws client or other bytes on the TLS port fail cleanly, TLS still syncs",
          "[sync][tls]") {
  TlsRelay t;
  testing::TempDir dir;
  auto a = OpenReplicaAt(dir.File("a.db"));
  Put(*a, "doc", "k", "v");
  auto plain = SyncOnce(*a, t.Url("ws"), {}, 1500ms, Trusting(""));
  INFO(plain.status().ToString());
  CHECK(plain.status().code() == StatusCode::kTimeout);
  REQUIRE(Eventually([&] { return t.relay->Counter("tls_handshake_failures_total") >= 1; }));
  // Bytes that are not TLS at all: the relay closes the socket.
  {
    net::io_context ioc;
    tcp::socket s(ioc);
    s.connect(tcp::endpoint(net::ip::make_address(t.host), t.relay->port()));
    std::string junk(4096, 'x');
    beast::error_code ec;
    net::write(s, net::buffer(junk), ec);
    char buf[256];
    while (!ec) s.read_some(net::buffer(buf), ec);
    CHECK((ec == net::error::eof || ec == net::error::connection_reset));
  }
  uint64_t failures = t.relay->Counter("tls_handshake_failures_total");
  CHECK(failures >= 2);
  CHECK(t.relay->Counter("connections_total") == 0);
  RequireSynced(*a, t.Url(), t.cert.cert_file);
  CHECK(State(*a, "doc") == State(t.relay->replica(), "doc"));
  CHECK(t.relay->Counter("tls_handshake_failures_total") == failures);
}

TEST_CASE("TLS: a relay dials a wss peer relay, trusting its CA file", "[sync][tls]") {
  TlsRelay hub;
  TlsRelay edge("127.0.0.1", [&](relay::RelayOptions& o) {
    o.peers = {hub.Url()};
    o.tls_ca_file = hub.cert.cert_file;
  });
  testing::TempDir dir;
  auto a = OpenReplicaAt(dir.File("a.db"));
  Put(*a, "doc", "k", "via the edge");
  RequireSynced(*a, edge.Url(), edge.cert.cert_file);
  REQUIRE(Eventually([&] { return State(hub.relay->replica(), "doc") == State(*a, "doc"); }));
}

TEST_CASE("TLS: a relay refuses a missing or unmatched certificate or key at start",
          "[sync][tls]") {
  testing::TempDir dir, other;
  auto cert = MakeCert(dir.path());
  auto stranger = MakeCert(other.path());
  auto start = [&](const std::string& c, const std::string& k) {
    return relay::Relay::Start(TlsOptions(dir.File("relay"), c, k)).status();
  };
  Status only_cert = start(cert.cert_file, "");
  CHECK(only_cert.code() == StatusCode::kInvalidArgument);
  Status missing = start(cert.cert_file, dir.File("nope.pem"));
  CHECK(missing.code() == StatusCode::kInvalidArgument);
  CHECK(missing.message().find("nope.pem") != std::string::npos);
  Status swapped = start(cert.key_file, cert.cert_file);
  CHECK(swapped.code() == StatusCode::kInvalidArgument);
  Status unmatched = start(cert.cert_file, stranger.key_file);
  INFO(unmatched.ToString());
  CHECK(unmatched.code() == StatusCode::kInvalidArgument);
  CHECK(unmatched.message().find("does not match") != std::string::npos);
  CHECK(start(cert.cert_file, cert.key_file).ok());
  // A client's CA file is checked when the client is made.
  auto a = OpenReplicaAt(dir.File("a.db"));
  CHECK(SyncClient::Create(*a, Trusting(dir.File("nope.pem"))).status().code() ==
        StatusCode::kInvalidArgument);
}
