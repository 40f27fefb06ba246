// A thin RAII layer over the SQLite C API, private to the SDK: a connection, prepared statements,
// and the mapping of SQLite result codes to Status.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

#include "weft/status.h"

namespace weft::sql {

// Maps a SQLite result code (and the connection's message) to a Status.
Status FromCode(int rc, sqlite3* db, std::string_view what);

class Stmt {
 public:
  Stmt() = default;
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  Stmt(Stmt&& o) noexcept : db_(o.db_), s_(o.s_) { o.s_ = nullptr; }
  Stmt& operator=(Stmt&& o) noexcept {
    std::swap(db_, o.db_);
    std::swap(s_, o.s_);
    return *this;
  }
  ~Stmt() { sqlite3_finalize(s_); }

  static Result<Stmt> Prepare(sqlite3* db, std::string_view sql);

  Stmt& Bind(int i, int64_t v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  Stmt& Bind(int i, std::string_view text) {
    sqlite3_bind_text(s_, i, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& BindBlob(int i, std::string_view blob) {
    sqlite3_bind_blob(s_, i, blob.data(), static_cast<int>(blob.size()), SQLITE_TRANSIENT);
    return *this;
  }
  // Steps once: true with a row, false when done; errors through `status`.
  bool Step(Status* status);
  // Steps to completion (for statements without rows).
  Status Run();
  void Reset() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }

  int64_t Int(int col) const { return sqlite3_column_int64(s_, col); }
  std::string Text(int col) const {
    auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s_, col));
    return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(s_, col))) : std::string();
  }
  std::string_view Blob(int col) const {
    auto* p = static_cast<const char*>(sqlite3_column_blob(s_, col));
    return p ? std::string_view(p, static_cast<size_t>(sqlite3_column_bytes(s_, col)))
             : std::string_view();
  }
  bool IsNull(int col) const { return sqlite3_column_type(s_, col) == SQLITE_NULL; }

 private:
  sqlite3* db_ = nullptr;
  sqlite3_stmt* s_ = nullptr;
};

// Runs SQL without results (one or more statements).
Status Exec(sqlite3* db, std::string_view sql);

// The prepared statements of one connection, kept for reuse: a statement run on every commit
// or read is parsed once, not every time. Destroy it before closing the connection.
class StmtCache {
 public:
  explicit StmtCache(sqlite3* db = nullptr) : db_(db) {}
  void set_db(sqlite3* db) { db_ = db; }
  // The statement for `sql` (one statement), reset and without bindings; prepared on first use.
  Result<Stmt*> Get(const std::string& sql);
  // Runs `sql` (one statement without rows) through the cache.
  Status Run(const std::string& sql);
  void Clear() { stmts_.clear(); }

 private:
  sqlite3* db_;
  std::unordered_map<std::string, Stmt> stmts_;
};

}  // namespace weft::sql
