// weft-sync-bench: the sync path end to end on loopback.
//
// One in-process relay (the weft-relay code, on its embedded SQLite store) and N devices, each
// its own Replica on its own SQLite file with its own SyncClient (and network thread), all
// syncing one shared document. Prints one JSON line per measurement:
//
//   {"bench":"propagation", ...}  every device makes --rate edits a second for --duration
//       seconds; each edit adds "device:seq:send_time" to a set, and every other device's change
//       feed (Replica::Subscribe) records the time from the start of the commit to its arrival:
//       p50/p99/max in milliseconds, and how many of the expected arrivals came.
//   {"bench":"saturation_step", ...}  the same on a fresh relay and fleet at rising rates
//       (--saturation: from --saturation-start, doubling), each step reporting the relay's
//       changes fanned out per second (weft_relay_changes_out_total), until p99 passes 1 s, or
//       arrivals do not all come within 30 s, or the edit drivers cannot keep the rate;
//   {"bench":"saturation", ...}  the highest fan-out rate reached.
//   {"bench":"propagation_security_off"|"propagation_security_on", ...}, then
//       {"bench":"relay_security_ratio", ...}: --security-rounds, the same run with security off
//       and on, round after round, and the ratio of their median p99s.
//   {"bench":"bootstrap", ...}  the automerge-paper trace in a relay's log (replayed 260 patches
//       a transaction by a writer device); a new device's time from AddPeer to holding the whole
//       text (a snapshot, then the log after it), with security off (an --open relay, a public
//       document) and with every check on (an owned document: signed changes, a sealed snapshot
//       checked by the device), --bootstrap-rounds devices each (5), alternating; then
//       {"bench":"bootstrap_security_ratio", ...}, the median on over the median off. The same
//       for the whole log with no snapshot (a relay that serves none), owned ("owned_log") and
//       end-to-end encrypted ("e2e_log": every change decrypted on the device), and end-to-end
//       encrypted from the encrypted snapshot the writer sealed and the relay kept ("e2e": the
//       device checks its seal, decrypts it, then the log after it), then
//       {"bench":"bootstrap_e2e_ratio", ...}, the medians e2e over on (snapshots both) and
//       e2e_log over owned_log.
//
// Usage: weft-sync-bench [--devices N] [--rate EDITS_PER_S] [--duration S] [--warmup S]
//                        [--saturation] [--saturation-start EDITS_PER_S] [--steps N]
//                        [--step-duration S] [--no-bootstrap] [--bootstrap-rounds N]
//                        [--relay-durability full|normal] [--relay-threads N] [--trace FILE]
//                        [--live-interval-us US] [--wire-devices] [--open-relay] [--owned]
//                        [--wire-threads N] [--security-rounds N]
// Exit status: 0; 1 when a measurement could not run (the JSON line says why) or the propagation
// run missed arrivals; 2 on usage.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "drive.h"
#include "relay.h"
#include "temp_dir.h"
#include "trace.h"
#include "weft/replica.h"
#include "weft/sync.h"
#include "wire_fleet.h"

namespace {

using namespace weft;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using bench::DriveEdits;
using bench::Driven;
using bench::NowNs;
using bench::Percentile;

struct Flags {
  int devices = 100;
  double rate = 10;  // edits per second per device
  double duration_s = 10;
  double warmup_s = 2;
  bool saturation = false;
  int steps = 6;
  double step_duration_s = 5;
  double saturation_start = 0.5;  // edits per second per device at the first step
  bool bootstrap = true;
  bool wire = false;  // --wire-devices: protocol clients with in-memory documents (wire_fleet.h)
  // --open-relay: the relay serves anyone (weft-relay --open); --owned: with --wire-devices, the
  // shared document is owned by a device that grants every wire device a writer role, and wire
  // devices bind and sign their changes (the relay checks every signature).
  bool open_relay = false;
  bool owned = false;
  // --security-rounds N: with --wire-devices, N rounds of a propagation run with security off
  // (--open-relay, a public document) then on (--owned), each on a fresh relay and fleet, in one
  // process; then the ratio of the median p99s.
  int security_rounds = 0;
  int bootstrap_rounds = 5;  // --bootstrap-rounds: new devices bootstrapped per mode
  int wire_threads = 1;      // --wire-threads: network threads of the wire devices
  Durability relay_durability = Durability::kFull;
  int relay_threads = 2;
  int live_interval_us = relay::RelayOptions{}.live_interval.count();
  std::string trace = std::string(WEFT_TRACES_DIR) + "/automerge-paper.json.gz";
};

std::string Url(const relay::Relay& r) {
  return "ws://127.0.0.1:" + std::to_string(r.port());
}

std::unique_ptr<relay::Relay> StartRelay(const Flags& f, const std::string& dir, bool open = false,
                                         bool snapshots = true) {
  relay::RelayOptions o;
  o.open = open;
  if (!snapshots) o.snapshot_min_changes = SIZE_MAX;  // every bootstrap replays the log
  o.listen_port = 0;
  o.data_dir = dir;
  o.durability = f.relay_durability;
  o.threads = f.relay_threads;
  o.live_interval = std::chrono::microseconds(f.live_interval_us);
  o.max_connections = 100000;
  auto r = relay::Relay::Start(o);
  if (!r.ok()) {
    std::fprintf(stderr, "weft-sync-bench: relay: %s\n", r.status().ToString().c_str());
    std::exit(1);
  }
  return std::move(*r);
}

// The relay's counters over a measurement window.
struct RelayCounters {
  uint64_t out = 0, commits = 0, syncs = 0;
  static RelayCounters Read(relay::Relay& r) {
    return {r.Counter("changes_out_total"), r.Counter("log_commits_total"),
            r.Counter("log_syncs_total")};
  }
};

// One device: a replica on its own file, a sync client, and the arrival times it saw.
struct Device {
  std::unique_ptr<Replica> replica;
  std::unique_ptr<SyncClient> client;
  uint64_t sub = 0;
  std::mutex mu;
  std::vector<double> latencies_ms;  // arrivals of edits sent at or after `measure_from`
  uint64_t arrivals = 0;
};

class Fleet {
 public:
  Fleet(const Flags& f, const std::string& dir, const std::string& url) {
    devices_.reserve(static_cast<size_t>(f.devices));
    for (int i = 0; i < f.devices; ++i) {
      auto d = std::make_unique<Device>();
      ReplicaOptions ro;
      ro.public_documents = true;  // every device writes the shared document
      auto r = Replica::Open(dir + "/device-" + std::to_string(i) + ".db", ro);
      if (!r.ok()) Die("device replica: " + r.status().ToString());
      d->replica = std::move(*r);
      Device* raw = d.get();
      d->sub = d->replica->Subscribe("shared", [this, raw](const ChangeEvent& ev) {
        if (ev.local) return;
        int64_t now = NowNs();
        int64_t from = measure_from_.load(std::memory_order_relaxed);
        std::lock_guard lock(raw->mu);
        for (const auto& p : ev.patches) {
          if (p.type != crdt::Patch::Type::kSetAdd) continue;
          if (!p.element.is<std::string>()) continue;
          const std::string* s = &p.element.as<std::string>();
          size_t colon = s->rfind(':');
          if (colon == std::string::npos) continue;
          int64_t sent = std::strtoll(s->c_str() + colon + 1, nullptr, 10);
          if (sent < from) continue;
          ++raw->arrivals;
          raw->latencies_ms.push_back(static_cast<double>(now - sent) / 1e6);
        }
      });
      SyncOptions so;
      so.documents = {"shared"};
      so.initial_backoff = 50ms;
      so.max_backoff = 1000ms;
      auto c = SyncClient::Create(*d->replica, so);
      if (!c.ok()) Die("sync client: " + c.status().ToString());
      d->client = std::move(*c);
      if (Status s = d->client->AddPeer(url); !s.ok()) Die("add peer: " + s.ToString());
      devices_.push_back(std::move(d));
    }
  }
  ~Fleet() {
    // Stop the clients in parallel: each waits briefly for its close handshake.
    std::vector<std::thread> stops;
    for (auto& d : devices_) {
      stops.emplace_back([&d] { d->client->Stop(std::chrono::milliseconds(200)); });
    }
    for (auto& t : stops) t.join();
    for (auto& d : devices_) d->replica->Unsubscribe(d->sub);
  }

  // Waits until every device holds everything the relay holds of the shared document (the
  // backlog of an earlier run is delivered). False when `limit` passes first.
  bool Quiesce(relay::Relay& relay, std::chrono::seconds limit) {
    auto deadline = Clock::now() + limit;
    while (Clock::now() < deadline) {
      auto target = relay.replica().Version("shared");
      if (!target.ok()) return false;
      bool all = true;
      for (auto& d : devices_) {
        auto v = d->replica->Version("shared");
        if (!v.ok() || !v->Dominates(*target)) {
          all = false;
          break;
        }
      }
      if (all) return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }

  [[noreturn]] static void Die(const std::string& why) {
    std::printf("{\"bench\":\"error\",\"error\":\"%s\"}\n", why.c_str());
    std::exit(1);
  }

  // Waits until every device has the shared document from the relay and is live.
  bool WaitLive(std::chrono::seconds limit) {
    auto deadline = Clock::now() + limit;
    for (auto& d : devices_) {
      while (true) {
        bool live = false;
        for (const auto& p : d->client->Peers()) {
          for (const auto& doc : p.documents) live = live || (doc.doc == "shared" && doc.live);
        }
        if (live && d->replica->HasDocument("shared")) break;
        if (Clock::now() > deadline) return false;
        std::this_thread::sleep_for(10ms);
      }
    }
    return true;
  }

  struct Result {
    uint64_t edits = 0;           // measured edits made
    uint64_t expected = 0;        // edits * (devices - 1)
    uint64_t arrived = 0;         // of those, arrivals seen
    double achieved_rate = 0;     // measured edits per second, all devices
    double fanout_per_s = 0;      // relay changes_out_total per second over the measurement
    double commits_per_sync = 0;  // the relay's group commit: commits per fsync of its log
    void Measure(const RelayCounters& before, const RelayCounters& after, double window_s) {
      fanout_per_s = window_s > 0 ? static_cast<double>(after.out - before.out) / window_s : 0;
      uint64_t syncs = after.syncs - before.syncs;
      commits_per_sync =
          syncs > 0 ? static_cast<double>(after.commits - before.commits) / syncs : 0;
    }
    double p50 = 0, p99 = 0, p999 = 0, max = 0;
    double commit_p50_ms = 0, commit_p99_ms = 0;
  };

  // Every device edits at `rate` a second for warmup + duration; arrivals of edits sent after the
  // warm-up are measured. Then waits (up to `drain`) for the arrivals to complete.
  Result Run(relay::Relay& relay, double rate, double warmup_s, double duration_s,
             std::chrono::seconds drain) {
    for (auto& d : devices_) {
      std::lock_guard lock(d->mu);
      d->latencies_ms.clear();
      d->arrivals = 0;
    }
    const int n = static_cast<int>(devices_.size());
    std::mutex commit_mu;
    std::vector<double> commits_ms;
    RelayCounters before;
    Driven driven = DriveEdits(
        n, rate, warmup_s, duration_s, 4, measure_from_,
        [&] { before = RelayCounters::Read(relay); },
        [&](int i, const std::string& element, int64_t sent) {
          Device& d = *devices_[static_cast<size_t>(i)];
          auto c = d.replica->Transact("shared", [&](Txn& txn) {
            auto set = txn.root().Set("s");
            if (!set.ok()) return set.status();
            return set->Add(Scalar(element));
          });
          if (!c.ok()) Die("edit: " + c.status().ToString());
          if (sent >= measure_from_.load()) {
            std::lock_guard lock(commit_mu);
            commits_ms.push_back(static_cast<double>(NowNs() - sent) / 1e6);
          }
        });
    const RelayCounters after = RelayCounters::Read(relay);
    Result r;
    r.edits = driven.measured;
    r.expected = r.edits * static_cast<uint64_t>(n - 1);
    const double window = driven.window_s;
    r.achieved_rate = window > 0 ? static_cast<double>(r.edits) / window : 0;
    // Drain: wait for the arrivals still in flight.
    auto deadline = Clock::now() + drain;
    while (Clock::now() < deadline) {
      uint64_t got = 0;
      for (auto& d : devices_) {
        std::lock_guard lock(d->mu);
        got += d->arrivals;
      }
      if (got >= r.expected) break;
      std::this_thread::sleep_for(20ms);
    }
    // The fan-out rate counts what the relay sent during the edits (while it kept up).
    r.Measure(before, after, window);
    std::vector<double> all;
    for (auto& d : devices_) {
      std::lock_guard lock(d->mu);
      r.arrived += d->arrivals;
      all.insert(all.end(), d->latencies_ms.begin(), d->latencies_ms.end());
    }
    if (!all.empty()) {
      r.max = *std::max_element(all.begin(), all.end());
      r.p50 = Percentile(all, 0.50);
      r.p99 = Percentile(all, 0.99);
      r.p999 = Percentile(all, 0.999);
    }
    r.commit_p50_ms = Percentile(commits_ms, 0.50);
    r.commit_p99_ms = Percentile(commits_ms, 0.99);
    return r;
  }

 private:
  std::vector<std::unique_ptr<Device>> devices_;
  std::atomic<int64_t> measure_from_{INT64_MAX};
};

// A figure in milliseconds for JSON, or null when not measured (wire devices commit in memory).
std::string Ms(double ms, bool measured) {
  if (!measured) return "null";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", ms);
  return buf;
}

void PrintRun(const char* bench, const Flags& f, double rate, double duration,
              const Fleet::Result& r) {
  std::printf(
      "{\"bench\":\"%s\",\"devices\":%d,\"device_kind\":\"%s\",\"rate_per_device\":%.1f,"
      "\"duration_s\":%.1f,\"live_interval_us\":%d,"
      "\"relay_durability\":\"%s\",\"edits\":%llu,\"edits_per_s\":%.1f,\"expected_arrivals\":%llu,"
      "\"arrivals\":%llu,\"p50_ms\":%.2f,\"p99_ms\":%.2f,\"p99_9_ms\":%.2f,\"max_ms\":%.2f,"
      "\"relay_fanout_per_s\":%.0f,\"relay_commits_per_fsync\":%.1f,"
      "\"commit_p50_ms\":%s,\"commit_p99_ms\":%s,\"hardware_threads\":%u}\n",
      bench, f.devices, f.wire ? "wire" : "replica", rate, duration, f.live_interval_us,
      f.relay_durability == Durability::kFull ? "full" : "normal",
      static_cast<unsigned long long>(r.edits), r.achieved_rate,
      static_cast<unsigned long long>(r.expected), static_cast<unsigned long long>(r.arrived),
      r.p50, r.p99, r.p999, r.max, r.fanout_per_s, r.commits_per_sync,
      Ms(r.commit_p50_ms, !f.wire).c_str(), Ms(r.commit_p99_ms, !f.wire).c_str(),
      std::thread::hardware_concurrency());
  std::fflush(stdout);
}

// Bootstraps of the automerge-paper trace into new devices, the relay holding it as a writer
// device made it (260 patches a transaction, about 1000 changes). Security off: an --open relay
// and a public document (no signatures, any snapshot taken). Every check on: a secure relay, the
// document owned by the writer, who grants the new devices and seals its state; each device
// checks the seal against the snapshot, and every change after it.
struct Boot {
  bool ok = false;
  double ms = 0;
  uint64_t snapshot_bytes = 0, snapshots = 0, changes = 0;
};

// A relay holding the trace, and `devices` new devices (readers, when secure) to bootstrap.
struct BootSetup {
  std::unique_ptr<relay::Relay> relay;
  std::unique_ptr<Replica> writer;
  std::vector<std::unique_ptr<Replica>> devices;
};

// How the document is held: public (security off), owned (every check on), end-to-end encrypted
// (from its encrypted snapshot), and for the whole log without a snapshot, owned or end-to-end
// encrypted.
enum class BootMode { kOff, kOn, kOwnedLog, kE2eLog, kE2e };
const char* BootModeName(BootMode m) {
  switch (m) {
    case BootMode::kOff: return "off";
    case BootMode::kOn: return "on";
    case BootMode::kOwnedLog: return "owned_log";
    case BootMode::kE2eLog: return "e2e_log";
    case BootMode::kE2e: return "e2e";
  }
  return "?";
}

BootSetup PrepareBootstrap(const Flags& f, const std::string& dir, const testing::Trace& trace,
                           BootMode mode, int devices) {
  const bool secure = mode != BootMode::kOff;
  const bool log_only = mode == BootMode::kOwnedLog || mode == BootMode::kE2eLog;
  BootSetup b;
  b.relay = StartRelay(f, dir + "/relay", /*open=*/!secure, /*snapshots=*/!log_only);
  ReplicaOptions options;
  options.public_documents = !secure;
  auto writer = Replica::Open(dir + "/writer.db", options);
  if (!writer.ok()) Fleet::Die("writer: " + writer.status().ToString());
  b.writer = std::move(*writer);
  for (int i = 0; i < devices; ++i) {
    auto device = Replica::Open(dir + "/device" + std::to_string(i) + ".db", options);
    if (!device.ok()) Fleet::Die("device: " + device.status().ToString());
    b.devices.push_back(std::move(*device));
  }
  const bool encrypted = mode == BootMode::kE2eLog || mode == BootMode::kE2e;
  if (encrypted) {
    if (Status s = b.writer->CreateEncryptedDocument("paper"); !s.ok()) {
      Fleet::Die("create: " + s.ToString());
    }
  }
  std::vector<const testing::TracePatch*> patches;
  for (const auto& txn : trace.txns) {
    for (const auto& p : txn.patches) patches.push_back(&p);
  }
  for (size_t i = 0; i < patches.size(); i += 260) {
    auto c = b.writer->Transact("paper", [&](Txn& t) {
      auto text = t.root().Text("text");
      if (!text.ok()) return text.status();
      for (size_t k = i; k < std::min(patches.size(), i + 260); ++k) {
        if (patches[k]->del) WEFT_RETURN_IF_ERROR(text->Delete(patches[k]->pos, patches[k]->del));
        if (!patches[k]->insert.empty()) {
          WEFT_RETURN_IF_ERROR(text->Insert(patches[k]->pos, patches[k]->insert));
        }
      }
      return Status::Ok();
    });
    if (!c.ok()) Fleet::Die("replaying the trace: " + c.status().ToString());
  }
  if (secure) {
    for (const auto& d : b.devices) {
      auto g = b.writer->Grant("paper", d->public_key(), Role::kReader);
      if (!g.ok()) Fleet::Die("grant: " + g.status().ToString());
    }
  }
  SyncOptions wo;
  wo.documents = {"paper"};
  auto up = SyncClient::Create(*b.writer, wo);
  if (!up.ok()) Fleet::Die("writer client: " + up.status().ToString());
  (void)(*up)->AddPeer(Url(*b.relay));
  auto synced = (*up)->WaitUntilSynced(Url(*b.relay), 120s);
  if (!synced.ok()) Fleet::Die("writer sync: " + synced.status().ToString());
  // The seal (an encrypted document's encrypted snapshot) follows the relay's acknowledgement of
  // the writer's whole version.
  const auto deadline = Clock::now() + 30s;
  const bool sealed = mode == BootMode::kOn || mode == BootMode::kE2e;
  while (sealed && !b.relay->replica().SealedSnapshot("paper").ok()) {
    if (Clock::now() > deadline) Fleet::Die("the writer's seal did not reach the relay");
    std::this_thread::sleep_for(5ms);
  }
  (*up)->Stop();
  return b;
}

// The timed part: device `i` of the setup from AddPeer to holding the whole text.
Boot BootstrapDevice(BootSetup& b, size_t i, const testing::Trace& trace) {
  Replica& device = *b.devices[i];
  SyncOptions so;
  so.documents = {"paper"};
  const auto t0 = Clock::now();
  auto client = SyncClient::Create(device, so);
  if (!client.ok()) Fleet::Die("client: " + client.status().ToString());
  (void)(*client)->AddPeer(Url(*b.relay));
  auto synced = (*client)->WaitUntilSynced(Url(*b.relay), 120s);
  Boot out;
  out.ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  std::string text;
  (void)device.Read("paper", [&](const View& v) {
    auto t = v.root().Text("text");
    if (!t.ok()) return;
    auto r = t->Read();
    if (r.ok()) text = *r;
  });
  for (const auto& p : (*client)->Peers()) {
    for (const auto& d : p.documents) {
      out.snapshot_bytes += d.snapshot_bytes_received_total;
      out.snapshots += d.snapshots_received;
      out.changes += d.changes_received;
    }
  }
  out.ok = synced.ok() && text == trace.end_content;
  (*client)->Stop();
  return out;
}

int RunBootstrap(const Flags& f, const std::string& dir) {
  auto trace = testing::LoadTrace(f.trace);
  if (!trace.ok()) {
    std::printf("{\"bench\":\"bootstrap\",\"ok\":false,\"error\":\"%s\"}\n",
                trace.status().ToString().c_str());
    return 1;
  }
  // Every mode in the same run, one new device at a time, rotating which goes first.
  const int rounds = std::max(1, f.bootstrap_rounds);
  constexpr int kModes = 5;
  BootSetup setups[kModes] = {
      PrepareBootstrap(f, dir + "/boot-off", *trace, BootMode::kOff, rounds),
      PrepareBootstrap(f, dir + "/boot-on", *trace, BootMode::kOn, rounds),
      PrepareBootstrap(f, dir + "/boot-owned-log", *trace, BootMode::kOwnedLog, rounds),
      PrepareBootstrap(f, dir + "/boot-e2e-log", *trace, BootMode::kE2eLog, rounds),
      PrepareBootstrap(f, dir + "/boot-e2e", *trace, BootMode::kE2e, rounds)};
  std::vector<double> ms[kModes];
  bool ok = true;
  for (int round = 0; round < rounds; ++round) {
    for (int k = 0; k < kModes; ++k) {
      const int mode = (round + k) % kModes;
      const Boot b = BootstrapDevice(setups[mode], static_cast<size_t>(round), *trace);
      ok = ok && b.ok;
      ms[mode].push_back(b.ms);
      std::printf(
          "{\"bench\":\"bootstrap\",\"trace\":\"automerge-paper\",\"security\":\"%s\","
          "\"round\":%d,\"ok\":%s,\"bootstrap_ms\":%.1f,\"snapshot_bytes\":%llu,"
          "\"snapshots\":%llu,\"changes_after_snapshot\":%llu,\"target_ms\":300}\n",
          BootModeName(static_cast<BootMode>(mode)), round, b.ok ? "true" : "false", b.ms,
          static_cast<unsigned long long>(b.snapshot_bytes),
          static_cast<unsigned long long>(b.snapshots), static_cast<unsigned long long>(b.changes));
    }
  }
  const double off = Percentile(ms[0], 0.5), on = Percentile(ms[1], 0.5);
  std::printf(
      "{\"bench\":\"bootstrap_security_ratio\",\"rounds\":%d,\"median_off_ms\":%.1f,"
      "\"median_on_ms\":%.1f,\"on_over_off\":%.2f,\"target\":1.3}\n",
      rounds, off, on, on / off);
  const double owned = Percentile(ms[2], 0.5), e2e_log = Percentile(ms[3], 0.5);
  const double e2e = Percentile(ms[4], 0.5);
  std::printf(
      "{\"bench\":\"bootstrap_e2e_ratio\",\"rounds\":%d,\"median_on_ms\":%.1f,"
      "\"median_e2e_ms\":%.1f,\"e2e_over_on\":%.2f,\"target\":2,\"median_owned_log_ms\":%.1f,"
      "\"median_e2e_log_ms\":%.1f,\"e2e_log_over_owned_log\":%.2f}\n",
      rounds, on, e2e, e2e / on, owned, e2e_log, e2e_log / owned);
  std::fflush(stdout);
  return ok ? 0 : 1;
}

// Every wire device edits at `rate` a second for warmup + duration (the same schedule as
// Fleet::Run); arrivals of edits sent after the warm-up are measured, then up to `drain` is
// waited for the rest.
Fleet::Result RunWire(relay::Relay& relay, bench::WireFleet& fleet, int n, double rate,
                      double warmup_s, double duration_s, std::chrono::seconds drain) {
  (void)fleet.Take(INT64_MAX);
  std::atomic<int64_t> measure_from{INT64_MAX};
  RelayCounters before;
  Driven driven = DriveEdits(
      n, rate, warmup_s, duration_s, 4, measure_from, [&] { before = RelayCounters::Read(relay); },
      [&](int i, const std::string& element, int64_t) { fleet.Edit(i, element); });
  const RelayCounters after = RelayCounters::Read(relay);
  Fleet::Result r;
  r.edits = driven.measured;
  r.expected = r.edits * static_cast<uint64_t>(n - 1);
  const double window = driven.window_s;
  r.achieved_rate = window > 0 ? static_cast<double>(r.edits) / window : 0;
  auto deadline = Clock::now() + drain;
  while (Clock::now() < deadline && fleet.Arrived(measure_from.load()) < r.expected) {
    std::this_thread::sleep_for(20ms);
  }
  r.Measure(before, after, window);
  auto got = fleet.Take(measure_from.load());
  r.arrived = got.arrivals;
  if (!got.latencies_ms.empty()) {
    r.max = *std::max_element(got.latencies_ms.begin(), got.latencies_ms.end());
    r.p50 = Percentile(got.latencies_ms, 0.50);
    r.p99 = Percentile(got.latencies_ms, 0.99);
    r.p999 = Percentile(got.latencies_ms, 0.999);
  }
  return r;
}

// A relay in `dir` with the shared document and `f.devices` wire devices; runs `body`.
void WithWireFleet(const Flags& f, const std::string& dir,
                   const std::function<void(relay::Relay&, bench::WireFleet&)>& body) {
  auto relay = StartRelay(f, dir + "/relay", f.open_relay);
  bench::WireFleetOptions o;
  o.devices = f.devices;
  o.port = relay->port();
  o.threads = f.wire_threads;
  std::unique_ptr<Replica> owner;
  if (f.owned) {
    // The owner makes the document and grants each wire device a writer role, then syncs it up.
    auto r = Replica::Open(dir + "/owner.db");
    if (!r.ok()) Fleet::Die("owner: " + r.status().ToString());
    owner = std::move(*r);
    auto made = owner->Transact("shared", [](Txn& t) { return t.root().Set("s").status(); });
    if (!made.ok()) Fleet::Die("shared document: " + made.status().ToString());
    o.owned = true;
    o.before_connect = [&](const std::vector<PublicKey>& keys) {
      auto granted = owner->Transact("shared", [&](Txn& t) {
        for (const auto& k : keys) {
          std::string principal(reinterpret_cast<const char*>(k.bytes().data()), PublicKey::kSize);
          WEFT_RETURN_IF_ERROR(t.raw().Grant(principal, Role::kWriter));
        }
        return Status::Ok();
      });
      if (!granted.ok()) Fleet::Die("grants: " + granted.status().ToString());
      SyncOptions so;
      so.documents = {"shared"};
      auto up = SyncClient::Create(*owner, so);
      if (!up.ok()) Fleet::Die("owner client: " + up.status().ToString());
      (void)(*up)->AddPeer(Url(*relay));
      auto synced = (*up)->WaitUntilSynced(Url(*relay), 60s);
      if (!synced.ok()) Fleet::Die("owner sync: " + synced.status().ToString());
      (*up)->Stop();
    };
  } else {
    auto made =
        relay->replica().Transact("shared", [](Txn& t) { return t.root().Set("s").status(); });
    if (!made.ok()) Fleet::Die("shared document: " + made.status().ToString());
  }
  std::string error;
  auto fleet = bench::WireFleet::Start(o, &error);
  if (!fleet) Fleet::Die("wire devices: " + error);
  body(*relay, *fleet);
  if (std::string e = fleet->Errors(); !e.empty()) Fleet::Die("wire devices: " + e);
}

// Starts a relay in `dir` with the shared document and a fleet of devices, runs `body`, and
// stops them.
void WithFleet(const Flags& f, const std::string& dir,
               const std::function<void(relay::Relay&, Fleet&)>& body) {
  auto relay = StartRelay(f, dir + "/relay");
  // The shared document and its set exist before anyone edits (concurrently created sets would
  // be siblings).
  auto made =
      relay->replica().Transact("shared", [](Txn& t) { return t.root().Set("s").status(); });
  if (!made.ok()) Fleet::Die("shared document: " + made.status().ToString());
  Fleet fleet(f, dir, Url(*relay));
  if (!fleet.WaitLive(60s)) Fleet::Die("the devices did not all connect within 60 s");
  body(*relay, fleet);
}

[[noreturn]] void Usage() {
  std::fprintf(
      stderr,
      "usage: weft-sync-bench [--devices N] [--rate EDITS_PER_S] [--duration S] "
      "[--warmup S]\n"
      "                       [--saturation] [--saturation-start EDITS_PER_S] [--steps N]\n"
      "                       [--step-duration S] [--no-bootstrap] [--bootstrap-rounds N]\n"
      "                       [--relay-durability full|normal] [--relay-threads N] "
      "[--trace FILE]\n"
      "                       [--live-interval-us US] [--wire-devices] [--open-relay] "
      "[--owned] [--wire-threads N] [--security-rounds N]\n");
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) Usage();
      return argv[++i];
    };
    if (a == "--devices") {
      f.devices = std::atoi(value().c_str());
    } else if (a == "--rate") {
      f.rate = std::atof(value().c_str());
    } else if (a == "--duration") {
      f.duration_s = std::atof(value().c_str());
    } else if (a == "--warmup") {
      f.warmup_s = std::atof(value().c_str());
    } else if (a == "--saturation") {
      f.saturation = true;
    } else if (a == "--steps") {
      f.steps = std::atoi(value().c_str());
    } else if (a == "--saturation-start") {
      f.saturation_start = std::atof(value().c_str());
    } else if (a == "--step-duration") {
      f.step_duration_s = std::atof(value().c_str());
    } else if (a == "--wire-devices") {
      f.wire = true;
    } else if (a == "--open-relay") {
      f.open_relay = true;
    } else if (a == "--security-rounds") {
      f.security_rounds = std::atoi(value().c_str());
    } else if (a == "--owned") {
      f.owned = true;
    } else if (a == "--wire-threads") {
      f.wire_threads = std::atoi(value().c_str());
    } else if (a == "--bootstrap-rounds") {
      f.bootstrap_rounds = std::atoi(value().c_str());
    } else if (a == "--no-bootstrap") {
      f.bootstrap = false;
    } else if (a == "--relay-durability") {
      std::string d = value();
      if (d == "full") {
        f.relay_durability = Durability::kFull;
      } else if (d == "normal") {
        f.relay_durability = Durability::kNormal;
      } else {
        Usage();
      }
    } else if (a == "--live-interval-us") {
      f.live_interval_us = std::atoi(value().c_str());
    } else if (a == "--relay-threads") {
      f.relay_threads = std::atoi(value().c_str());
    } else if (a == "--trace") {
      f.trace = value();
    } else {
      Usage();
    }
  }
  if (f.devices < 2 || f.rate <= 0 || f.duration_s <= 0 || f.steps < 1 || f.relay_threads < 1 ||
      f.wire_threads < 1 || f.saturation_start <= 0) {
    Usage();
  }
  testing::TempDir dir;
  int status = 0;
  // One measurement series on a fresh relay and fleet of the chosen kind: `body` gets a function
  // that runs a rate (edits a second per device) for a warm-up and a duration, and one that waits
  // until the backlog of an earlier run is delivered.
  using RunFn = std::function<Fleet::Result(double rate, double warmup, double duration)>;
  using QuiesceFn = std::function<bool()>;
  auto series = [&](const std::string& name, const std::function<void(RunFn, QuiesceFn)>& body) {
    if (f.wire) {
      WithWireFleet(f, dir.File(name), [&](relay::Relay& relay, bench::WireFleet& fleet) {
        body(
            [&](double rate, double warmup, double duration) {
              return RunWire(relay, fleet, f.devices, rate, warmup, duration, 30s);
            },
            [] { return true; });  // RunWire waits for its arrivals (up to 30 s) itself
      });
    } else {
      WithFleet(f, dir.File(name), [&](relay::Relay& relay, Fleet& fleet) {
        body([&](double rate, double warmup,
                 double duration) { return fleet.Run(relay, rate, warmup, duration, 30s); },
             [&] { return fleet.Quiesce(relay, 180s); });
      });
    }
  };
  if (f.security_rounds > 0) {
    if (!f.wire) Usage();
    std::vector<double> p99[2];
    for (int round = 0; round < f.security_rounds; ++round) {
      for (int on = 0; on < 2; ++on) {
        Flags g = f;
        g.open_relay = on == 0;
        g.owned = on == 1;
        const char* name = on ? "propagation_security_on" : "propagation_security_off";
        WithWireFleet(g, dir.File(name + std::to_string(round)),
                      [&](relay::Relay& relay, bench::WireFleet& fleet) {
                        auto r =
                            RunWire(relay, fleet, g.devices, g.rate, g.warmup_s, g.duration_s, 30s);
                        PrintRun(name, g, g.rate, g.duration_s, r);
                        if (r.arrived < r.expected) status = 1;
                        p99[on].push_back(r.p99);
                      });
      }
    }
    double off = Percentile(p99[0], 0.5), on = Percentile(p99[1], 0.5);
    std::printf(
        "{\"bench\":\"relay_security_ratio\",\"rounds\":%d,\"median_p99_off_ms\":%.2f,"
        "\"median_p99_on_ms\":%.2f,\"on_over_off\":%.2f,\"target\":1.3}\n",
        f.security_rounds, off, on, off > 0 ? on / off : 0.0);
    std::fflush(stdout);
  } else if (f.duration_s > 0) {
    series("propagation", [&](RunFn run, QuiesceFn) {
      auto r = run(f.rate, f.warmup_s, f.duration_s);
      PrintRun("propagation", f, f.rate, f.duration_s, r);
      if (r.arrived < r.expected) status = 1;  // lost or late beyond the 30 s drain
    });
    if (f.saturation) {
      // A fresh relay and fleet. From --saturation-start edits a second per device, double the
      // rate until the relay no longer keeps up (below). Each step starts once the backlog of the
      // one before is delivered; the highest fan-out rate seen is the saturation throughput.
      series("saturation", [&](RunFn run, QuiesceFn quiesce) {
        double best = 0, best_rate = 0;
        double rate = f.saturation_start;
        for (int step = 0; step < f.steps; ++step, rate *= 2) {
          if (!quiesce()) {
            std::printf(
                "{\"bench\":\"saturation_step\",\"error\":\"the backlog of the step before "
                "was not delivered within 180 s\"}\n");
            break;
          }
          auto s = run(rate, 1.0, f.step_duration_s);
          PrintRun("saturation_step", f, rate, f.step_duration_s, s);
          if (s.fanout_per_s > best) best = s.fanout_per_s, best_rate = s.achieved_rate;
          // Saturated: arrivals lag by a second at p99, or do not all come within the drain, or
          // the edit drivers themselves cannot keep the rate.
          if (s.p99 > 1000 ||
              static_cast<double>(s.arrived) < 0.99 * static_cast<double>(s.expected) ||
              s.achieved_rate < 0.9 * rate * f.devices) {
            break;
          }
        }
        std::printf(
            "{\"bench\":\"saturation\",\"devices\":%d,\"device_kind\":\"%s\","
            "\"max_relay_fanout_per_s\":%.0f,\"at_edits_per_s\":%.1f}\n",
            f.devices, f.wire ? "wire" : "replica", best, best_rate);
        std::fflush(stdout);
      });
    }
  }
  if (f.bootstrap && RunBootstrap(f, dir.path()) != 0) status = 1;
  return status;
}
