// FaultVfs: a SQLite VFS shim that forwards to the default VFS and fails the Nth write or sync
// (see weft/testing/fault_vfs.h). Modelled on SQLite's own src/test_vfs.c, reduced to the two
// faults the SDK's tests need.
#include "weft/testing/fault_vfs.h"

#include <sqlite3.h>

#include <atomic>

namespace weft::testing {

struct FaultVfs::State {
  std::string name;
  sqlite3_vfs vfs{};            // ours, registered under `name`
  sqlite3_vfs* root = nullptr;  // the default VFS we forward to
  std::atomic<int> armed{0};    // 0: nothing; 1 + static_cast<int>(Op): that op
  std::atomic<bool> persistent{false};
  std::atomic<bool> skip_syncs{false};
  std::atomic<uint64_t> nth{0};
  std::atomic<uint64_t> writes{0}, syncs{0}, failures{0};

  // Counts one `op`; true when it must fail.
  bool Hit(Op op) {
    uint64_t n = (op == Op::kWrite ? writes : syncs).fetch_add(1) + 1;
    if (armed.load() != 1 + static_cast<int>(op)) return false;
    uint64_t target = nth.load();
    if (n == target || (persistent.load() && n > target)) {
      failures.fetch_add(1);
      return true;
    }
    return false;
  }
};

namespace {

using State = FaultVfs::State;

// Our file: the wrapper, followed in the same allocation by the real VFS's file.
struct FaultFile {
  sqlite3_file base;
  State* state;
  sqlite3_file* real;
};

State* StateOf(sqlite3_vfs* vfs) {
  return static_cast<State*>(vfs->pAppData);
}
sqlite3_vfs* Root(sqlite3_vfs* vfs) {
  return StateOf(vfs)->root;
}
FaultFile* Cast(sqlite3_file* f) {
  return reinterpret_cast<FaultFile*>(f);
}
sqlite3_file* Real(sqlite3_file* f) {
  return Cast(f)->real;
}
const sqlite3_io_methods* RealMethods(sqlite3_file* f) {
  return Real(f)->pMethods;
}

// ---- I/O methods: forward, except that a write or sync may be made to fail.

int FileClose(sqlite3_file* f) {
  int rc = RealMethods(f)->xClose(Real(f));
  f->pMethods = nullptr;
  return rc;
}
int FileRead(sqlite3_file* f, void* buf, int amount, sqlite3_int64 offset) {
  return RealMethods(f)->xRead(Real(f), buf, amount, offset);
}
int FileWrite(sqlite3_file* f, const void* buf, int amount, sqlite3_int64 offset) {
  if (Cast(f)->state->Hit(FaultVfs::Op::kWrite)) return SQLITE_IOERR_WRITE;
  return RealMethods(f)->xWrite(Real(f), buf, amount, offset);
}
int FileTruncate(sqlite3_file* f, sqlite3_int64 size) {
  return RealMethods(f)->xTruncate(Real(f), size);
}
int FileSync(sqlite3_file* f, int flags) {
  State* s = Cast(f)->state;
  if (s->Hit(FaultVfs::Op::kSync)) return SQLITE_IOERR_FSYNC;
  if (s->skip_syncs.load()) return SQLITE_OK;
  return RealMethods(f)->xSync(Real(f), flags);
}
int FileSize(sqlite3_file* f, sqlite3_int64* size) {
  return RealMethods(f)->xFileSize(Real(f), size);
}
int FileLock(sqlite3_file* f, int level) {
  return RealMethods(f)->xLock(Real(f), level);
}
int FileUnlock(sqlite3_file* f, int level) {
  return RealMethods(f)->xUnlock(Real(f), level);
}
int FileCheckReservedLock(sqlite3_file* f, int* out) {
  return RealMethods(f)->xCheckReservedLock(Real(f), out);
}
int FileControl(sqlite3_file* f, int op, void* arg) {
  return RealMethods(f)->xFileControl(Real(f), op, arg);
}
int FileSectorSize(sqlite3_file* f) {
  return RealMethods(f)->xSectorSize(Real(f));
}
int FileDeviceCharacteristics(sqlite3_file* f) {
  return RealMethods(f)->xDeviceCharacteristics(Real(f));
}
int FileShmMap(sqlite3_file* f, int region, int size, int extend, void volatile** out) {
  if (RealMethods(f)->iVersion < 2) return SQLITE_IOERR_SHMMAP;
  return RealMethods(f)->xShmMap(Real(f), region, size, extend, out);
}
int FileShmLock(sqlite3_file* f, int offset, int n, int flags) {
  if (RealMethods(f)->iVersion < 2) return SQLITE_IOERR_SHMLOCK;
  return RealMethods(f)->xShmLock(Real(f), offset, n, flags);
}
void FileShmBarrier(sqlite3_file* f) {
  if (RealMethods(f)->iVersion >= 2) RealMethods(f)->xShmBarrier(Real(f));
}
int FileShmUnmap(sqlite3_file* f, int delete_flag) {
  if (RealMethods(f)->iVersion < 2) return SQLITE_OK;
  return RealMethods(f)->xShmUnmap(Real(f), delete_flag);
}
int FileFetch(sqlite3_file* f, sqlite3_int64 offset, int amount, void** out) {
  if (RealMethods(f)->iVersion < 3) {
    *out = nullptr;
    return SQLITE_OK;
  }
  return RealMethods(f)->xFetch(Real(f), offset, amount, out);
}
int FileUnfetch(sqlite3_file* f, sqlite3_int64 offset, void* p) {
  if (RealMethods(f)->iVersion < 3) return SQLITE_OK;
  return RealMethods(f)->xUnfetch(Real(f), offset, p);
}

const sqlite3_io_methods kIoMethods = {
    3,
    FileClose,
    FileRead,
    FileWrite,
    FileTruncate,
    FileSync,
    FileSize,
    FileLock,
    FileUnlock,
    FileCheckReservedLock,
    FileControl,
    FileSectorSize,
    FileDeviceCharacteristics,
    FileShmMap,
    FileShmLock,
    FileShmBarrier,
    FileShmUnmap,
    FileFetch,
    FileUnfetch,
};

// ---- VFS methods: forward to the root VFS (with the root as `this`: the unix VFS keeps its own
// state in pAppData).

int VfsOpen(sqlite3_vfs* vfs, const char* name, sqlite3_file* file, int flags, int* out_flags) {
  FaultFile* f = Cast(file);
  f->base.pMethods = nullptr;
  f->state = StateOf(vfs);
  f->real = reinterpret_cast<sqlite3_file*>(f + 1);
  f->real->pMethods = nullptr;
  int rc = Root(vfs)->xOpen(Root(vfs), name, f->real, flags, out_flags);
  // As test_vfs.c does: the wrapper is open exactly when the real file is, so that SQLite closes
  // the real one through us.
  if (f->real->pMethods) f->base.pMethods = &kIoMethods;
  return rc;
}
int VfsDelete(sqlite3_vfs* vfs, const char* name, int sync_dir) {
  return Root(vfs)->xDelete(Root(vfs), name, sync_dir);
}
int VfsAccess(sqlite3_vfs* vfs, const char* name, int flags, int* out) {
  return Root(vfs)->xAccess(Root(vfs), name, flags, out);
}
int VfsFullPathname(sqlite3_vfs* vfs, const char* name, int n, char* out) {
  return Root(vfs)->xFullPathname(Root(vfs), name, n, out);
}
void* VfsDlOpen(sqlite3_vfs* vfs, const char* name) {
  return Root(vfs)->xDlOpen(Root(vfs), name);
}
void VfsDlError(sqlite3_vfs* vfs, int n, char* out) {
  Root(vfs)->xDlError(Root(vfs), n, out);
}
void (*VfsDlSym(sqlite3_vfs* vfs, void* lib, const char* sym))(void) {
  return Root(vfs)->xDlSym(Root(vfs), lib, sym);
}
void VfsDlClose(sqlite3_vfs* vfs, void* lib) {
  Root(vfs)->xDlClose(Root(vfs), lib);
}
int VfsRandomness(sqlite3_vfs* vfs, int n, char* out) {
  return Root(vfs)->xRandomness(Root(vfs), n, out);
}
int VfsSleep(sqlite3_vfs* vfs, int us) {
  return Root(vfs)->xSleep(Root(vfs), us);
}
int VfsCurrentTime(sqlite3_vfs* vfs, double* out) {
  return Root(vfs)->xCurrentTime(Root(vfs), out);
}
int VfsGetLastError(sqlite3_vfs* vfs, int n, char* out) {
  return Root(vfs)->xGetLastError ? Root(vfs)->xGetLastError(Root(vfs), n, out) : 0;
}
int VfsCurrentTimeInt64(sqlite3_vfs* vfs, sqlite3_int64* out) {
  return Root(vfs)->xCurrentTimeInt64(Root(vfs), out);
}

}  // namespace

FaultVfs::FaultVfs(std::string name) : state_(std::make_unique<State>()) {
  (void)sqlite3_initialize();
  State& s = *state_;
  s.name = std::move(name);
  s.root = sqlite3_vfs_find(nullptr);
  if (sqlite3_vfs* old = sqlite3_vfs_find(s.name.c_str())) (void)sqlite3_vfs_unregister(old);
  sqlite3_vfs& v = s.vfs;
  // Version 2: the root's xCurrentTimeInt64 is all we forward beyond version 1; the system-call
  // hooks of version 3 are for SQLite's own tests.
  v.iVersion = 2;
  v.szOsFile = static_cast<int>(sizeof(FaultFile)) + s.root->szOsFile;
  v.mxPathname = s.root->mxPathname;
  v.zName = s.name.c_str();
  v.pAppData = &s;
  v.xOpen = VfsOpen;
  v.xDelete = VfsDelete;
  v.xAccess = VfsAccess;
  v.xFullPathname = VfsFullPathname;
  v.xDlOpen = VfsDlOpen;
  v.xDlError = VfsDlError;
  v.xDlSym = VfsDlSym;
  v.xDlClose = VfsDlClose;
  v.xRandomness = VfsRandomness;
  v.xSleep = VfsSleep;
  v.xCurrentTime = VfsCurrentTime;
  v.xGetLastError = VfsGetLastError;
  v.xCurrentTimeInt64 = s.root->iVersion >= 2 ? VfsCurrentTimeInt64 : nullptr;
  (void)sqlite3_vfs_register(&v, /*makeDflt=*/0);
}

FaultVfs::~FaultVfs() {
  (void)sqlite3_vfs_unregister(&state_->vfs);
}

const std::string& FaultVfs::name() const {
  return state_->name;
}

void FaultVfs::Arm(Op op, uint64_t nth, bool persistent) {
  State& s = *state_;
  s.armed.store(0);
  s.writes.store(0);
  s.syncs.store(0);
  s.failures.store(0);
  s.nth.store(nth);
  s.persistent.store(persistent);
  s.armed.store(1 + static_cast<int>(op));
}

void FaultVfs::Disarm() {
  state_->armed.store(0);
}

uint64_t FaultVfs::Count(Op op) const {
  return (op == Op::kWrite ? state_->writes : state_->syncs).load();
}

uint64_t FaultVfs::Failures() const {
  return state_->failures.load();
}

void FaultVfs::SkipRealSyncs(bool skip) {
  state_->skip_syncs.store(skip);
}

}  // namespace weft::testing
