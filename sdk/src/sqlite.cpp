#include "sqlite.h"

namespace weft::sql {

Status FromCode(int rc, sqlite3* db, std::string_view what) {
  std::string msg = std::string(what) + ": " + sqlite3_errstr(rc);
  if (db && sqlite3_errcode(db) == rc) msg += std::string(" (") + sqlite3_errmsg(db) + ")";
  switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_ROW:
    case SQLITE_DONE: return Status::Ok();
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
    case SQLITE_FORMAT: return Status::Corruption(msg);
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return Status(StatusCode::kBusy, msg);
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_TOOBIG:
    case SQLITE_RANGE: return Status::InvalidArgument(msg);
    case SQLITE_PERM:
    case SQLITE_AUTH:
    case SQLITE_READONLY: return Status(StatusCode::kPermissionDenied, msg);
    default: return Status::IOError(msg);
  }
}

Result<Stmt> Stmt::Prepare(sqlite3* db, std::string_view sql) {
  Stmt s;
  s.db_ = db;
  int rc = sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &s.s_, nullptr);
  if (rc != SQLITE_OK) return FromCode(rc, db, "prepare");
  return s;
}

bool Stmt::Step(Status* status) {
  int rc = sqlite3_step(s_);
  if (rc == SQLITE_ROW) return true;
  if (rc != SQLITE_DONE) *status = FromCode(rc, db_, "step");
  return false;
}

Status Stmt::Run() {
  Status s;
  while (Step(&s)) {
  }
  Reset();
  return s;
}

Status Exec(sqlite3* db, std::string_view sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db, std::string(sql).c_str(), nullptr, nullptr, &err);
  std::string msg = err ? err : "";
  sqlite3_free(err);
  if (rc == SQLITE_OK) return Status::Ok();
  return FromCode(rc, db, "exec");
}

Result<Stmt*> StmtCache::Get(const std::string& sql) {
  auto it = stmts_.find(sql);
  if (it == stmts_.end()) {
    auto s = Stmt::Prepare(db_, sql);
    if (!s.ok()) return s.status();
    it = stmts_.emplace(sql, std::move(*s)).first;
  } else {
    it->second.Reset();
  }
  return &it->second;
}

Status StmtCache::Run(const std::string& sql) {
  auto s = Get(sql);
  if (!s.ok()) return s.status();
  return (*s)->Run();
}

}  // namespace weft::sql
