// Internals shared by the C API's translation units: handle structs, error slots, the boundary
// guard that turns every C++ failure into a weft_status, and string/scalar conversions.
#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "weft.h"
#include "weft/replica.h"
#include "weft/status.h"
#include "weft/sync.h"

namespace weft::capi {

// The last error message of one handle (guarded: a handle may be shared between threads).
struct ErrSlot {
  mutable std::mutex mu;
  std::string message;
};

// Records a failure in `slot` (may be null) and in this thread's slot; returns the code.
weft_status Fail(ErrSlot* slot, weft_status code, std::string message);
weft_status Report(ErrSlot* slot, const Status& s);

// Runs `f` (returning weft_status), catching anything thrown.
template <typename F>
weft_status Guard(ErrSlot* slot, F&& f) noexcept {
  try {
    return f();
  } catch (const std::bad_alloc&) {
    return Fail(slot, WEFT_INTERNAL, "out of memory");
  } catch (const std::exception& e) {
    try {
      return Fail(slot, WEFT_INTERNAL, std::string("internal error: ") + e.what());
    } catch (...) {
      return WEFT_INTERNAL;
    }
  } catch (...) {
    return Fail(slot, WEFT_INTERNAL, "internal error");
  }
}

// A copy of `s` in a malloc'd NUL-terminated buffer (freed by weft_string_free), or null.
char* CopyOut(std::string_view s, size_t* len);

// Checks a (pointer, length) input string: not NULL with a length, and well-formed UTF-8.
Status CheckText(const char* p, size_t n, const char* what, std::string_view* out);
// A scalar from a C value (scalar types only).
Result<Scalar> ToScalar(const weft_value* v);
// A C value borrowing from `s`.
weft_value FromScalar(const Scalar& s);

// Callbacks that may be ended while running on another thread: End waits until no call is in
// flight (except calls on the ending thread itself) and no new call starts.
class CallbackGate {
 public:
  // Returns false when ended. Pair with Exit.
  bool Enter();
  void Exit();
  void End();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool ended_ = false;
  int inflight_ = 0;
};

// Runs fn inside the gate (nothing when the gate has ended), swallowing exceptions.
void RunGated(CallbackGate& gate, const std::function<void()>& fn);

}  // namespace weft::capi

struct weft_subscription;

struct weft_replica {
  std::unique_ptr<weft::Replica> impl;
  weft::capi::ErrSlot err;
  std::mutex mu;  // guards syncs and subs
  int syncs = 0;
  std::set<weft_subscription*> subs;
  // Resolver gates by document (guarded by mu), so that replacing one waits for the old one.
  std::map<std::string, std::shared_ptr<weft::capi::CallbackGate>> resolvers;
};

struct weft_view {
  const weft::crdt::Document* doc = nullptr;
  weft::crdt::Transaction* txn = nullptr;  // set for a transaction's view (writes allowed)
  weft::capi::ErrSlot* err = nullptr;
};

struct weft_txn {
  weft_view view;
};

struct weft_strings {
  std::vector<std::string> items;
};

struct weft_values {
  struct Entry {
    weft::Scalar scalar;
    int32_t kind = 0;  // 0: scalar, else a weft_type object kind
    weft::crdt::ObjectId object;
    weft::crdt::HlcTimestamp time;
  };
  std::vector<Entry> entries;
  std::optional<weft::crdt::VersionVector> context;
};
