// The weft-relay binary as a child process for the sync tests, on a loopback port, stopped by its
// PID. Needs WEFT_RELAY_BINARY (the relay's path, set by tests/sync/CMakeLists.txt).
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <catch2/catch.hpp>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

namespace weft::testing {

// A loopback port that was free a moment ago (a child-process relay may restart on it).
inline uint16_t FreePort() {
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::acceptor a(
      ioc, boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));
  return a.local_endpoint().port();
}

class RelayProcess {
 public:
  // Starts `weft-relay --listen 127.0.0.1:PORT --data DATA EXTRA...` and waits for its
  // "listening on" line. With `port` 0 the relay binds a port the kernel picks (port() says
  // which): no race for it with other processes; a relay to be restarted on the same port is
  // given one beforehand (FreePort).
  RelayProcess(const std::string& data, uint16_t port, std::vector<std::string> extra = {}) {
    std::string listen = "127.0.0.1:" + std::to_string(port);
    std::vector<std::string> args = {"weft-relay", "--listen", listen, "--data", data};
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    pid_ = fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      dup2(fds[1], 1);
      close(fds[0]);
      close(fds[1]);
      execv(WEFT_RELAY_BINARY, argv.data());
      _exit(127);
    }
    close(fds[1]);
    std::string line;
    char c;
    while (read(fds[0], &c, 1) == 1 && c != '\n') line += c;
    close(fds[0]);
    INFO(line);
    REQUIRE(line.find("listening on") != std::string::npos);
    // "weft-relay listening on HOST:PORT (node ...)": the port it bound.
    const size_t colon = line.rfind(':', line.find(" ("));
    REQUIRE(colon != std::string::npos);
    port_ = static_cast<uint16_t>(std::atoi(line.c_str() + colon + 1));
    REQUIRE(port_ != 0);
  }
  RelayProcess(const RelayProcess&) = delete;
  RelayProcess& operator=(const RelayProcess&) = delete;
  ~RelayProcess() { Kill(SIGKILL); }
  // The loopback port the relay listens on.
  uint16_t port() const { return port_; }
  // Sends `sig` and reaps the child; returns its wait status.
  int Kill(int sig) {
    if (pid_ <= 0) return 0;
    kill(pid_, sig);
    int st = 0;
    waitpid(pid_, &st, 0);
    pid_ = -1;
    return st;
  }

 private:
  pid_t pid_ = -1;
  uint16_t port_ = 0;
};

}  // namespace weft::testing
