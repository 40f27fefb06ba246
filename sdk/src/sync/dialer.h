// Dialer: one outgoing connection to a peer URL, kept open with exponential backoff and jitter.
//
// Used by the SDK's SyncClient and by the relay's --peer links (the same code on both). Each
// attempt is a fresh WsSession and Link; what survives between attempts is the replica (the op
// log and the acknowledged versions) and the totals below.
//
// Internal (Boost types). Thread safety: every public method may be called from any thread.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <random>
#include <string>

#include "sync/ws_session.h"
#include "weft/sync.h"

namespace weft::sync {

struct WsUrl {
  std::string host;
  std::string port;
  std::string target;  // "/..." (default "/")
  bool tls = false;    // wss://
};
// Parses ws://host[:port][/path] and wss://host[:port][/path] (IPv6 hosts in brackets); the port
// defaults to 80 for ws:// and 443 for wss://.
Result<WsUrl> ParseWsUrl(std::string_view url);

struct DialerOptions {
  LinkConfig link;  // dialer = true is forced
  SessionLimits limits;
  // A client context (MakeClientTlsContext), required for a wss:// URL.
  std::shared_ptr<ssl::context> tls;
  std::chrono::milliseconds initial_backoff{250};
  std::chrono::milliseconds max_backoff{30000};
  uint64_t seed = 0;
};

class Dialer : public std::enable_shared_from_this<Dialer> {
 public:
  Dialer(Hub& hub, net::io_context& ioc, std::string url, WsUrl parsed, DialerOptions options);

  void Start();
  // Closes the current connection and stops retrying.
  void Stop();

  const std::string& url() const { return url_; }
  ConnectionState state() const;
  std::string last_error() const;
  uint32_t failed_attempts() const;
  // The last attempt failed because the server's certificate was not trusted.
  bool untrusted() const;
  // The current session (null between attempts).
  std::shared_ptr<WsSession> session() const;
  // Totals over every connection so far, the current one included.
  uint64_t changes_sent() const;
  uint64_t changes_received() const;
  uint64_t duplicates() const;

 private:
  void Attempt();
  void OnClosed(const std::shared_ptr<WsSession>& session, const std::string& reason);
  void Retry();

  Hub& hub_;
  net::io_context& ioc_;
  const std::string url_;
  const WsUrl parsed_;
  DialerOptions options_;
  net::strand<net::io_context::executor_type> strand_;
  net::steady_timer timer_;

  mutable std::mutex mu_;
  ConnectionState state_ = ConnectionState::kConnecting;
  bool stopped_ = false;
  std::string last_error_;
  uint32_t failures_ = 0;
  bool untrusted_ = false;
  std::shared_ptr<WsSession> session_;
  uint64_t sent_done_ = 0, received_done_ = 0, duplicates_done_ = 0;
  std::mt19937_64 rng_;
};

}  // namespace weft::sync
