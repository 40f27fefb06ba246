// WsSession: a Link carried over a Boost.Beast WebSocket, for either side of a connection.
//
// The dialer (sync client, relay peering) calls Connect; the relay's listener hands over an
// accepted socket and its upgrade request to Accept. Each session runs on its own strand with
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
#include <vector>

#include "sync/hub.h"
#include "sync/link.h"

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
  using Stream = websocket::stream<beast::tcp_stream>;
  using ClosedFn = std::function<void(const std::string& reason)>;

  // Dialing side: the session gets a new strand on `ioc`.
  WsSession(Hub& hub, net::io_context& ioc, LinkConfig config, SessionLimits limits);
  // Accepting side: `socket` was accepted on a strand.
  WsSession(Hub& hub, tcp::socket socket, LinkConfig config, SessionLimits limits);
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

 private:
  void MakeLink(LinkConfig config);
  void Begin();
  void Send(std::string frame);
  void RequestClose(uint16_t code, std::string reason);
  void DoRead();
  void DoWrite();
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
  Stream ws_;
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
  uint16_t close_code_ = 1000;
  std::string close_reason_;
  std::string host_;
  std::chrono::steady_clock::time_point drain_deadline_;
  uint64_t listener_ = 0;
  ClosedFn on_closed_;
};

}  // namespace weft::sync
