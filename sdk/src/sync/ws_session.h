// WsSession: a Link carried over a Boost.Beast WebSocket, for either side of a connection.
//
// The dialer (sync client, relay peering) calls Connect; the relay's listener hands over an
// accepted stream and its upgrade request to Accept. The WebSocket runs over plain TCP (ws://) or
// over TLS (wss://, sync/tls.h): one variant of two Beast streams, and every piece of session
// logic written once for both (Visit). Each session runs on its own strand with
// one read in flight and a write queue (Beast chat-multi style); the queue is bounded, and a
// peer that lets it overflow is closed as a slow consumer. Frames are binary, one Cap'n Proto
// message each, at most `max_frame_bytes` (a larger one closes the connection with 1009).
//
// Internal to the SDK and the relay (Boost types; not a public header).
// Thread safety: Close and PostToLink may be called from any thread; the rest runs on the strand.
#pragma once

#include <array>
#include <boost/asio.hpp>
#include <boost/beast.hpp>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "sync/hub.h"
#include "sync/link.h"
#include "sync/tls.h"

namespace weft::sync {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;

struct SessionLimits {
  size_t max_frame_bytes = 16u << 20;
  size_t max_queue_bytes = 64u << 20;  // a peer that lets more pile up is a slow consumer
  std::chrono::milliseconds connect_timeout{10000};
  std::chrono::milliseconds handshake_timeout{10000};  // WebSocket handshake, then the Hello
  std::chrono::milliseconds idle_timeout{60000};       // with keep-alive pings
  std::chrono::milliseconds anti_entropy_interval{30000};
};

class WsSession : public std::enable_shared_from_this<WsSession> {
 public:
  using PlainWs = websocket::stream<beast::tcp_stream>;
  using TlsWs = websocket::stream<TlsStream>;
  using ClosedFn = std::function<void(const std::string& reason)>;

  // Dialing side: the session gets a new strand on `ioc`; with `tls` (a client context,
  // MakeClientTlsContext), it speaks wss:// and verifies the server's certificate and host name.
  WsSession(Hub& hub, net::io_context& ioc, LinkConfig config, SessionLimits limits,
            std::shared_ptr<ssl::context> tls = nullptr);
  // Accepting side: `stream` was accepted on a strand (and, for TLS, its handshake is done).
  WsSession(Hub& hub, beast::tcp_stream stream, LinkConfig config, SessionLimits limits);
  WsSession(Hub& hub, TlsStream stream, LinkConfig config, SessionLimits limits);
  ~WsSession();

  // Called once, when the session ends, on the strand.
  void set_on_closed(ClosedFn fn) { on_closed_ = std::move(fn); }

  void Connect(std::string host, std::string port, std::string target);
  void Accept(http::request<http::string_body> request);
  // Closes with `code` (a WebSocket close code) after the queued frames.
  void Close(uint16_t code, std::string reason);
  // Runs `fn` with the link on the strand.
  void PostToLink(std::function<void(Link&)> fn);

  Link& link() { return *link_; }
  const Link& link() const { return *link_; }
  // The TLS handshake failed because the server's certificate (or its host name) was not
  // trusted. Read after the session closed (on_closed).
  bool untrusted() const { return untrusted_; }

 private:
  using Ws = std::variant<PlainWs, TlsWs>;
  WsSession(Hub& hub, Ws ws, LinkConfig config, SessionLimits limits,
            std::shared_ptr<ssl::context> tls);
  // Runs `fn` on the WebSocket stream, whichever it is.
  template <class F>
  decltype(auto) Visit(F&& fn) {
    return std::visit(std::forward<F>(fn), ws_);
  }
  beast::tcp_stream& Tcp();
  net::any_io_executor Executor();
  // Dialing side, once connected: the TLS handshake (wss://), then the WebSocket one.
  void Handshake(const std::string& host, std::string target);
  void HandshakeWebSocket(std::string target);
  void MakeLink(LinkConfig config);
  void Begin();
  void Send(std::string frame);
  void RequestClose(uint16_t code, std::string reason);
  void DoRead();
  void OnRead(beast::error_code ec);
  void DoWrite();
  void OnWritten(beast::error_code ec);
  void DoClose();
  void Finish(const std::string& reason, bool drain = false);
  void Drain();
  void ScheduleTick();
  // Hands the frames read so far to the link (see DoRead).
  void FlushFrames();
  void WakeLink(std::chrono::microseconds delay);
  void SetOptions(bool server);

  Hub& hub_;
  SessionLimits limits_;
  std::shared_ptr<ssl::context> tls_;  // dialing side, wss://
  Ws ws_;
  tcp::resolver resolver_;
  net::steady_timer hello_timer_;
  net::steady_timer tick_timer_;
  net::steady_timer link_timer_;  // LinkTransport::wake
  bool link_timer_armed_ = false;
  std::chrono::steady_clock::time_point link_timer_at_;
  std::vector<std::string> frames_;  // read, not yet handed to the link
  // This session, for LinkTransport::defer (set in Begin; a deferred call finds it gone when the
  // session was destroyed first).
  std::shared_ptr<std::weak_ptr<WsSession>> self_ref_ =
      std::make_shared<std::weak_ptr<WsSession>>();
  size_t frames_bytes_ = 0;
  bool flush_posted_ = false;
  std::unique_ptr<Link> link_;
  beast::flat_buffer buffer_;
  std::deque<std::string> queue_;
  size_t queued_bytes_ = 0;
  bool writing_ = false;
  bool closing_ = false;     // a close was asked for
  bool close_sent_ = false;  // async_close started
  bool finished_ = false;
  bool dropping_ = false;  // closed as a slow consumer: nothing more is queued
  bool counted_ = false;
  bool untrusted_ = false;
  uint16_t close_code_ = 1000;
  std::string close_reason_;
  std::string host_;
  std::chrono::steady_clock::time_point drain_deadline_;
  uint64_t listener_ = 0;
  ClosedFn on_closed_;
};

}  // namespace weft::sync
