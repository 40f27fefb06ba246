// weft-scale-bench: relays scaling out on one shared PostgreSQL database.
//
// Starts one PostgreSQL server (tests/support/pg_server.h) and, per configuration, 1, 2 and 3
// `weft-relay` processes on a fresh database of it (--store postgres://... --store-name relayK),
// plus one relay on its embedded SQLite store as a baseline. A fleet of wire devices
// (bench/sync/wire_fleet.h: protocol clients that sign real changes) is spread over the
// relays: device i edits document i / (devices / documents) through relay i % relays, so every
// document has devices on every relay, and a change reaches devices on another relay only
// through the database. The documents are owned (secure relays: an owner device grants each
// device a writer role, devices bind and sign every change, the relays check them).
//
// Per configuration: a saturation search (the edit rate doubled from --sat-start until fewer
// than 99% of the deliveries arrive within the drain, p99 passes 1 s, or the drivers cannot keep
// the rate, then the interval bisected --refine times), then a run at half the highest rate that
// kept up: delivered changes/s, p50/p99 propagation within a relay and across relays, the relays'
// CPU-seconds per delivered change (each relay in its own cgroup with the same CPU quota when the
// machine allows it). With 3 relays, a failover under load: one relay is SIGKILLed, its devices
// reconnect to the others, and the bench checks in PostgreSQL that every change a relay
// acknowledged is stored exactly once and that every device converges.
//
// Prints one JSON line per step and configuration ({"bench":"scale_step"|"scale"|"failover"}),
// then a table. Usage: weft-scale-bench --help. Exit status: 0; 1 when a check failed (a lost
// or duplicated change, no convergence); 2 on usage.
#include <fcntl.h>
#include <libpq-fe.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "drive.h"
#include "pg_server.h"
#include "temp_dir.h"
#include "weft/crdt/history.h"
#include "weft/replica.h"
#include "weft/sync.h"
#include "wire_fleet.h"

namespace {

using namespace weft;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using bench::Percentile;
namespace fs = std::filesystem;

struct Flags {
  int devices = 1000;
  int documents = 100;
  std::vector<int> relays = {1, 2, 3};
  bool baseline = true;  // one relay on SQLite
  bool failover = true;
  double sat_start = 0.25;  // edits a second per device at the first step
  double step_factor = 2;   // each step's rate over the one before
  int steps = 6;
  int refine = 2;  // bisection steps after the doubling
  double step_s = 3;
  double warmup_s = 1;
  double duration_s = 5;  // the run at half saturation
  double rate = 0;        // > 0: that rate instead of half saturation (and no search)
  double failover_s = 3;  // load before and after the kill, each
  // Each relay's CPU quota (cores) when cgroups allow it; 0: none. A quarter core, so that three
  // relays, PostgreSQL and the fleet fit in a 2-core machine and the relays are what saturates.
  double relay_cpu = 0.25;
  int relay_threads = 2;
  int wire_threads = 1;
  bool open = false;  // --open relays and public documents
  std::string relay_bin;
};

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

[[noreturn]] void Die(const std::string& why) {
  std::printf("{\"bench\":\"error\",\"error\":\"%s\"}\n", why.c_str());
  std::fflush(stdout);
  std::exit(1);
}

// CPU-seconds (user + system) of a process, from /proc/PID/stat; with `children`, also those of
// its waited-for children (PostgreSQL's backends that have exited).
double CpuSeconds(pid_t pid, bool children = false) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return 0;
  size_t paren = line.rfind(')');  // the command may hold spaces
  if (paren == std::string::npos) return 0;
  std::istringstream rest(line.substr(paren + 2));
  std::vector<std::string> f;
  for (std::string w; rest >> w;) f.push_back(w);
  // f[0] is field 3 (state): utime, stime, cutime, cstime are fields 14 to 17.
  if (f.size() < 15) return 0;
  double ticks = std::stod(f[11]) + std::stod(f[12]);
  if (children) ticks += std::stod(f[13]) + std::stod(f[14]);
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// PostgreSQL's CPU-seconds: the postmaster, its exited children, and its live backends.
double PgCpuSeconds(pid_t postmaster) {
  double total = CpuSeconds(postmaster, true);
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.empty() || !std::isdigit(static_cast<unsigned char>(name[0]))) continue;
    std::ifstream in(e.path() / "stat");
    std::string line;
    if (!std::getline(in, line)) continue;
    size_t paren = line.rfind(')');
    if (paren == std::string::npos) continue;
    std::istringstream rest(line.substr(paren + 2));
    std::string state;
    long ppid = 0;
    rest >> state >> ppid;
    if (ppid == postmaster) total += CpuSeconds(static_cast<pid_t>(std::stol(name)));
  }
  return total;
}

// A CPU cgroup (v1 cpu controller) with a quota, when /sys/fs/cgroup/cpu is writable.
class CpuGroup {
 public:
  static std::unique_ptr<CpuGroup> Make(const std::string& name, double cores) {
    if (cores <= 0) return nullptr;
    const fs::path dir = fs::path("/sys/fs/cgroup/cpu") / name;
    std::error_code ec;
    if (!fs::create_directory(dir, ec) && !fs::exists(dir, ec)) return nullptr;
    auto g = std::unique_ptr<CpuGroup>(new CpuGroup(dir.string()));
    const long period = 100000;
    if (!g->Write("cpu.cfs_period_us", std::to_string(period)) ||
        !g->Write("cpu.cfs_quota_us", std::to_string(static_cast<long>(cores * period)))) {
      return nullptr;
    }
    return g;
  }
  ~CpuGroup() {
    std::error_code ec;
    fs::remove(dir_, ec);  // rmdir: empty once its processes have exited
  }
  const std::string& procs() const { return procs_; }

 private:
  explicit CpuGroup(std::string dir) : dir_(std::move(dir)), procs_(dir_ + "/cgroup.procs") {}
  bool Write(const std::string& file, const std::string& value) {
    std::ofstream out(dir_ + "/" + file);
    out << value;
    out.flush();
    return static_cast<bool>(out);
  }
  std::string dir_, procs_;
};

// One weft-relay process, stopped by its PID.
class RelayProcess {
 public:
  // Starts `bin` with `args` (its output in `dir`), in `group` when given, and waits until it
  // says it is listening.
  static std::unique_ptr<RelayProcess> Start(const std::string& bin,
                                             const std::vector<std::string>& args,
                                             const std::string& dir, const CpuGroup* group) {
    fs::create_directories(dir);
    const std::string out = dir + "/stdout", err = dir + "/stderr";
    const std::string procs = group ? group->procs() : "";
    std::vector<std::string> argv_s = {bin};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = fork();
    if (pid < 0) Die("fork");
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlives the bench (forked by its main thread)
      if (!procs.empty()) {  // join the cgroup before exec: the relay runs only inside it
        int fd = open(procs.c_str(), O_WRONLY);
        if (fd >= 0) {
          char buf[32];
          int n = std::snprintf(buf, sizeof buf, "%d", static_cast<int>(getpid()));
          (void)!write(fd, buf, static_cast<size_t>(n));
          close(fd);
        }
      }
      int o = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      int e = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(o, 1);
      dup2(e, 2);
      execv(argv[0], argv.data());
      _exit(127);
    }
    auto r = std::unique_ptr<RelayProcess>(new RelayProcess(pid));
    const auto deadline = Clock::now() + 60s;
    while (Clock::now() < deadline) {
      std::ifstream in(out);
      std::string line;
      while (std::getline(in, line)) {
        const std::string key = "listening on ";
        size_t at = line.find(key);
        if (at == std::string::npos) continue;
        size_t colon = line.find(':', at + key.size());
        if (colon == std::string::npos) continue;
        r->port_ = static_cast<uint16_t>(std::atoi(line.c_str() + colon + 1));
        return r;
      }
      int status = 0;
      if (waitpid(pid, &status, WNOHANG) == pid) {
        r->pid_ = -1;
        std::ifstream e(err);
        std::stringstream ss;
        ss << e.rdbuf();
        Die("weft-relay exited: " + ss.str());
      }
      std::this_thread::sleep_for(20ms);
    }
    Die("weft-relay did not listen within 60 s");
  }
  ~RelayProcess() { Stop(SIGTERM); }

  // Sends `sig` and waits for it to exit (SIGKILL after 10 s).
  void Stop(int sig) {
    if (pid_ <= 0) return;
    (void)Cpu();  // its last figure, kept once it is gone
    kill(pid_, sig);
    const auto deadline = Clock::now() + 10s;
    int status = 0;
    while (waitpid(pid_, &status, WNOHANG) == 0) {
      if (Clock::now() > deadline) {
        kill(pid_, SIGKILL);
        waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(10ms);
    }
    pid_ = -1;
  }
  uint16_t port() const { return port_; }
  pid_t pid() const { return pid_; }
  // Its CPU-seconds so far (the last figure read while it ran, once it is stopped).
  double Cpu() {
    if (pid_ > 0) cpu_ = CpuSeconds(pid_);
    return cpu_;
  }

 private:
  explicit RelayProcess(pid_t pid) : pid_(pid) {}
  pid_t pid_;
  double cpu_ = 0;
  uint16_t port_ = 0;
};

// One configuration: relays on one store, the owner of the documents, and the device fleet.
struct Setup {
  std::string name;  // "postgres" or "sqlite"
  std::string conninfo;
  std::vector<std::unique_ptr<CpuGroup>> groups;
  std::vector<std::unique_ptr<RelayProcess>> relays;
  std::unique_ptr<Replica> owner;
  std::unique_ptr<bench::WireFleet> fleet;
  std::vector<int> doc_size;  // devices per document
  int relays_n = 0;

  double RelayCpu() const {
    double s = 0;
    for (const auto& r : relays) s += r->Cpu();
    return s;
  }
};

std::string DocName(int d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "doc-%03d", d);
  return buf;
}

int DocOf(const Flags& f, int i) {
  const int per = std::max(1, f.devices / f.documents);
  return std::min(f.documents - 1, i / per);
}

std::string Url(uint16_t port) {
  return "ws://127.0.0.1:" + std::to_string(port);
}

std::unique_ptr<Setup> StartSetup(const Flags& f, testing::PgServer* pg, int relays,
                                  const std::string& dir, bool* cgroups) {
  auto s = std::make_unique<Setup>();
  s->relays_n = relays;
  s->name = pg ? "postgres" : "sqlite";
  if (pg) {
    auto db = pg->CreateDatabase();
    if (!db.ok()) Die("database: " + db.status().ToString());
    s->conninfo = *db;
  }
  *cgroups = true;
  for (int k = 0; k < relays; ++k) {
    auto g = CpuGroup::Make("weft-scale-" + std::to_string(getpid()) + "-" + std::to_string(k),
                            f.relay_cpu);
    if (!g) *cgroups = false;
    std::vector<std::string> args = {"--listen",
                                     "127.0.0.1:0",
                                     "--data",
                                     dir + "/relay" + std::to_string(k),
                                     "--threads",
                                     std::to_string(f.relay_threads),
                                     "--max-connections",
                                     "100000",
                                     "--log-format",
                                     "none"};
    if (pg) {
      args.insert(args.end(),
                  {"--store", s->conninfo, "--store-name", "relay" + std::to_string(k)});
    }
    if (f.open) args.push_back("--open");
    s->relays.push_back(
        RelayProcess::Start(f.relay_bin, args, dir + "/relay" + std::to_string(k), g.get()));
    s->groups.push_back(std::move(g));
  }
  // The owner makes the documents (each with the set every edit adds to) and, once it knows the
  // devices' keys, grants each a writer role in its document and syncs them up to relay 0.
  ReplicaOptions ro;
  ro.public_documents = f.open;
  auto owner = Replica::Open(dir + "/owner.db", ro);
  if (!owner.ok()) Die("owner: " + owner.status().ToString());
  s->owner = std::move(*owner);
  s->doc_size.assign(static_cast<size_t>(f.documents), 0);
  for (int i = 0; i < f.devices; ++i) ++s->doc_size[static_cast<size_t>(DocOf(f, i))];
  bench::WireFleetOptions o;
  o.devices = f.devices;
  o.threads = f.wire_threads;
  o.owned = !f.open;
  o.reconnect = true;
  o.doc_of = [&f](int i) { return DocName(DocOf(f, i)); };
  std::vector<uint16_t> ports;
  for (const auto& r : s->relays) ports.push_back(r->port());
  o.ports_of = [ports](int i) {
    // Its relay first, then the others in an order that spreads a failed relay's devices.
    const size_t n = ports.size(), home = static_cast<size_t>(i) % n;
    std::vector<uint16_t> out = {ports[home]};
    const size_t turn = static_cast<size_t>(i) / n;
    for (size_t k = 0; k + 1 < n; ++k) out.push_back(ports[(home + 1 + (turn + k) % (n - 1)) % n]);
    return out;
  };
  o.before_connect = [&](const std::vector<PublicKey>& keys) {
    std::vector<std::string> docs;
    for (int d = 0; d < f.documents; ++d) {
      docs.push_back(DocName(d));
      auto made = s->owner->Transact(docs.back(), [&](Txn& t) {
        WEFT_RETURN_IF_ERROR(t.root().Set("s").status());
        if (f.open) return Status::Ok();
        for (int i = 0; i < f.devices; ++i) {
          if (DocOf(f, i) != d) continue;
          const auto& k = keys[static_cast<size_t>(i)];
          std::string principal(reinterpret_cast<const char*>(k.bytes().data()), PublicKey::kSize);
          WEFT_RETURN_IF_ERROR(t.raw().Grant(principal, Role::kWriter));
        }
        return Status::Ok();
      });
      if (!made.ok()) Die("documents: " + made.status().ToString());
    }
    SyncOptions so;
    so.documents = docs;
    auto up = SyncClient::Create(*s->owner, so);
    if (!up.ok()) Die("owner client: " + up.status().ToString());
    const std::string url = Url(s->relays[0]->port());
    (void)(*up)->AddPeer(url);
    auto synced = (*up)->WaitUntilSynced(url, 120s);
    if (!synced.ok()) Die("owner sync: " + synced.status().ToString());
    (*up)->Stop();
  };
  std::string error;
  s->fleet = bench::WireFleet::Start(o, &error);
  if (!s->fleet) Die("wire devices: " + error);
  return s;
}

// One measured run: every device edits at `rate` a second for warmup + duration (spread evenly
// over time by two driver threads); edits sent after the warm-up are measured, and their
// arrivals are waited for up to `drain`.
struct Run {
  double rate = 0;
  double window_s = 0;
  uint64_t edits = 0, expected = 0, arrived = 0;
  double offered_per_s = 0, delivered_per_s = 0, achieved_edits_per_s = 0;
  std::vector<double> within, across;
  double p50_within = 0, p99_within = 0, p50_across = 0, p99_across = 0, p99_all = 0;
  double relay_cpu_s = 0, pg_cpu_s = 0;
  double fleet_cpu_s = 0;  // this process: the devices and the edit drivers
  bool kept_up = false;
  Clock::time_point ended;  // when the last edit was sent
};

// `during(seconds since start, when the edits ended or nullopt)` is called by a third thread
// every 10 ms until the drain ends (for the failover).
using During = std::function<void(double, std::optional<Clock::time_point>)>;
Run Measure(const Flags& f, Setup& s, testing::PgServer* pg, double rate, double warmup_s,
            double duration_s, std::chrono::seconds drain, const During& during = nullptr) {
  (void)s.fleet->Take(INT64_MAX);
  const int n = f.devices;
  const auto start = Clock::now();
  std::vector<uint64_t> measured(static_cast<size_t>(n), 0);
  std::atomic<int64_t> measure_from{INT64_MAX};
  std::atomic<bool> done{false};
  std::atomic<int64_t> ended_ns{0};
  std::thread ticker;
  if (during) {
    ticker = std::thread([&] {
      while (!done.load()) {
        std::optional<Clock::time_point> ended;
        if (int64_t e = ended_ns.load(); e != 0) {
          ended = Clock::time_point(Clock::duration(e));
        }
        during(Seconds(start, Clock::now()), ended);
        std::this_thread::sleep_for(10ms);
      }
    });
  }
  double cpu0 = 0, pg0 = 0, fleet0 = 0;
  // Two driver threads at most: an edit only hands the work to the fleet's network threads.
  const bench::Driven driven = bench::DriveEdits(
      n, rate, warmup_s, duration_s, 2, measure_from,
      [&] {
        cpu0 = s.RelayCpu();
        pg0 = pg ? PgCpuSeconds(pg->pid()) : 0;
        fleet0 = CpuSeconds(getpid());
      },
      [&](int i, const std::string& element, int64_t sent) {
        s.fleet->Edit(i, element);
        // Each device is driven by one thread.
        if (sent >= measure_from.load()) ++measured[static_cast<size_t>(i)];
      });
  const int64_t from = measure_from.load();
  Run r;
  r.ended = Clock::now();
  ended_ns.store(r.ended.time_since_epoch().count());
  r.rate = rate;
  r.window_s = driven.window_s;
  for (int i = 0; i < n; ++i) {
    r.edits += measured[static_cast<size_t>(i)];
    r.expected += measured[static_cast<size_t>(i)] *
                  static_cast<uint64_t>(s.doc_size[static_cast<size_t>(DocOf(f, i))] - 1);
  }
  const auto deadline = Clock::now() + drain;
  while (Clock::now() < deadline && s.fleet->Arrived(from) < r.expected) {
    std::this_thread::sleep_for(20ms);
  }
  done.store(true);
  if (ticker.joinable()) ticker.join();
  r.relay_cpu_s = s.RelayCpu() - cpu0;
  r.pg_cpu_s = pg ? PgCpuSeconds(pg->pid()) - pg0 : 0;
  r.fleet_cpu_s = CpuSeconds(getpid()) - fleet0;
  auto got = s.fleet->Take(from);
  r.arrived = got.arrivals;
  r.achieved_edits_per_s = static_cast<double>(r.edits) / r.window_s;
  r.offered_per_s = static_cast<double>(r.expected) / r.window_s;
  r.delivered_per_s = static_cast<double>(r.arrived) / r.window_s;
  r.p99_all = Percentile(got.latencies_ms, 0.99);
  r.p50_within = Percentile(got.within_ms, 0.5);
  r.p99_within = Percentile(got.within_ms, 0.99);
  r.p50_across = Percentile(got.across_ms, 0.5);
  r.p99_across = Percentile(got.across_ms, 0.99);
  r.within = std::move(got.within_ms);
  r.across = std::move(got.across_ms);
  r.kept_up = static_cast<double>(r.arrived) >= 0.99 * static_cast<double>(r.expected) &&
              r.p99_all <= 1000 && r.achieved_edits_per_s >= 0.9 * rate * n;
  return r;
}

std::string RunJson(const Run& r) {
  char buf[1024];
  const double per_change_us =
      r.arrived ? r.relay_cpu_s / static_cast<double>(r.arrived) * 1e6 : 0.0;
  std::snprintf(buf, sizeof buf,
                "\"rate_per_device\":%.3f,\"edits_per_s\":%.1f,\"offered_per_s\":%.1f,"
                "\"delivered_per_s\":%.1f,\"expected\":%llu,\"arrived\":%llu,"
                "\"within\":{\"arrivals\":%zu,\"p50_ms\":%.2f,\"p99_ms\":%.2f},"
                "\"across\":{\"arrivals\":%zu,\"p50_ms\":%.2f,\"p99_ms\":%.2f},"
                "\"p99_ms\":%.2f,\"relay_cpu_s\":%.2f,\"relay_cpu_us_per_delivered\":%.1f,"
                "\"pg_cpu_s\":%.2f,\"fleet_cpu_s\":%.2f,\"kept_up\":%s",
                r.rate, r.achieved_edits_per_s, r.offered_per_s, r.delivered_per_s,
                static_cast<unsigned long long>(r.expected),
                static_cast<unsigned long long>(r.arrived), r.within.size(), r.p50_within,
                r.p99_within, r.across.size(), r.p50_across, r.p99_across, r.p99_all, r.relay_cpu_s,
                per_change_us, r.pg_cpu_s, r.fleet_cpu_s, r.kept_up ? "true" : "false");
  return buf;
}

std::string Fixed(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

std::string ConfigJson(const Flags& f, const Setup& s, bool cgroups) {
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "\"store\":\"%s\",\"relays\":%d,\"devices\":%d,\"documents\":%d,\"access\":\"%s\","
                "\"relay_cpu_limit\":%s,\"hardware_threads\":%u",
                s.name.c_str(), s.relays_n, f.devices, f.documents, f.open ? "open" : "owned",
                cgroups && f.relay_cpu > 0 ? Fixed(f.relay_cpu).c_str() : "null",
                std::thread::hardware_concurrency());
  return buf;
}

// A row of the table at the end.
struct Row {
  std::string config;
  double sat_delivered = 0, sat_rate = 0;
  bool saturated = false;  // a step did not keep up (else sat_* are a lower bound)
  Run half;
};

// Every change in the database as (doc, author, start_seq) -> copies: the log's rows and the
// changes folded into its segments.
std::map<std::tuple<std::string, uint64_t, uint64_t>, int> StoredChanges(
    const std::string& conninfo, std::string* error) {
  std::map<std::tuple<std::string, uint64_t, uint64_t>, int> out;
  PGconn* c = PQconnectdb(conninfo.c_str());
  if (PQstatus(c) != CONNECTION_OK) {
    *error = PQerrorMessage(c);
    PQfinish(c);
    return out;
  }
  PGresult* rows = PQexec(c, "SELECT doc, author, start_seq FROM weft_changes");
  if (PQresultStatus(rows) != PGRES_TUPLES_OK) {
    *error = PQresultErrorMessage(rows);
  } else {
    for (int i = 0; i < PQntuples(rows); ++i) {
      ++out[{PQgetvalue(rows, i, 0),
             static_cast<uint64_t>(std::strtoll(PQgetvalue(rows, i, 1), nullptr, 10)),
             std::strtoull(PQgetvalue(rows, i, 2), nullptr, 10)}];
    }
  }
  PQclear(rows);
  // Segments in binary: the data column as bytes.
  PGresult* segs = PQexecParams(c, "SELECT doc, data FROM weft_segments", 0, nullptr, nullptr,
                                nullptr, nullptr, 1);
  if (PQresultStatus(segs) != PGRES_TUPLES_OK) {
    *error = PQresultErrorMessage(segs);
  } else {
    for (int i = 0; i < PQntuples(segs); ++i) {
      std::string doc(PQgetvalue(segs, i, 0), static_cast<size_t>(PQgetlength(segs, i, 0)));
      auto changes = crdt::DecodeSegment(
          std::string_view(PQgetvalue(segs, i, 1), static_cast<size_t>(PQgetlength(segs, i, 1))));
      if (!changes.ok()) {
        *error = "a segment that does not decode: " + changes.status().ToString();
        continue;
      }
      for (const auto& ch : *changes) ++out[{doc, ch.author.value, ch.start_seq}];
    }
  }
  PQclear(segs);
  PQfinish(c);
  return out;
}

// The failover: under load at `rate`, the last relay is SIGKILLed halfway; its devices reconnect
// to the others. Then: the time until every device is live again, until every device holds every
// change made before the kill, and (after the load) every change made; every change a relay
// acknowledged stored exactly once.
bool Failover(const Flags& f, Setup& s, testing::PgServer* pg, double rate) {
  const size_t victim = s.relays.size() - 1;
  const uint16_t victim_port = s.relays[victim]->port();
  Clock::time_point kill_at;
  std::vector<bench::WireDeviceState> at_kill;
  // Converged: every device holds the last own change of every device on its document (as of
  // `target`, or now).
  auto lagging = [&](const std::vector<bench::WireDeviceState>& target,
                     const std::vector<bench::WireDeviceState>& now) {
    std::map<std::string, crdt::VersionVector> want;
    for (const auto& d : target) want[d.doc].Advance(d.node, d.own_seq);
    int behind = 0;
    for (const auto& d : now) behind += d.held.Dominates(want[d.doc]) ? 0 : 1;
    return behind;
  };
  // After the kill, every 10 ms: are all devices live again, do all hold what was made before
  // the kill, and (once the edits ended) everything made?
  double live_s = -1, before_kill_s = -1, all_s = -1;
  int behind = -1;
  auto poll = [&](std::optional<Clock::time_point> ended) {
    auto now = s.fleet->States(false);
    const auto t = Clock::now();
    if (live_s < 0 && std::all_of(now.begin(), now.end(), [&](const auto& d) { return d.live; })) {
      live_s = Seconds(kill_at, t);
    }
    if (before_kill_s < 0 && lagging(at_kill, now) == 0) before_kill_s = Seconds(kill_at, t);
    if (ended && all_s < 0) {
      behind = lagging(now, now);
      if (behind == 0) all_s = Seconds(*ended, t);
    }
  };
  bool killed = false;
  std::optional<Clock::time_point> ended;
  Run r = Measure(f, s, pg, rate, 0.5, 2 * f.failover_s, 10s,
                  [&](double t, std::optional<Clock::time_point> e) {
                    ended = e;
                    if (killed) {
                      poll(e);
                    } else if (t >= 0.5 + f.failover_s) {
                      kill_at = Clock::now();
                      s.relays[victim]->Stop(SIGKILL);
                      at_kill = s.fleet->States(false);
                      killed = true;
                    }
                  });
  // Then up to 30 s more for what has not converged.
  ended = r.ended;
  while (killed && (all_s < 0 || live_s < 0 || before_kill_s < 0) && Clock::now() < *ended + 30s) {
    poll(ended);
    std::this_thread::sleep_for(10ms);
  }
  // The database: every acknowledged change exactly once.
  auto states = s.fleet->States(true);
  std::string error;
  auto stored = StoredChanges(s.conninfo, &error);
  uint64_t made = 0, acked = 0, acked_missing = 0, acked_duplicated = 0, stored_made = 0,
           duplicated = 0, moved = 0;
  for (const auto& d : states) {
    if (d.port != victim_port && d.reconnects > 0) ++moved;
    for (size_t k = 0; k < d.own_starts.size(); ++k) {
      const uint64_t end = k + 1 < d.own_starts.size() ? d.own_starts[k + 1] - 1 : d.own_seq;
      auto it = stored.find({d.doc, d.node.value, d.own_starts[k]});
      const int copies = it == stored.end() ? 0 : it->second;
      ++made;
      stored_made += copies > 0 ? 1 : 0;
      duplicated += copies > 1 ? 1 : 0;
      if (end <= d.acked_seq) {
        ++acked;
        acked_missing += copies == 0 ? 1 : 0;
        acked_duplicated += copies > 1 ? 1 : 0;
      }
    }
  }
  const bool ok = error.empty() && acked_missing == 0 && acked_duplicated == 0 && duplicated == 0 &&
                  all_s >= 0 && before_kill_s >= 0 && before_kill_s <= f.failover_s + 5 &&
                  all_s <= 5;
  std::printf(
      "{\"bench\":\"failover\",\"store\":\"postgres\",\"relays\":%zu,\"killed\":1,"
      "\"devices\":%d,\"devices_moved\":%llu,%s,\"load_after_kill_s\":%.1f,"
      "\"all_live_after_kill_s\":%.3f,\"converged_on_changes_before_kill_s\":%.3f,"
      "\"converged_after_load_s\":%.3f,\"devices_behind\":%d,\"changes_made\":%llu,"
      "\"changes_stored\":%llu,\"acked\":%llu,\"acked_missing\":%llu,\"acked_duplicated\":%llu,"
      "\"duplicated\":%llu,\"check_error\":\"%s\",\"target_converge_s\":5,\"ok\":%s}\n",
      s.relays.size(), f.devices, static_cast<unsigned long long>(moved), RunJson(r).c_str(),
      f.failover_s, live_s, before_kill_s, all_s, behind, static_cast<unsigned long long>(made),
      static_cast<unsigned long long>(stored_made), static_cast<unsigned long long>(acked),
      static_cast<unsigned long long>(acked_missing),
      static_cast<unsigned long long>(acked_duplicated),
      static_cast<unsigned long long>(duplicated), error.c_str(), ok ? "true" : "false");
  std::fflush(stdout);
  return ok;
}

// Waits (up to 30 s) until a second passes without an arrival and with the relays nearly idle,
// so that the backlog of a run does not spill into the next.
void Quiesce(Setup& s) {
  const auto deadline = Clock::now() + 30s;
  while (Clock::now() < deadline) {
    (void)s.fleet->Take(INT64_MAX);
    const double cpu0 = s.RelayCpu();
    std::this_thread::sleep_for(1s);
    if (s.fleet->Arrived(0) == 0 && s.RelayCpu() - cpu0 < 0.05 * s.relays_n) return;
  }
}

// One configuration: the saturation search, the run at half saturation, and (when `failover`)
// the failover. Returns false when a check failed.
bool RunConfig(const Flags& f, testing::PgServer* pg, int relays, const std::string& dir,
               bool failover, std::vector<Row>* table) {
  bool cgroups = false;
  auto s = StartSetup(f, pg, relays, dir, &cgroups);
  const std::string config = ConfigJson(f, *s, cgroups);
  Row row;
  row.config = s->name + " x" + std::to_string(relays);
  // Unmeasured: the relays load the documents and each device binds its key with its first change.
  (void)Measure(f, *s, pg, f.rate > 0 ? f.rate : f.sat_start, 0, 2, 10s);
  double half = f.rate;
  if (f.rate <= 0) {
    int step = 0;
    // Whether `rate` kept up; the highest that did is the saturation.
    auto try_rate = [&](double rate) {
      Quiesce(*s);
      Run r = Measure(f, *s, pg, rate, f.warmup_s, f.step_s, 10s);
      std::printf("{\"bench\":\"scale_step\",%s,\"step\":%d,%s}\n", config.c_str(), step++,
                  RunJson(r).c_str());
      std::fflush(stdout);
      if (r.kept_up && r.delivered_per_s > row.sat_delivered) {
        row.sat_delivered = r.delivered_per_s;
        row.sat_rate = rate;
      }
      return r.kept_up;
    };
    double rate = f.sat_start, failed = 0;
    for (int i = 0; i < f.steps; ++i, rate *= f.step_factor) {
      if (!try_rate(rate)) {
        row.saturated = true;
        failed = rate;
        break;
      }
    }
    // Then halves the interval between the highest rate that kept up and the lowest that did not,
    // `refine` times, so that configurations a doubling apart are told apart.
    double ok = row.sat_rate;
    for (int i = 0; failed > 0 && ok > 0 && i < f.refine; ++i) {
      const double mid = (ok + failed) / 2;
      (try_rate(mid) ? ok : failed) = mid;
    }
    half = row.sat_rate > 0 ? row.sat_rate / 2 : f.sat_start / 2;
  }
  Quiesce(*s);
  row.half = Measure(f, *s, pg, half, f.warmup_s, f.duration_s, 20s);
  std::printf(
      "{\"bench\":\"scale\",%s,\"saturated\":%s,\"saturation_delivered_per_s\":%.1f,"
      "\"saturation_rate_per_device\":%.3f,\"at\":\"%s\",%s,\"target_p99_across_ms\":50}\n",
      config.c_str(), row.saturated ? "true" : "false", row.sat_delivered, row.sat_rate,
      f.rate > 0 ? "given rate" : "half saturation", RunJson(row.half).c_str());
  std::fflush(stdout);
  table->push_back(row);
  bool ok = true;
  if (failover) {
    Quiesce(*s);
    ok = Failover(f, *s, pg, half);
  }
  if (std::string e = s->fleet->Errors(); !e.empty()) {
    std::printf("{\"bench\":\"error\",\"error\":\"wire devices: %s\"}\n", e.c_str());
    ok = false;
  }
  s->fleet.reset();
  s->relays.clear();  // SIGTERM, then wait
  return ok;
}

[[noreturn]] void Usage() {
  std::fprintf(stderr,
               "usage: weft-scale-bench [--relay-bin PATH] [--devices N] [--documents N]\n"
               "         [--relays 1,2,3] [--no-baseline] [--no-failover] [--open]\n"
               "         [--sat-start EDITS_PER_S] [--step-factor F] [--steps N] [--refine N]\n"
               "         [--step-duration S] [--warmup S] [--rate EDITS_PER_S] [--duration S]\n"
               "         [--failover-duration S] [--relay-cpu CORES] [--relay-threads N]\n"
               "         [--wire-threads N]\n"
               "  rates are edits a second per device; --rate skips the saturation search;\n"
               "  --relay-cpu: each relay's CPU quota in a cgroup when writable (0: none)\n");
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  Flags f;
  f.relay_bin = (fs::path(argv[0]).parent_path() / "../../sync-server/weft-relay").string();
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) Usage();
      return argv[++i];
    };
    if (a == "--relay-bin") {
      f.relay_bin = value();
    } else if (a == "--devices") {
      f.devices = std::atoi(value().c_str());
    } else if (a == "--documents") {
      f.documents = std::atoi(value().c_str());
    } else if (a == "--relays") {
      f.relays.clear();
      std::stringstream ss(value());
      for (std::string n; std::getline(ss, n, ',');) f.relays.push_back(std::atoi(n.c_str()));
    } else if (a == "--no-baseline") {
      f.baseline = false;
    } else if (a == "--no-failover") {
      f.failover = false;
    } else if (a == "--open") {
      f.open = true;
    } else if (a == "--sat-start") {
      f.sat_start = std::atof(value().c_str());
    } else if (a == "--step-factor") {
      f.step_factor = std::atof(value().c_str());
    } else if (a == "--steps") {
      f.steps = std::atoi(value().c_str());
    } else if (a == "--refine") {
      f.refine = std::atoi(value().c_str());
    } else if (a == "--step-duration") {
      f.step_s = std::atof(value().c_str());
    } else if (a == "--warmup") {
      f.warmup_s = std::atof(value().c_str());
    } else if (a == "--rate") {
      f.rate = std::atof(value().c_str());
    } else if (a == "--duration") {
      f.duration_s = std::atof(value().c_str());
    } else if (a == "--failover-duration") {
      f.failover_s = std::atof(value().c_str());
    } else if (a == "--relay-cpu") {
      f.relay_cpu = std::atof(value().c_str());
    } else if (a == "--relay-threads") {
      f.relay_threads = std::atoi(value().c_str());
    } else if (a == "--wire-threads") {
      f.wire_threads = std::atoi(value().c_str());
    } else {
      Usage();
    }
  }
  if (f.devices < 2 || f.documents < 1 || f.documents > f.devices || f.sat_start <= 0 ||
      f.step_factor <= 1 || f.steps < 1 || f.step_s <= 0 || f.duration_s <= 0 ||
      f.failover_s <= 0 || f.relay_threads < 1 || f.wire_threads < 1 || f.relays.empty() ||
      std::any_of(f.relays.begin(), f.relays.end(), [](int n) { return n < 1 || n > 16; })) {
    Usage();
  }
  if (!fs::exists(f.relay_bin)) Die("no weft-relay at " + f.relay_bin + " (--relay-bin)");
  signal(SIGPIPE, SIG_IGN);
  testing::TempDir dir;
  auto pg = testing::PgServer::Start();
  if (!pg.ok()) Die("PostgreSQL: " + pg.status().ToString());
  bool ok = true;
  std::vector<Row> table;
  if (f.baseline) {
    ok = RunConfig(f, nullptr, 1, dir.File("sqlite"), false, &table) && ok;
  }
  const int most = *std::max_element(f.relays.begin(), f.relays.end());
  for (int n : f.relays) {
    ok = RunConfig(f, pg->get(), n, dir.File("pg" + std::to_string(n)),
                   f.failover && n == most && n >= 2, &table) &&
         ok;
  }
  (*pg)->Stop();
  // Does the highest rate kept up grow with the relays on PostgreSQL?
  std::string by_relays;
  double first = 0, last = 0;
  for (const auto& r : table) {
    if (r.config.rfind("postgres", 0) != 0) continue;
    if (!by_relays.empty()) by_relays += ",";
    by_relays += "\"" + r.config.substr(r.config.find('x') + 1) + "\":" + Fixed(r.sat_delivered);
    if (first == 0) first = r.sat_delivered;
    last = r.sat_delivered;
  }
  std::printf(
      "{\"bench\":\"scale_summary\",\"saturation_delivered_per_s_by_relays\":{%s},"
      "\"last_over_first\":%.2f}\n",
      by_relays.c_str(), first > 0 ? last / first : 0.0);
  std::printf(
      "\nconfig        sat delivered/s  (rate/dev)  | at half: delivered/s  p50/p99 within ms"
      "  p50/p99 across ms  relay cpu us/change\n");
  for (const auto& r : table) {
    const double us =
        r.half.arrived ? r.half.relay_cpu_s / static_cast<double>(r.half.arrived) * 1e6 : 0;
    std::printf("%-13s %15.0f%s  %10.2f  | %21.0f  %8.1f / %-8.1f  %7.1f / %-8.1f  %10.1f\n",
                r.config.c_str(), r.sat_delivered, r.saturated ? " " : "+", r.sat_rate,
                r.half.delivered_per_s, r.half.p50_within, r.half.p99_within, r.half.p50_across,
                r.half.p99_across, us);
  }
  std::printf("(+: every step kept up; saturation is higher)\n");
  std::fflush(stdout);
  return ok ? 0 : 1;
}
