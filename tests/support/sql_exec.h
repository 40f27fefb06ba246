// Runs SQL on a database file through a connection of its own, beside any replica that has it
// open: for tests that damage or inspect what a replica stored.
#pragma once

#include <sqlite3.h>

#include <string>

namespace weft::testing {

// Returns "" on success, else SQLite's message (the caller REQUIREs it empty).
inline std::string ExecSql(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) {
    std::string err = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return "open " + path + ": " + err;
  }
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  std::string out = rc == SQLITE_OK ? "" : (err ? err : "error " + std::to_string(rc));
  sqlite3_free(err);
  if (sqlite3_close(db) != SQLITE_OK && out.empty()) out = "close failed";
  return out;
}

}  // namespace weft::testing
