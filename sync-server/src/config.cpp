// See config.h.
#include "config.h"

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <utility>
#include <vector>

namespace weft::relay {
namespace {

enum class Kind { kValue, kList, kSwitch };

// Applies a value; returns "" or what is wrong with it ("takes a number, not \"x\"").
using Apply = std::function<std::string(const std::string& value, const std::string& base_dir,
                                        RelayOptions* o)>;

struct Spec {
  Kind kind;
  Apply apply;
};

std::optional<uint64_t> Number(const std::string& s) {
  if (s.empty() || s[0] == '-' || s[0] == '+') return std::nullopt;
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(s.c_str(), &end, 10);
  if (errno != 0 || *end != '\0') return std::nullopt;
  return v;
}

std::string Quoted(const std::string& s) {
  return "\"" + s + "\"";
}

// A path: relative ones are taken from `base_dir` (a config file's directory) when set.
std::string PathOf(const std::string& value, const std::string& base_dir) {
  std::filesystem::path p(value);
  if (p.is_absolute() || base_dir.empty()) return value;
  return (std::filesystem::path(base_dir) / p).string();
}

// A number in [lo, hi] stored through `set`.
template <class Set>
Spec NumberIn(uint64_t lo, uint64_t hi, Set set) {
  return {Kind::kValue, [lo, hi, set](const std::string& v, const std::string&, RelayOptions* o) {
            auto n = Number(v);
            if (!n || *n < lo || *n > hi) {
              return "takes a number from " + std::to_string(lo) + " to " + std::to_string(hi) +
                     ", not " + Quoted(v);
            }
            set(o, *n);
            return std::string();
          }};
}

// One of a few words, each storing its value in `field`.
template <class T>
Spec OneOf(std::vector<std::pair<std::string, T>> words, T RelayOptions::*field,
           Kind kind = Kind::kValue) {
  return {kind, [words, field](const std::string& v, const std::string&, RelayOptions* o) {
            std::string names;
            for (size_t i = 0; i < words.size(); ++i) {
              if (words[i].first == v) {
                o->*field = words[i].second;
                return std::string();
              }
              names += (i == 0 ? "" : i + 1 == words.size() ? " or " : ", ") + words[i].first;
            }
            return "takes " + names + ", not " + Quoted(v);
          }};
}

Spec PathSetting(std::string RelayOptions::*field) {
  return {Kind::kValue, [field](const std::string& v, const std::string& base, RelayOptions* o) {
            o->*field = PathOf(v, base);
            return std::string();
          }};
}

Spec KeySetting(bool list) {
  return {list ? Kind::kList : Kind::kValue,
          [list](const std::string& v, const std::string&, RelayOptions* o) {
            auto key = PublicKey::FromHex(v);
            if (!key) return "takes a public key (64 hex characters), not " + Quoted(v);
            if (list) {
              o->trusted_relays.push_back(*key);
            } else {
              o->admission_key = *key;
            }
            return std::string();
          }};
}

constexpr uint64_t kMaxMs = 24ull * 3600 * 1000;  // a day, for every timeout and interval

const std::map<std::string, Spec>& Specs() {
  using ms = std::chrono::milliseconds;
  static const std::map<std::string, Spec> specs = {
      {"listen",
       {Kind::kValue,
        [](const std::string& v, const std::string&, RelayOptions* o) {
          size_t colon = v.rfind(':');
          std::optional<uint64_t> port;
          if (colon != std::string::npos) port = Number(v.substr(colon + 1));
          if (!port || *port > 65535) return "takes HOST:PORT, not " + Quoted(v);
          std::string host = v.substr(0, colon);
          if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
            host = host.substr(1, host.size() - 2);
          }
          o->listen_host = host.empty() ? "127.0.0.1" : host;
          o->listen_port = static_cast<uint16_t>(*port);
          return std::string();
        }}},
      {"data", PathSetting(&RelayOptions::data_dir)},
      {"store",
       {Kind::kValue,
        [](const std::string& v, const std::string&, RelayOptions* o) {
          if (v == "sqlite") {
            o->store.clear();
            return std::string();
          }
          if (v.rfind("postgres://", 0) != 0 && v.rfind("postgresql://", 0) != 0) {
            return "takes sqlite or a postgres:// URL, not " + Quoted(v);
          }
          o->store = v;
          return std::string();
        }}},
      {"store-name",
       {Kind::kValue,
        [](const std::string& v, const std::string&, RelayOptions* o) {
          if (v.empty() || v.size() > 200) return std::string("takes a name of 1 to 200 bytes");
          o->store_name = v;
          return std::string();
        }}},
      {"peer",
       {Kind::kList,
        [](const std::string& v, const std::string&, RelayOptions* o) {
          if (v.rfind("ws://", 0) != 0 && v.rfind("wss://", 0) != 0) {
            return "takes a ws:// or wss:// URL, not " + Quoted(v);
          }
          o->peers.push_back(v);
          return std::string();
        }}},
      {"trust-relay", KeySetting(true)},
      {"admission-key", KeySetting(false)},
      {"open", OneOf<bool>({{"true", true}, {"false", false}}, &RelayOptions::open, Kind::kSwitch)},
      {"tls-cert", PathSetting(&RelayOptions::tls_cert_file)},
      {"tls-key", PathSetting(&RelayOptions::tls_key_file)},
      {"ca", PathSetting(&RelayOptions::tls_ca_file)},
      {"threads", NumberIn(1, 64, [](RelayOptions* o, uint64_t n) { o->threads = int(n); })},
      {"durability",
       OneOf<Durability>({{"full", Durability::kFull}, {"normal", Durability::kNormal}},
                         &RelayOptions::durability)},
      {"max-frame",
       NumberIn(1024, 1ull << 30, [](RelayOptions* o, uint64_t n) { o->max_frame_bytes = n; })},
      {"max-batch",
       NumberIn(1, 4096, [](RelayOptions* o, uint64_t n) { o->max_batch_changes = n; })},
      {"max-queue", NumberIn(1024, 1ull << 34,
                             [](RelayOptions* o, uint64_t n) { o->max_send_queue_bytes = n; })},
      {"max-snapshot",
       NumberIn(1024, 1ull << 34, [](RelayOptions* o, uint64_t n) { o->max_snapshot_bytes = n; })},
      {"max-connections",
       NumberIn(1, 1'000'000, [](RelayOptions* o, uint64_t n) { o->max_connections = n; })},
      {"snapshot-min-changes",
       NumberIn(0, 1ull << 32, [](RelayOptions* o, uint64_t n) { o->snapshot_min_changes = n; })},
      {"live-interval-us", NumberIn(0, 1'000'000,
                                    [](RelayOptions* o, uint64_t n) {
                                      o->live_interval = std::chrono::microseconds(n);
                                    })},
      {"handshake-timeout",
       NumberIn(1, kMaxMs, [](RelayOptions* o, uint64_t n) { o->handshake_timeout = ms(n); })},
      {"idle-timeout",
       NumberIn(1, kMaxMs, [](RelayOptions* o, uint64_t n) { o->idle_timeout = ms(n); })},
      {"anti-entropy",
       NumberIn(1, kMaxMs, [](RelayOptions* o, uint64_t n) { o->anti_entropy_interval = ms(n); })},
      {"log-format",
       OneOf<LogFormat>(
           {{"none", LogFormat::kNone}, {"text", LogFormat::kText}, {"json", LogFormat::kJson}},
           &RelayOptions::log_format)},
  };
  return specs;
}

std::string Trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

}  // namespace

bool IsSetting(const std::string& name) {
  return Specs().count(name) > 0;
}

bool IsSwitch(const std::string& name) {
  auto it = Specs().find(name);
  return it != Specs().end() && it->second.kind == Kind::kSwitch;
}

Result<std::vector<Setting>> ReadConfigFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::IOError("cannot read the configuration file " + path);
  std::string base = std::filesystem::path(path).parent_path().string();
  if (base.empty()) base = ".";
  std::vector<Setting> out;
  std::map<std::string, size_t> first_line;
  std::string line;
  for (size_t n = 1; std::getline(in, line); ++n) {
    std::string where = path + ":" + std::to_string(n);
    // A comment: the whole line, or from " #" (or a tab before the #) on.
    for (size_t i = 1; i < line.size(); ++i) {
      if (line[i] == '#' && (line[i - 1] == ' ' || line[i - 1] == '\t')) {
        line.resize(i);
        break;
      }
    }
    std::string t = Trim(line);
    if (t.empty() || t[0] == '#') continue;
    size_t eq = t.find('=');
    if (eq == std::string::npos) {
      return Status::InvalidArgument(where + ": expected `name = value`, not " + Quoted(t));
    }
    std::string name = Trim(t.substr(0, eq));
    std::string value = Trim(t.substr(eq + 1));
    auto it = Specs().find(name);
    if (it == Specs().end()) {
      return Status::InvalidArgument(where + ": unknown setting " + Quoted(name) +
                                     " (see weft-relay --help)");
    }
    if (value.empty()) return Status::InvalidArgument(where + ": " + name + " needs a value");
    if (it->second.kind != Kind::kList) {
      auto [f, fresh] = first_line.emplace(name, n);
      if (!fresh) {
        return Status::InvalidArgument(where + ": " + name + " is set twice (first on line " +
                                       std::to_string(f->second) + ")");
      }
    }
    out.push_back({name, value, where, base});
  }
  if (in.bad()) return Status::IOError("cannot read the configuration file " + path);
  return out;
}

std::vector<Setting> MergeSettings(std::vector<Setting> file, const std::vector<Setting>& flags) {
  for (const auto& f : flags) {
    auto it = Specs().find(f.name);
    if (it == Specs().end() || it->second.kind != Kind::kList) continue;
    std::erase_if(file, [&](const Setting& s) { return s.name == f.name; });
  }
  file.insert(file.end(), flags.begin(), flags.end());
  return file;
}

Status ApplySettings(const std::vector<Setting>& settings, RelayOptions* options) {
  for (const auto& s : settings) {
    auto it = Specs().find(s.name);
    if (it == Specs().end()) {
      return Status::InvalidArgument(s.where + ": unknown setting " + Quoted(s.name));
    }
    std::string error = it->second.apply(s.value, s.base_dir, options);
    if (!error.empty()) return Status::InvalidArgument(s.where + ": " + s.name + " " + error);
  }
  return Status::Ok();
}

}  // namespace weft::relay
