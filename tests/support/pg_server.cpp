// PgServer (pg_server.h): initdb and postgres as child processes, as an unprivileged user.
#include "pg_server.h"

#include <fcntl.h>
#include <grp.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

namespace weft::testing {
namespace {

namespace fs = std::filesystem;

// The directory holding initdb and postgres: $WEFT_PG_BINDIR, else Debian's
// /usr/lib/postgresql/<version>/bin (the newest), else "" (not installed).
std::string FindBinDir() {
  std::error_code ec;
  if (const char* env = std::getenv("WEFT_PG_BINDIR"); env && *env) {
    const fs::path bin(env);
    return fs::exists(bin / "initdb", ec) && fs::exists(bin / "postgres", ec) ? bin.string() : "";
  }
  std::string best;
  int best_version = -1;
  for (const auto& e : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    const fs::path bin = e.path() / "bin";
    if (!fs::exists(bin / "initdb", ec) || !fs::exists(bin / "postgres", ec)) continue;
    const int v = std::atoi(e.path().filename().c_str());
    if (v > best_version) {
      best_version = v;
      best = bin.string();
    }
  }
  return best;
}

// A loopback port nothing listens on now (the kernel's choice).
int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  close(fd);
  return port;
}

struct User {
  bool drop = false;  // running as root: the children run as `uid`/`gid`
  uid_t uid = 0;
  gid_t gid = 0;
};

// Starts `argv` with stdout and stderr appended to `log`, as `user`, dying with this process.
// Everything the child needs is prepared before fork (only async-signal-safe calls after it).
Result<pid_t> Spawn(const std::vector<std::string>& args, const std::string& log,
                    const User& user) {
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) return Status::IOError("fork failed");
  if (pid == 0) {
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    int in = open("/dev/null", O_RDONLY);
    if (fd < 0 || in < 0) _exit(126);
    dup2(in, 0);
    dup2(fd, 1);
    dup2(fd, 2);
    if (user.drop) {
      if (setgroups(0, nullptr) != 0 || setgid(user.gid) != 0 || setuid(user.uid) != 0) {
        _exit(126);
      }
    }
    // Set after setuid (a change of credentials clears it): an aborted test leaves no server.
    prctl(PR_SET_PDEATHSIG, SIGQUIT);
    if (getppid() != parent) _exit(126);
    execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

std::string Tail(const std::string& file) {
  std::ifstream in(file);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  return s.size() > 2000 ? s.substr(s.size() - 2000) : s;
}

}  // namespace

Result<std::unique_ptr<PgServer>> PgServer::Start() {
  const std::string bin = FindBinDir();
  if (bin.empty()) {
    return Status::NotFound(
        "PostgreSQL server binaries (initdb, postgres) not found in $WEFT_PG_BINDIR or under "
        "/usr/lib/postgresql/*/bin: install postgresql-15 (scripts/install-deps.sh) or set "
        "WEFT_PG_BINDIR to their directory");
  }
  User user;
  if (geteuid() == 0) {
    const passwd* pw = getpwnam("nobody");
    if (!pw)
      return Status::NotFound(
          "running as root, and there is no user \"nobody\" to run "
          "PostgreSQL as");
    user = {true, pw->pw_uid, pw->pw_gid};
  }
  std::unique_ptr<PgServer> s(new PgServer());
  std::string tmpl = (fs::temp_directory_path() / "weft-pg-XXXXXX").string();
  if (!mkdtemp(tmpl.data())) return Status::IOError("cannot make a temporary directory");
  s->dir_ = tmpl;
  if (user.drop && chown(s->dir_.c_str(), user.uid, user.gid) != 0) {
    return Status::IOError("cannot give " + s->dir_ + " to the user PostgreSQL runs as");
  }
  const std::string log = s->dir_ + "/server.log";
  const std::string data = s->dir_ + "/data";

  auto initdb = Spawn({bin + "/initdb", "-D", data, "-U", "weft", "-A", "trust", "-E", "UTF8",
                       "--locale=C", "--no-sync", "--no-instructions"},
                      log, user);
  if (!initdb.ok()) return initdb.status();
  int status = 0;
  waitpid(*initdb, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return Status::IOError("initdb failed (status " + std::to_string(status) + "):\n" + Tail(log));
  }

  s->bin_ = bin;
  s->drop_ = user.drop;
  s->uid_ = user.uid;
  s->gid_ = user.gid;
  // A port free a moment ago may be taken by the time the server binds it: try a few.
  for (int attempt = 0; attempt < 5; ++attempt) {
    s->port_ = FreePort();
    if (s->port_ == 0) return Status::IOError("no free loopback port");
    bool exited = false;
    Status st = s->Launch(&exited);
    if (st.ok()) return s;
    if (!exited) return st;
  }
  return Status::IOError("postgres did not start:\n" + Tail(log));
}

Status PgServer::Launch(bool* exited) {
  *exited = false;
  const std::string log = dir_ + "/server.log";
  auto pid = Spawn({bin_ + "/postgres", "-D", dir_ + "/data", "-p", std::to_string(port_), "-c",
                    "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=" + dir_, "-c",
                    "fsync=off", "-c", "full_page_writes=off", "-c", "max_connections=200"},
                   log, User{drop_, uid_, gid_});
  if (!pid.ok()) return pid.status();
  pid_ = *pid;
  const std::string probe = ConnInfo("postgres") + "?connect_timeout=2";
  int status = 0;
  for (int i = 0; i < 600; ++i) {  // up to a minute (a loaded machine)
    if (PQping(probe.c_str()) == PQPING_OK) return Status::Ok();
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      *exited = true;
      return Status::IOError("postgres exited:\n" + Tail(log));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  Stop();
  return Status::IOError("postgres did not accept connections within a minute:\n" + Tail(log));
}

Status PgServer::StartAgain() {
  if (pid_ > 0) return Status::Ok();
  // The port was just this server's: a restart takes it again (a few tries while it frees).
  Status s;
  for (int attempt = 0; attempt < 20; ++attempt) {
    bool exited = false;
    s = Launch(&exited);
    if (s.ok() || !exited) return s;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  return s;
}

Result<PgServer*> PgServer::Shared() {
  static std::mutex mu;
  static std::unique_ptr<PgServer> server;
  static Status failed;
  std::lock_guard lock(mu);
  if (server) return server.get();
  if (!failed.ok()) return failed;
  auto s = Start();
  if (!s.ok()) {
    failed = s.status();
    return failed;
  }
  server = std::move(*s);
  return server.get();
}

PgServer::~PgServer() {
  Stop();
  std::error_code ec;
  if (!dir_.empty()) fs::remove_all(dir_, ec);
}

void PgServer::Stop() {
  if (pid_ <= 0) return;
  kill(pid_, SIGINT);
  int status = 0;
  for (int i = 0; i < 200; ++i) {
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  kill(pid_, SIGKILL);
  waitpid(pid_, &status, 0);
  pid_ = -1;
}

Status PgServer::RunTool(const std::string& tool, const std::vector<std::string>& args) {
  const std::string bin = FindBinDir();
  if (bin.empty()) return Status::NotFound("PostgreSQL is not installed (install postgresql-15)");
  std::string cmd = "'" + bin + "/" + tool + "'";
  for (const std::string& a : args) cmd += " '" + a + "'";  // the tests' own arguments
  cmd += " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return Status::IOError("cannot run " + tool);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int status = pclose(p);
  if (status != 0) return Status::IOError(tool + " failed: " + out);
  return Status::Ok();
}

std::string PgServer::ConnInfo(const std::string& db) const {
  return "postgres://weft@127.0.0.1:" + std::to_string(port_) + "/" + db;
}

Status PgServer::RunSql(const std::string& conninfo, const std::string& sql) {
  PGconn* c = PQconnectdb(conninfo.c_str());
  Status s;
  if (PQstatus(c) != CONNECTION_OK) {
    s = Status::IOError(std::string("cannot connect to the test server: ") + PQerrorMessage(c));
  } else {
    PGresult* r = PQexec(c, sql.c_str());
    const auto st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
      s = Status::IOError(sql + ": " + PQresultErrorMessage(r));
    }
    PQclear(r);
  }
  PQfinish(c);
  return s;
}

Result<std::string> PgServer::CreateDatabase() {
  std::string name;
  {
    std::lock_guard lock(mu_);
    name = "weft_test_" + std::to_string(next_db_++);
  }
  // `name` is made here from a counter, never from input.
  WEFT_RETURN_IF_ERROR(RunSql(ConnInfo("postgres"), "CREATE DATABASE " + name));
  return ConnInfo(name);
}

Result<std::unique_ptr<PgSession>> PgSession::Open(const std::string& conninfo) {
  std::unique_ptr<PgSession> s(new PgSession());
  s->conn_ = PQconnectdb(conninfo.c_str());
  if (PQstatus(s->conn_) != CONNECTION_OK) {
    return Status::IOError(std::string("cannot connect to the test server: ") +
                           PQerrorMessage(s->conn_));
  }
  return s;
}

PgSession::~PgSession() {
  if (conn_) PQfinish(conn_);
}

Result<std::string> PgSession::Exec(const std::string& sql) {
  PGresult* r = PQexec(conn_, sql.c_str());
  const auto st = PQresultStatus(r);
  Result<std::string> out = std::string();
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    out = Status::IOError(sql + ": " + PQresultErrorMessage(r));
  } else if (PQntuples(r) > 0 && PQnfields(r) > 0) {
    out = std::string(PQgetvalue(r, 0, 0));
  }
  PQclear(r);
  return out;
}

Result<std::vector<std::vector<std::string>>> PgSession::Query(
    const std::string& sql, const std::vector<std::string>& params) {
  std::vector<const char*> values;
  for (const std::string& p : params) values.push_back(p.c_str());
  PGresult* r = PQexecParams(conn_, sql.c_str(), static_cast<int>(values.size()), nullptr,
                             values.data(), nullptr, nullptr, 0);
  const auto st = PQresultStatus(r);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    Status s = Status::IOError(sql + ": " + PQresultErrorMessage(r));
    PQclear(r);
    return s;
  }
  std::vector<std::vector<std::string>> rows(PQntuples(r));
  for (int i = 0; i < PQntuples(r); ++i) {
    for (int j = 0; j < PQnfields(r); ++j) {
      rows[i].emplace_back(PQgetvalue(r, i, j), PQgetlength(r, i, j));
    }
  }
  PQclear(r);
  return rows;
}

}  // namespace weft::testing
