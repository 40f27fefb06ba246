// A Link over a Beast WebSocket (see ws_session.h).
#include "sync/ws_session.h"

namespace weft::sync {

WsSession::WsSession(Hub& hub, net::io_context& ioc, LinkConfig config, SessionLimits limits,
                     std::shared_ptr<ssl::context> tls)
    : WsSession(hub,
                tls ? Ws(std::in_place_type<TlsWs>, net::make_strand(ioc), *tls)
                    : Ws(std::in_place_type<PlainWs>, net::make_strand(ioc)),
                std::move(config), limits, tls) {}

WsSession::WsSession(Hub& hub, beast::tcp_stream stream, LinkConfig config, SessionLimits limits)
    : WsSession(hub, Ws(std::in_place_type<PlainWs>, std::move(stream)), std::move(config), limits,
                nullptr) {}

WsSession::WsSession(Hub& hub, TlsStream stream, LinkConfig config, SessionLimits limits)
    : WsSession(hub, Ws(std::in_place_type<TlsWs>, std::move(stream)), std::move(config), limits,
                nullptr) {}

WsSession::WsSession(Hub& hub, Ws ws, LinkConfig config, SessionLimits limits,
                     std::shared_ptr<ssl::context> tls)
    : hub_(hub),
      limits_(limits),
      tls_(std::move(tls)),
      ws_(std::move(ws)),
      resolver_(Executor()),
      hello_timer_(Executor()),
      tick_timer_(Executor()),
      link_timer_(Executor()) {
  MakeLink(std::move(config));
}

beast::tcp_stream& WsSession::Tcp() {
  return Visit([](auto& ws) -> beast::tcp_stream& { return beast::get_lowest_layer(ws); });
}

net::any_io_executor WsSession::Executor() {
  return Visit([](auto& ws) -> net::any_io_executor { return ws.get_executor(); });
}

// The Link's transport callbacks run on the strand, from inside the Link.
void WsSession::MakeLink(LinkConfig config) {
  LinkTransport t;
  t.send = [this](std::string f) { Send(std::move(f)); };
  t.close = [this](uint16_t c, std::string r) { RequestClose(c, std::move(r)); };
  t.queued = [this] { return queue_.size(); };
  t.wake = [this](std::chrono::microseconds delay) { WakeLink(delay); };
  t.defer = [ref = self_ref_](std::function<void()> fn) {
    auto s = ref->lock();
    if (!s) return;
    net::post(s->Executor(), [s, fn = std::move(fn)] {
      if (!s->finished_) fn();
    });
  };
  link_ = std::make_unique<Link>(hub_, std::move(config), std::move(t));
}

WsSession::~WsSession() {
  if (listener_) hub_.RemoveListener(listener_);
  if (counted_) --hub_.counters().connections;
}

void WsSession::SetOptions(bool server) {
  websocket::stream_base::timeout t{};
  t.handshake_timeout = limits_.handshake_timeout;
  t.idle_timeout = limits_.idle_timeout;
  t.keep_alive_pings = true;
  Visit([&](auto& ws) {
    ws.set_option(t);
    ws.read_message_max(limits_.max_frame_bytes);
    ws.binary(true);
    if (server) {
      ws.set_option(websocket::stream_base::decorator(
          [](websocket::response_type& res) { res.set(http::field::server, "weft-relay/0.1"); }));
    } else {
      ws.set_option(websocket::stream_base::decorator(
          [](websocket::request_type& req) { req.set(http::field::user_agent, "weft-sdk/0.1"); }));
    }
  });
  // Small frames (one live change, an Ack) go out at once: Nagle's algorithm would hold them
  // back behind an unacknowledged segment (tens of milliseconds with delayed ACKs).
  beast::error_code ignored;
  Tcp().socket().set_option(tcp::no_delay(true), ignored);
}

void WsSession::Connect(std::string host, std::string port, std::string target) {
  host_ = host + ":" + port;
  auto self = shared_from_this();
  resolver_.async_resolve(host, port,
                          [self, host, target = std::move(target)](beast::error_code ec,
                                                                   tcp::resolver::results_type r) {
                            if (ec) return self->Finish("resolve: " + ec.message());
                            if (self->closing_) return self->Finish(self->close_reason_);
                            self->Tcp().expires_after(self->limits_.connect_timeout);
                            self->Tcp().async_connect(
                                r,
                                [self, host, target](beast::error_code ec, const tcp::endpoint&) {
                                  if (ec) return self->Finish("connect: " + ec.message());
                                  self->Handshake(host, target);
                                });
                          });
}

void WsSession::Handshake(const std::string& host, std::string target) {
  auto* tls = std::get_if<TlsWs>(&ws_);
  if (!tls) {
    Tcp().expires_never();
    return HandshakeWebSocket(std::move(target));
  }
  Status prepared = PrepareClientHandshake(tls->next_layer(), host);
  if (!prepared.ok()) return Finish(prepared.message());
  Tcp().expires_after(limits_.handshake_timeout);
  auto self = shared_from_this();
  tls->next_layer().async_handshake(
      ssl::stream_base::client, [self, target = std::move(target)](beast::error_code ec) {
        if (ec) {
          auto& stream = std::get<TlsWs>(self->ws_).next_layer();
          return self->Finish(DescribeHandshakeFailure(stream, ec, &self->untrusted_));
        }
        self->Tcp().expires_never();
        self->HandshakeWebSocket(target);
      });
}

void WsSession::HandshakeWebSocket(std::string target) {
  SetOptions(false);
  auto self = shared_from_this();
  Visit([&](auto& ws) {
    ws.async_handshake(host_, target, [self](beast::error_code ec) {
      if (ec) return self->Finish("WebSocket handshake: " + ec.message());
      self->Begin();
    });
  });
}

void WsSession::Accept(http::request<http::string_body> request) {
  Tcp().expires_never();
  SetOptions(true);
  auto self = shared_from_this();
  Visit([&](auto& ws) {
    ws.async_accept(request, [self](beast::error_code ec) {
      if (ec) return self->Finish("WebSocket accept: " + ec.message());
      self->Begin();
      // The dialer speaks first; without a Hello in time, the session is closed.
      self->hello_timer_.expires_after(self->limits_.handshake_timeout);
      std::weak_ptr<WsSession> weak = self;
      self->hello_timer_.async_wait([weak](beast::error_code ec) {
        if (ec) return;
        if (auto s = weak.lock()) s->link_->OnHelloTimeout();
      });
    });
  });
}

void WsSession::Begin() {
  *self_ref_ = weak_from_this();
  counted_ = true;
  ++hub_.counters().connections;
  std::weak_ptr<WsSession> weak = weak_from_this();
  listener_ = hub_.AddListener([weak](const HubEvent& e) {
    if (auto s = weak.lock()) {
      net::post(s->Executor(), [s, e] {
        if (!s->finished_) s->link_->OnEvent(e);
      });
    }
  });
  link_->set_listener_id(listener_);
  link_->Start();
  ScheduleTick();
  DoRead();
}

void WsSession::ScheduleTick() {
  if (limits_.anti_entropy_interval.count() <= 0) return;
  tick_timer_.expires_after(limits_.anti_entropy_interval);
  std::weak_ptr<WsSession> weak = weak_from_this();
  tick_timer_.async_wait([weak](beast::error_code ec) {
    if (ec) return;
    if (auto s = weak.lock()) {
      if (s->finished_) return;
      s->link_->OnTick();
      s->ScheduleTick();
    }
  });
}

void WsSession::WakeLink(std::chrono::microseconds delay) {
  auto at = std::chrono::steady_clock::now() + delay;
  if (link_timer_armed_ && link_timer_at_ <= at) return;  // due sooner already
  link_timer_armed_ = true;
  link_timer_at_ = at;
  link_timer_.expires_at(at);  // cancels a later wait
  std::weak_ptr<WsSession> weak = weak_from_this();
  link_timer_.async_wait([weak, at](beast::error_code ec) {
    auto s = weak.lock();
    if (!s || ec || s->finished_ || s->link_timer_at_ != at) return;
    s->link_timer_armed_ = false;
    s->link_->OnTimer();
  });
}

void WsSession::FlushFrames() {
  flush_posted_ = false;
  if (frames_.empty() || finished_) return;
  std::vector<std::string> frames = std::move(frames_);
  frames_.clear();
  frames_bytes_ = 0;
  link_->OnFrames(frames);
}

void WsSession::DoRead() {
  auto self = shared_from_this();
  Visit([&](auto& ws) {
    ws.async_read(buffer_, [self](beast::error_code ec, size_t) { self->OnRead(ec); });
  });
}

void WsSession::OnRead(beast::error_code ec) {
  if (ec) {
    std::string reason;
    if (ec == websocket::error::closed) {
      auto r = Visit([](auto& ws) { return ws.reason(); });
      reason = "closed by the peer (" + std::to_string(r.code) + ")";
      if (!r.reason.empty()) reason += ": " + std::string(r.reason.c_str());
    } else if (ec == websocket::error::message_too_big) {
      reason = "a frame over " + std::to_string(limits_.max_frame_bytes) + " bytes";
    } else {
      reason = ec.message();
    }
    // What arrived before the close still counts.
    FlushFrames();
    // Read what the peer still sends before closing, so that it gets our close frame rather
    // than a reset (closing a socket with unread input resets the connection).
    return Finish(reason, /*drain=*/true);
  }
  // Frames that arrive together are handled together (changes of one document stored in one
  // transaction): this one waits for the frames the next reads find already received, until
  // the posted flush runs.
  frames_bytes_ += buffer_.size();
  frames_.push_back(beast::buffers_to_string(buffer_.data()));
  buffer_.consume(buffer_.size());
  if (frames_bytes_ >= limits_.max_frame_bytes) {
    FlushFrames();
  } else if (!flush_posted_) {
    flush_posted_ = true;
    net::post(Executor(), [self = shared_from_this()] { self->FlushFrames(); });
  }
  if (!finished_) DoRead();
}

void WsSession::Send(std::string frame) {
  if (finished_ || close_sent_ || dropping_) return;
  queued_bytes_ += frame.size();
  queue_.push_back(std::move(frame));
  if (queued_bytes_ > limits_.max_queue_bytes && !closing_) {
    ++hub_.counters().slow_consumers;
    // Drop what has not started to be written: a slow consumer must not grow memory.
    while (queue_.size() > (writing_ ? 1u : 0u)) {
      queued_bytes_ -= queue_.back().size();
      queue_.pop_back();
    }
    dropping_ = true;
    closing_ = true;
    close_code_ = 1008;
    close_reason_ =
        "slow consumer: send queue over " + std::to_string(limits_.max_queue_bytes) + " bytes";
  }
  if (!writing_) DoWrite();
}

void WsSession::RequestClose(uint16_t code, std::string reason) {
  if (closing_) return;
  closing_ = true;
  close_code_ = code;
  close_reason_ = std::move(reason);
  if (!writing_) DoWrite();
}

void WsSession::Close(uint16_t code, std::string reason) {
  auto self = shared_from_this();
  net::post(Executor(), [self, code, reason = std::move(reason)]() mutable {
    if (self->finished_) return;
    if (!self->counted_) {
      // Not open yet (resolving or connecting): stop it.
      self->closing_ = true;
      self->close_reason_ = reason;
      self->resolver_.cancel();
      beast::error_code ignored;
      self->Tcp().socket().close(ignored);
      return;
    }
    self->link_->OnClosed(reason);
    self->RequestClose(code, std::move(reason));
  });
}

void WsSession::PostToLink(std::function<void(Link&)> fn) {
  auto self = shared_from_this();
  net::post(Executor(), [self, fn = std::move(fn)] {
    if (!self->finished_) fn(*self->link_);
  });
}

void WsSession::DoWrite() {
  if (finished_) return;
  if (queue_.empty()) {
    if (closing_) DoClose();
    return;
  }
  writing_ = true;
  auto self = shared_from_this();
  Visit([&](auto& ws) {
    ws.async_write(net::buffer(queue_.front()),
                   [self](beast::error_code ec, size_t) { self->OnWritten(ec); });
  });
}

void WsSession::OnWritten(beast::error_code ec) {
  writing_ = false;
  if (!queue_.empty()) {
    queued_bytes_ -= queue_.front().size();
    queue_.pop_front();
  }
  if (ec) return Finish("write: " + ec.message());
  if (!closing_) link_->OnWritable();
  if (!writing_) DoWrite();
}

void WsSession::DoClose() {
  if (close_sent_ || finished_) return;
  close_sent_ = true;
  auto self = shared_from_this();
  websocket::close_reason why(static_cast<websocket::close_code>(close_code_), close_reason_);
  Visit([&](auto& ws) {
    ws.async_close(why, [self](beast::error_code) { self->Finish(self->close_reason_); });
  });
}

void WsSession::Drain() {
  auto& s = Tcp();
  s.expires_at(drain_deadline_);
  auto buf = std::make_shared<std::array<char, 16384>>();
  auto self = shared_from_this();
  s.async_read_some(net::buffer(*buf), [self, buf](beast::error_code ec, size_t) {
    if (!ec) return self->Drain();
    beast::error_code ignored;
    self->Tcp().socket().close(ignored);
  });
}

void WsSession::Finish(const std::string& reason, bool drain) {
  if (finished_) return;
  finished_ = true;
  link_->OnClosed(reason);
  if (listener_) {
    hub_.RemoveListener(listener_);
    listener_ = 0;
  }
  if (counted_) {
    counted_ = false;
    --hub_.counters().connections;
  }
  hello_timer_.cancel();
  tick_timer_.cancel();
  link_timer_.cancel();
  beast::error_code ignored;
  if (drain && Tcp().socket().is_open()) {
    Tcp().socket().shutdown(tcp::socket::shutdown_send, ignored);
    drain_deadline_ = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    Drain();
  } else {
    Tcp().socket().shutdown(tcp::socket::shutdown_both, ignored);
    Tcp().socket().close(ignored);
  }
  if (on_closed_) {
    ClosedFn fn = std::move(on_closed_);
    on_closed_ = nullptr;
    fn(link_->last_error().empty() ? reason : link_->last_error());
  }
}

}  // namespace weft::sync
