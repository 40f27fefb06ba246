// A fault-injecting SQLite VFS, for tests: the storage seam that lets a test fail the Nth write
// or sync of the database, for every N, and check that nothing is lost or left half done.
//
// FaultVfs registers a VFS under a name of its own that wraps the default VFS, forwarding every
// call. A replica uses it through ReplicaOptions::vfs = fault.name(). Armed, it counts the xWrite
// or xSync calls on every file the VFS opened (database, WAL, journal) and makes the Nth one (and,
// when persistent, every one after it) fail without touching the file, returning
// SQLITE_IOERR_WRITE or SQLITE_IOERR_FSYNC as a failing disk would.
//
// Thread safety: every method may be called from any thread, also while SQLite uses the VFS.
// Ownership: the FaultVfs must outlive every connection opened through it; its destructor
// unregisters the VFS. No SQLite type appears here: the header is usable without sqlite3.h.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace weft::testing {

class FaultVfs {
 public:
  enum class Op { kWrite, kSync };

  // Registers a VFS called `name` (not made the default). A name already registered is replaced.
  explicit FaultVfs(std::string name);
  ~FaultVfs();
  FaultVfs(const FaultVfs&) = delete;
  FaultVfs& operator=(const FaultVfs&) = delete;

  const std::string& name() const;

  // Resets the counters and fails the `nth` (1-based) `op` from now on; with `persistent`, also
  // every `op` after it.
  void Arm(Op op, uint64_t nth, bool persistent = false);
  // Stops failing; the counters keep counting.
  void Disarm();
  // How many `op` calls there were since the last Arm (or since construction).
  uint64_t Count(Op op) const;
  // How many calls were failed since the last Arm.
  uint64_t Failures() const;
  // Whether the armed fault was reached since the last Arm.
  bool Fired() const { return Failures() > 0; }
  // With `skip`, a sync that does not fail is counted and reported done without reaching the
  // disk: for fault tests that need not survive power loss and should not wait for fsync. Never
  // for a crash test.
  void SkipRealSyncs(bool skip);

  struct State;  // shared with the VFS callbacks

 private:
  std::unique_ptr<State> state_;
};

}  // namespace weft::testing
