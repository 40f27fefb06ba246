// Outgoing connections with reconnection (see dialer.h).
#include "sync/dialer.h"

#include <algorithm>

namespace weft::sync {

Result<WsUrl> ParseWsUrl(std::string_view url) {
  constexpr std::string_view kPlain = "ws://", kTls = "wss://";
  WsUrl out;
  std::string_view rest;
  if (url.substr(0, kPlain.size()) == kPlain) {
    rest = url.substr(kPlain.size());
  } else if (url.substr(0, kTls.size()) == kTls) {
    rest = url.substr(kTls.size());
    out.tls = true;
  } else {
    return Status::InvalidArgument("a peer URL starts with ws:// or wss:// (got \"" +
                                   std::string(url) + "\")");
  }
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  out.target = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (authority.empty()) return Status::InvalidArgument("a peer URL needs a host");
  std::string_view host = authority, port;
  if (authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return Status::InvalidArgument("bad IPv6 host in URL");
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return Status::InvalidArgument("bad port in URL");
      port = after.substr(1);
    }
  } else if (size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (host.empty()) return Status::InvalidArgument("a peer URL needs a host");
  if (port.empty()) port = out.tls ? "443" : "80";
  if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string_view::npos ||
      std::stoul(std::string(port)) > 65535 || std::stoul(std::string(port)) == 0) {
    return Status::InvalidArgument("bad port in URL \"" + std::string(url) + "\"");
  }
  out.host = std::string(host);
  out.port = std::string(port);
  return out;
}

Dialer::Dialer(Hub& hub, net::io_context& ioc, std::string url, WsUrl parsed, DialerOptions options)
    : hub_(hub),
      ioc_(ioc),
      url_(std::move(url)),
      parsed_(std::move(parsed)),
      options_(std::move(options)),
      strand_(net::make_strand(ioc)),
      timer_(strand_) {
  options_.link.dialer = true;
  if (options_.link.audience.empty()) options_.link.audience = url_;  // what both sides sign
  uint64_t seed = options_.seed;
  if (seed == 0)
    seed = (static_cast<uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}();
  rng_.seed(seed);
}

void Dialer::Start() {
  net::post(strand_, [self = shared_from_this()] { self->Attempt(); });
}

void Dialer::Stop() {
  std::shared_ptr<WsSession> s;
  {
    std::lock_guard lock(mu_);
    stopped_ = true;
    state_ = ConnectionState::kStopped;
    s = session_;
  }
  net::post(strand_, [self = shared_from_this()] { self->timer_.cancel(); });
  if (s) s->Close(1001, "going away");
}

void Dialer::Attempt() {
  std::shared_ptr<WsSession> s;
  {
    std::lock_guard lock(mu_);
    if (stopped_) return;
    if (parsed_.tls && !options_.tls) {
      // Never a plain connection for a wss:// URL.
      stopped_ = true;
      state_ = ConnectionState::kStopped;
      last_error_ = "TLS: no client context for " + url_;
      return;
    }
    state_ = ConnectionState::kConnecting;
    s = std::make_shared<WsSession>(hub_, ioc_, options_.link, options_.limits,
                                    parsed_.tls ? options_.tls : nullptr);
    session_ = s;
  }
  std::weak_ptr<Dialer> weak = weak_from_this();
  std::weak_ptr<WsSession> ws = s;
  s->set_on_closed([weak, ws](const std::string& reason) {
    auto self = weak.lock();
    auto session = ws.lock();
    if (!self || !session) return;
    net::post(self->strand_, [self, session, reason] { self->OnClosed(session, reason); });
  });
  s->Connect(parsed_.host, parsed_.port, parsed_.target);
}

void Dialer::OnClosed(const std::shared_ptr<WsSession>& session, const std::string& reason) {
  {
    std::lock_guard lock(mu_);
    if (session_ != session) return;
    const Link& link = session->link();
    sent_done_ += link.changes_sent();
    received_done_ += link.changes_received();
    duplicates_done_ += link.duplicates();
    bool was_up = link.peer().valid();
    session_.reset();
    last_error_ = reason.empty() ? "connection closed" : reason;
    untrusted_ = session->untrusted();
    if (stopped_) return;
    failures_ = was_up && !link.refused() ? 0 : failures_ + 1;
    state_ = ConnectionState::kBackoff;
  }
  Retry();
}

void Dialer::Retry() {
  uint32_t n;
  {
    std::lock_guard lock(mu_);
    n = std::min<uint32_t>(failures_, 20);
  }
  auto base = options_.initial_backoff.count();
  auto cap = std::max<int64_t>(options_.max_backoff.count(), 1);
  int64_t delay = std::min<int64_t>(cap, base * (int64_t{1} << std::min<uint32_t>(n, 16)));
  // Jitter into [delay / 2, delay] so that many clients do not retry in step.
  int64_t half = delay / 2;
  int64_t jittered =
      half + (delay - half > 0 ? static_cast<int64_t>(rng_() % (delay - half + 1)) : 0);
  timer_.expires_after(std::chrono::milliseconds(jittered));
  timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (!ec) self->Attempt();
  });
}

ConnectionState Dialer::state() const {
  std::lock_guard lock(mu_);
  if (state_ == ConnectionState::kConnecting && session_ && session_->link().ready()) {
    return ConnectionState::kConnected;
  }
  return state_;
}
std::string Dialer::last_error() const {
  std::lock_guard lock(mu_);
  return last_error_;
}
uint32_t Dialer::failed_attempts() const {
  std::lock_guard lock(mu_);
  return failures_;
}
bool Dialer::untrusted() const {
  std::lock_guard lock(mu_);
  return untrusted_;
}
std::shared_ptr<WsSession> Dialer::session() const {
  std::lock_guard lock(mu_);
  return session_;
}
uint64_t Dialer::changes_sent() const {
  std::lock_guard lock(mu_);
  return sent_done_ + (session_ ? session_->link().changes_sent() : 0);
}
uint64_t Dialer::changes_received() const {
  std::lock_guard lock(mu_);
  return received_done_ + (session_ ? session_->link().changes_received() : 0);
}
uint64_t Dialer::duplicates() const {
  std::lock_guard lock(mu_);
  return duplicates_done_ + (session_ ? session_->link().duplicates() : 0);
}

}  // namespace weft::sync
