// A real PostgreSQL server for tests: initdb into a new temporary directory, then `postgres` on a
// free loopback port, stopped by its PID (and the directory removed) when the object dies. Tests
// never reach beyond this machine: the server listens on 127.0.0.1 and a socket in its directory.
//
// PostgreSQL refuses to run as root, and tests run as root: the server then runs as the
// unprivileged user "nobody" (the directory is made its own). The binaries are a declared
// dependency (scripts/install-deps.sh): when they are missing, Start fails with a message saying
// so, and a test that needs a server fails rather than passing silently.
//
// Thread safety: Start, Shared and CreateDatabase may be called from any thread.
#pragma once

#include <sys/types.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "weft/status.h"

namespace weft::testing {

class PgServer {
 public:
  // Starts a new server (trust authentication, user "weft", fsync off: tests need no power-loss
  // safety). kNotFound when the PostgreSQL binaries are not installed; kIOError when the server
  // does not start (its log in the message).
  static Result<std::unique_ptr<PgServer>> Start();
  // One server shared by the whole test process, started on first use and stopped at exit.
  static Result<PgServer*> Shared();

  ~PgServer();
  PgServer(const PgServer&) = delete;
  PgServer& operator=(const PgServer&) = delete;

  // Creates a new, empty database and returns its connection string (postgres://...).
  Result<std::string> CreateDatabase();
  // Runs `sql` (one or more statements, no results wanted) on the database `conninfo` names: for
  // tests that reach under a store (damage its rows, end its connections).
  static Status RunSql(const std::string& conninfo, const std::string& sql);
  // Runs PostgreSQL's client program `tool` (pg_dump, pg_restore, ...) of the installed release
  // with `args`, as this process's user; kIOError with its output when it fails.
  static Status RunTool(const std::string& tool, const std::vector<std::string>& args);
  // The connection string of database `db` on this server.
  std::string ConnInfo(const std::string& db) const;
  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  // Stops the server (SIGINT: a fast shutdown; SIGKILL if it lingers) and waits for it.
  void Stop();

 private:
  PgServer() = default;
  std::string dir_;  // the temporary directory: data/, the socket, the log
  int port_ = 0;
  pid_t pid_ = -1;
  std::mutex mu_;
  int next_db_ = 1;
};

}  // namespace weft::testing
