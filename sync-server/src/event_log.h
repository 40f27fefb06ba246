// The relay's event log lines (RelayOptions::log_format; docs/operations.md, "Logs").
//
// text:  2026-12-07T05:20:00.123Z info session.open session=3 node=1f2e... peer=device
// json:  {"time":"2026-12-07T05:20:00.123Z","level":"info","event":"session.open","session":3,
//         "node":"1f2e...","peer":"device","counts":{}}
//
// Only the fields of sync::LogEvent reach a line: identifiers, counts and error messages, never
// a document's content or a key's secret half.
//
// Thread safety: EventLog::Write may be called from any thread (a line is one write(2)).
#pragma once

#include <chrono>
#include <mutex>
#include <string>

#include "relay.h"
#include "sync/hub.h"

namespace weft::relay {

// One line (with its newline) for `e` at `when`; "" for LogFormat::kNone.
std::string FormatEvent(LogFormat format, const sync::LogEvent& e,
                        std::chrono::system_clock::time_point when);

// Writes formatted events to a file descriptor (stderr by default), a whole line at a time.
class EventLog {
 public:
  explicit EventLog(LogFormat format, int fd = 2) : format_(format), fd_(fd) {}
  bool enabled() const { return format_ != LogFormat::kNone; }
  void Write(const sync::LogEvent& e);

 private:
  LogFormat format_;
  int fd_;
  std::mutex mu_;
};

}  // namespace weft::relay
