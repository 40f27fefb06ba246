// weft-relay: the Weft sync relay (see relay.h and docs/protocol.md).
//
//   weft-relay --listen HOST:PORT --data DIR [--peer ws://HOST:PORT]... [options]
//   weft-relay --config FILE [options]     (settings from FILE; options override it)
//   weft-relay --version
//   weft-relay backup --data DIR --to FILE           (while it serves; see store_backup.h)
//   weft-relay restore --from FILE --data DIR [--force]
//   weft-relay ... --tls-cert CERT.pem --tls-key KEY.pem   (the port speaks only TLS: wss://)
//
// Prints "weft-relay listening on HOST:PORT" once it serves (PORT is the bound one when 0 was
// asked for), and shuts down cleanly on SIGTERM or SIGINT.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "config.h"
#include "relay.h"
#include "store_backup.h"
#include "weft/version.h"

namespace {

void Usage(FILE* out) {
  std::fprintf(
      out,
      "usage: weft-relay [--config FILE] [--listen HOST:PORT] [--data DIR] [options]\n"
      "       weft-relay --version | --help\n"
      "       weft-relay backup ... | restore ...   (weft-relay backup --help)\n"
      "  --config FILE        read settings from FILE: `name = value` lines, # comments;\n"
      "                       every option below is a name there (open = true|false);\n"
      "                       options given here override the file\n"
      "  --listen HOST:PORT   address to serve sync, /metrics and /healthz on\n"
      "                       (default 127.0.0.1:8787; port 0 picks a free one)\n"
      "  --data DIR           the embedded store (default ./weft-data)\n"
      "  --store URL          keep the data in PostgreSQL instead (postgres://...; default\n"
      "                       sqlite: the embedded store in --data); relays may share one\n"
      "  --store-name NAME    this relay's name in a shared PostgreSQL store (default relay)\n"
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
      "  --threads N          network threads, 1 to 64 (default 2)\n"
      "  --durability full|normal   fsync before acknowledging (default; one fsync\n"
      "                       serves the changes stored meanwhile) or survive crashes only\n"
      "  --max-frame BYTES    largest WebSocket frame accepted (default 16 MiB)\n"
      "  --max-batch N        changes per batch sent, 1 to 4096 (default 512)\n"
      "  --max-queue BYTES    per-session send queue before closing a slow consumer\n"
      "  --max-snapshot BYTES largest incoming snapshot (default 512 MiB)\n"
      "  --max-connections N  open connections accepted at once (default 10000)\n"
      "  --snapshot-min-changes N   send a snapshot to a peer lacking N changes or more\n"
      "                       (default 256; 0: only when the log cannot serve it)\n"
      "  --live-interval-us US   send a session live changes at most this often, so\n"
      "                       that changes of a burst share a frame (default 2000)\n"
      "  --handshake-timeout MS, --idle-timeout MS, --anti-entropy MS\n"
      "  --log-format none|text|json   a line per event on stderr (sessions, changes\n"
      "                       received, refusals; never document content): none (default),\n"
      "                       text for people, json for machines\n");
}

int Refuse(const std::string& message) {
  std::fprintf(stderr, "weft-relay: %s\n", message.c_str());
  return 2;
}

// The settings of `config_file` (if any) overridden by `flags`, onto `o`; 0 or the exit status.
int LoadSettings(const std::string& config_file, const std::vector<weft::relay::Setting>& flags,
                 weft::relay::RelayOptions* o) {
  std::vector<weft::relay::Setting> file;
  if (!config_file.empty()) {
    auto read = weft::relay::ReadConfigFile(config_file);
    if (!read.ok()) return Refuse(read.status().message());
    file = std::move(*read);
  }
  auto settings = weft::relay::MergeSettings(std::move(file), flags);
  if (auto s = weft::relay::ApplySettings(settings, o); !s.ok()) return Refuse(s.message());
  return 0;
}

const char kBackupUsage[] =
    "usage: weft-relay backup (--data DIR | --config FILE) --to FILE\n"
    "         a consistent copy of the relay's store, also while it serves\n"
    "       weft-relay restore --from FILE (--data DIR | --config FILE) [--force]\n"
    "         put a backup in place (the relay stopped); --force replaces a store\n";

// `weft-relay backup ...` and `weft-relay restore ...`.
int BackupOrRestore(const std::string& command, int argc, char** argv) {
  std::string config_file, file;
  std::vector<weft::relay::Setting> flags;
  bool force = false;
  const std::string file_flag = command == "backup" ? "--to" : "--from";
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(kBackupUsage, stdout);
      return 0;
    }
    if (a == "--force" && command == "restore") {
      force = true;
      continue;
    }
    if (a != "--data" && a != "--config" && a != file_flag) {
      std::fprintf(stderr, "weft-relay %s: unknown argument %s\n%s", command.c_str(), a.c_str(),
                   kBackupUsage);
      return 2;
    }
    if (i + 1 >= argc) return Refuse(a + " needs a value");
    std::string value = argv[++i];
    if (a == "--data") {
      flags.push_back({"data", value, a, ""});
    } else if (a == "--config") {
      config_file = value;
    } else {
      file = value;
    }
  }
  if (file.empty() || (flags.empty() && config_file.empty())) {
    std::fputs(kBackupUsage, stderr);
    return 2;
  }
  weft::relay::RelayOptions o;
  if (int rc = LoadSettings(config_file, flags, &o); rc != 0) return rc;
  if (o.data_dir.empty()) {
    return Refuse("no data directory: give --data DIR, or data = DIR in " + config_file);
  }
  if (command == "backup") {
    weft::Status s = weft::relay::BackupRelay(o.data_dir, file);
    if (!s.ok()) {
      std::fprintf(stderr, "weft-relay backup: %s\n", s.ToString().c_str());
      return 1;
    }
    std::printf("weft-relay: backed up %s to %s\n", o.data_dir.c_str(), file.c_str());
    return 0;
  }
  weft::Status s = weft::relay::RestoreRelay(file, o.data_dir, force);
  if (!s.ok()) {
    std::fprintf(stderr, "weft-relay restore: %s\n", s.ToString().c_str());
    return 1;
  }
  std::printf("weft-relay: restored %s into %s\n", file.c_str(), o.data_dir.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && (std::string(argv[1]) == "backup" || std::string(argv[1]) == "restore")) {
    return BackupOrRestore(argv[1], argc - 2, argv + 2);
  }
  weft::relay::RelayOptions o;
  o.data_dir = "./weft-data";
  bool print_key = false;
  std::string config_file;
  std::vector<weft::relay::Setting> flags;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    std::string name = a.rfind("--", 0) == 0 ? a.substr(2) : std::string();
    if (a == "--help" || a == "-h") {
      Usage(stdout);
      return 0;
    } else if (a == "--version") {
      std::printf("weft-relay %s (sync protocol %u)\n", weft::ReleaseVersion(),
                  weft::SyncProtocolVersion());
      return 0;
    } else if (a == "--print-key") {
      print_key = true;
    } else if (a == "--config" || weft::relay::IsSetting(name)) {
      std::string value = "true";
      if (!weft::relay::IsSwitch(name)) {
        if (i + 1 >= argc) return Refuse(a + " needs a value");
        value = argv[++i];
      }
      if (a == "--config") {
        config_file = value;
      } else {
        flags.push_back({name, value, a, ""});
      }
    } else {
      std::fprintf(stderr, "weft-relay: unknown argument %s\n", a.c_str());
      Usage(stderr);
      return 2;
    }
  }
  if (int rc = LoadSettings(config_file, flags, &o); rc != 0) return rc;

  if (print_key) {
    auto key = weft::relay::ReadKey(o);
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
              (*relay)->replica().public_key().ToHex().c_str(),
              o.store.empty() ? o.data_dir.c_str() : "postgres");
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
