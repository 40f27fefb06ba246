// A real PostgreSQL server for tests: initdb into a new temporary directory, then `postgres` on a
// free loopback port, stopped by its PID (and the directory removed) when the object dies. Tests
// never reach beyond this machine: the server listens on 127.0.0.1 and a socket in its directory.
//
// PostgreSQL refuses to run as root, and tests run as root: the server then runs as the
// unprivileged user "nobody" (the directory is made its own). The binaries are a declared
// dependency (scripts/install-deps.sh): when they are missing, Start fails with a message saying
// so, and a test that needs a server fails rather than passing silently.
//
// Thread safety: Start, Shared and CreateDatabase may be called from any thread; Stop and
// StartAgain by one thread at a time (the test's).
#pragma once

#include <sys/types.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "weft/status.h"

struct pg_conn;  // libpq's PGconn

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
  // Starts the server stopped by Stop again, on the same data directory and port (a restart
  // under running clients); OK at once when it runs. kIOError when it does not come up.
  Status StartAgain();

 private:
  PgServer() = default;
  // Runs `postgres` on dir_/data and port_ and waits until it accepts connections; kIOError
  // (`exited`: it exited, perhaps because the port was taken) otherwise.
  Status Launch(bool* exited);
  std::string dir_;    // the temporary directory: data/, the socket, the log
  std::string bin_;    // the PostgreSQL binaries' directory
  bool drop_ = false;  // the server runs as uid_/gid_ (this process is root)
  uid_t uid_ = 0;
  gid_t gid_ = 0;
  int port_ = 0;
  pid_t pid_ = -1;
  std::mutex mu_;
  int next_db_ = 1;
};

// One connection of a test's own, to hold a transaction open across statements (a row lock a
// store must wait for). Not thread safe; closed when it dies.
class PgSession {
 public:
  // kIOError when the server cannot be reached.
  static Result<std::unique_ptr<PgSession>> Open(const std::string& conninfo);
  ~PgSession();
  PgSession(const PgSession&) = delete;
  PgSession& operator=(const PgSession&) = delete;
  // Runs `sql` (BEGIN, SELECT ... FOR UPDATE, COMMIT, ...); the first value of its first row as
  // text ("" when none).
  Result<std::string> Exec(const std::string& sql);
  // Runs the one statement `sql` with the text parameters `params` ($1, $2, ...); every row's
  // values as text (a NULL as ""). kIOError with the server's message when it fails.
  Result<std::vector<std::vector<std::string>>> Query(const std::string& sql,
                                                      const std::vector<std::string>& params = {});

 private:
  PgSession() = default;
  ::pg_conn* conn_ = nullptr;
};

}  // namespace weft::testing
