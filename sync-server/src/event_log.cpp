// See event_log.h.
#include "event_log.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <ctime>

#include "weft/json.h"

namespace weft::relay {
namespace {

// RFC 3339, UTC, with milliseconds.
std::string TimeOf(std::chrono::system_clock::time_point when) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(when.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms % 1000));
  return buf;
}

// A text value: bare when it is one plain word, else quoted as a JSON string.
std::string TextValue(const std::string& s) {
  bool plain = !s.empty();
  for (unsigned char c : s) {
    if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c >= 0x7f) plain = false;
  }
  return plain ? s : json::Serialize(json::Value::Str(s));
}

}  // namespace

std::string FormatEvent(LogFormat format, const sync::LogEvent& e,
                        std::chrono::system_clock::time_point when) {
  if (format == LogFormat::kNone) return "";
  const std::string node = e.node.valid() ? e.node.ToHex() : "";
  if (format == LogFormat::kJson) {
    json::Value v = json::Value::MakeObject();
    v.Set("time", json::Value::Str(TimeOf(when)));
    v.Set("level", json::Value::Str(e.level));
    v.Set("event", json::Value::Str(e.event));
    if (e.session != 0) v.Set("session", json::Value::Number(static_cast<double>(e.session)));
    if (!node.empty()) v.Set("node", json::Value::Str(node));
    if (*e.peer) v.Set("peer", json::Value::Str(e.peer));
    if (!e.document.empty()) v.Set("document", json::Value::Str(e.document));
    json::Value counts = json::Value::MakeObject();
    for (const auto& [name, n] : e.counts) counts.Set(name, json::Value::Number(double(n)));
    v.Set("counts", std::move(counts));
    if (!e.error.empty()) v.Set("error", json::Value::Str(e.error));
    return json::Serialize(v) + "\n";
  }
  std::string line = TimeOf(when) + " " + e.level + " " + e.event;
  if (e.session != 0) line += " session=" + std::to_string(e.session);
  if (!node.empty()) line += " node=" + node;
  if (*e.peer) line += std::string(" peer=") + e.peer;
  if (!e.document.empty()) line += " document=" + TextValue(e.document);
  for (const auto& [name, n] : e.counts) line += std::string(" ") + name + "=" + std::to_string(n);
  if (!e.error.empty()) line += " error=" + TextValue(e.error);
  return line + "\n";
}

void EventLog::Write(const sync::LogEvent& e) {
  if (!enabled()) return;
  std::string line = FormatEvent(format_, e, std::chrono::system_clock::now());
  std::lock_guard lock(mu_);
  const char* p = line.data();
  size_t left = line.size();
  while (left > 0) {
    ssize_t n = ::write(fd_, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // a log that cannot be written is dropped, never fatal
    p += n;
    left -= static_cast<size_t>(n);
  }
}

}  // namespace weft::relay
