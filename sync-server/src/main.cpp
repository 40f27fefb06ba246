// weft-relay: the Weft sync relay (see relay.h and docs/protocol.md).
//
//   weft-relay --listen HOST:PORT --data DIR [--peer ws://HOST:PORT]... [options]
//   weft-relay ... --tls-cert CERT.pem --tls-key KEY.pem   (the port speaks only TLS: wss://)
//
// Prints "weft-relay listening on HOST:PORT" once it serves (PORT is the bound one when 0 was
// asked for), and shuts down cleanly on SIGTERM or SIGINT.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "relay.h"

namespace {

void Usage(FILE* out) {
  std::fprintf(
      out,
      "usage: weft-relay [--listen HOST:PORT] [--data DIR] [--peer ws://HOST:PORT]...\n"
      "  --listen HOST:PORT   address to serve sync, /metrics and /healthz on\n"
      "                       (default 127.0.0.1:8787; port 0 picks a free one)\n"
      "  --data DIR           the embedded store (default ./weft-data)\n"
      "  --print-key          print the relay's public key (its identity) and exit\n"
      "  --trust-relay KEY    a relay of this deployment (its public key): it reads every\n"
      "                       document and forwards any author's changes (repeatable)\n"
      "  --admission-key KEY  admit only devices with a token signed by KEY\n"
      "                       (weft --db ISSUER issue-token DEVICE_KEY)\n"
      "  --open               serve every document to every device, without access\n"
      "                       checks: for local experiments only\n"
      "  --peer URL           another relay to sync with (repeatable; ws:// or wss://)\n"
      "  --tls-cert FILE, --tls-key FILE   serve TLS only (wss://, https:// for /metrics\n"
      "                       and /healthz): certificate chain and private key, PEM\n"
      "  --ca FILE            wss:// peers must chain to these certificates (PEM;\n"
      "                       default: the system's CAs)\n"
      "  --threads N          network threads (default 2)\n"
      "  --durability full|normal   fsync before acknowledging (default; one fsync\n"
      "                       serves the changes stored meanwhile) or survive crashes only\n"
      "  --max-frame BYTES    largest WebSocket frame accepted (default 16 MiB)\n"
      "  --max-batch N        changes per batch sent (default 512)\n"
      "  --max-queue BYTES    per-session send queue before closing a slow consumer\n"
      "  --max-snapshot BYTES largest incoming snapshot (default 512 MiB)\n"
      "  --snapshot-min-changes N   send a snapshot to a peer lacking N changes or more\n"
      "                       (default 256; 0: only when the log cannot serve it)\n"
      "  --live-interval-us US   send a session live changes at most this often, so\n"
      "                       that changes of a burst share a frame (default 2000)\n"
      "  --handshake-timeout MS, --idle-timeout MS, --anti-entropy MS\n");
}

bool ParseNumber(const char* s, uint64_t* out) {
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0') return false;
  *out = v;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  weft::relay::RelayOptions o;
  o.data_dir = "./weft-data";
  bool print_key = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const char* what) -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "weft-relay: %s needs a value\n", what);
        std::exit(2);
      }
      return argv[++i];
    };
    auto number = [&](const char* what) -> uint64_t {
      uint64_t v = 0;
      if (!ParseNumber(value(what), &v)) {
        std::fprintf(stderr, "weft-relay: %s takes a number\n", what);
        std::exit(2);
      }
      return v;
    };
    if (a == "--help" || a == "-h") {
      Usage(stdout);
      return 0;
    } else if (a == "--listen") {
      std::string l = value("--listen");
      size_t colon = l.rfind(':');
      uint64_t port = 0;
      if (colon == std::string::npos || !ParseNumber(l.c_str() + colon + 1, &port) ||
          port > 65535) {
        std::fprintf(stderr, "weft-relay: --listen takes HOST:PORT\n");
        return 2;
      }
      std::string host = l.substr(0, colon);
      if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
      }
      o.listen_host = host.empty() ? "127.0.0.1" : host;
      o.listen_port = static_cast<uint16_t>(port);
    } else if (a == "--data") {
      o.data_dir = value("--data");
    } else if (a == "--print-key") {
      print_key = true;
    } else if (a == "--peer") {
      o.peers.push_back(value("--peer"));
    } else if (a == "--trust-relay" || a == "--admission-key") {
      std::string hex = value(a.c_str());
      auto key = weft::PublicKey::FromHex(hex);
      if (!key) {
        std::fprintf(stderr, "weft-relay: %s takes a public key (64 hex characters), not %s\n",
                     a.c_str(), hex.c_str());
        return 2;
      }
      if (a == "--trust-relay") {
        o.trusted_relays.push_back(*key);
      } else {
        o.admission_key = *key;
      }
    } else if (a == "--open") {
      o.open = true;
    } else if (a == "--tls-cert") {
      o.tls_cert_file = value("--tls-cert");
    } else if (a == "--tls-key") {
      o.tls_key_file = value("--tls-key");
    } else if (a == "--ca") {
      o.tls_ca_file = value("--ca");
    } else if (a == "--threads") {
      o.threads = static_cast<int>(std::min<uint64_t>(number("--threads"), 64));
    } else if (a == "--durability") {
      std::string d = value("--durability");
      if (d == "full") {
        o.durability = weft::Durability::kFull;
      } else if (d == "normal") {
        o.durability = weft::Durability::kNormal;
      } else {
        std::fprintf(stderr, "weft-relay: --durability is full or normal\n");
        return 2;
      }
    } else if (a == "--max-frame") {
      o.max_frame_bytes = number("--max-frame");
    } else if (a == "--max-batch") {
      o.max_batch_changes = std::max<uint64_t>(1, std::min<uint64_t>(number("--max-batch"), 4096));
    } else if (a == "--max-queue") {
      o.max_send_queue_bytes = number("--max-queue");
    } else if (a == "--max-snapshot") {
      o.max_snapshot_bytes = number("--max-snapshot");
    } else if (a == "--snapshot-min-changes") {
      o.snapshot_min_changes = number("--snapshot-min-changes");
    } else if (a == "--live-interval-us") {
      o.live_interval =
          std::chrono::microseconds(std::min<uint64_t>(number("--live-interval-us"), 1'000'000));
    } else if (a == "--handshake-timeout") {
      o.handshake_timeout = std::chrono::milliseconds(number("--handshake-timeout"));
    } else if (a == "--idle-timeout") {
      o.idle_timeout = std::chrono::milliseconds(number("--idle-timeout"));
    } else if (a == "--anti-entropy") {
      o.anti_entropy_interval = std::chrono::milliseconds(number("--anti-entropy"));
    } else {
      std::fprintf(stderr, "weft-relay: unknown argument %s\n", a.c_str());
      Usage(stderr);
      return 2;
    }
  }

  if (print_key) {
    auto key = weft::relay::ReadKey(o.data_dir);
    if (!key.ok()) {
      std::fprintf(stderr, "weft-relay: %s\n", key.status().ToString().c_str());
      return 1;
    }
    std::printf("%s\n", key->ToHex().c_str());
    return 0;
  }

  // Block the signals in every thread; this one waits for them.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  auto relay = weft::relay::Relay::Start(o);
  if (!relay.ok()) {
    std::fprintf(stderr, "weft-relay: %s\n", relay.status().ToString().c_str());
    return 1;
  }
  std::printf("weft-relay listening on %s:%u (node %s, key %s, data %s)\n", o.listen_host.c_str(),
              (*relay)->port(), (*relay)->node_id().ToHex().c_str(),
              (*relay)->replica().public_key().ToHex().c_str(), o.data_dir.c_str());
  if (o.open) {
    std::printf(
        "weft-relay: WARNING: started with --open: every device that connects reads and syncs "
        "every document, whatever its access list says. For local experiments only.\n");
  } else {
    std::printf(
        "weft-relay: secure mode: devices authenticate and get only the documents their "
        "keys may read%s\n",
        o.admission_key ? "; an admission token is required" : "");
  }
  std::fflush(stdout);
  int sig = 0;
  sigwait(&set, &sig);
  std::fprintf(stderr, "weft-relay: %s, shutting down\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
  (*relay)->Stop();
  relay->reset();
  std::fprintf(stderr, "weft-relay: stopped\n");
  return 0;
}
