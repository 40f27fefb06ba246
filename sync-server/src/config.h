// The relay's settings from a configuration file and from command-line flags.
//
// Every setting has one name, used as `--NAME VALUE` on the command line and as `NAME = VALUE`
// in the file (docs/operations.md, "Configuration"). The file is read first, then the flags, so
// a flag overrides the file; a list setting (peer, trust-relay) given as flags replaces the
// file's list. Anything unknown or malformed is refused with where it came from ("FILE:LINE" or
// "--NAME"), before anything starts.
//
// Thread safety: plain values and functions.
#pragma once

#include <string>
#include <vector>

#include "relay.h"
#include "weft/status.h"

namespace weft::relay {

// One setting and where it came from ("FILE:LINE" or "--NAME"), for error messages.
struct Setting {
  std::string name;
  std::string value;
  std::string where;
  // Relative paths in a file are relative to its directory; "" for flags (the working one).
  std::string base_dir;
};

// Whether `name` is a setting; whether it is a switch (a flag without a value: --open, whose file
// form takes true or false).
bool IsSetting(const std::string& name);
bool IsSwitch(const std::string& name);

// Reads a configuration file: `name = value` lines; blank lines and lines starting with `#` are
// ignored, and ` #` starts a comment after a value. kInvalidArgument naming FILE:LINE for a line
// that is not `name = value`, an unknown name, an empty value or a single-valued setting given
// twice; kIOError when the file cannot be read.
Result<std::vector<Setting>> ReadConfigFile(const std::string& path);

// The file's settings, then the flags' (a list setting among the flags drops the file's values
// of it).
std::vector<Setting> MergeSettings(std::vector<Setting> file, const std::vector<Setting>& flags);

// Applies settings in order onto `options` (list settings append). kInvalidArgument naming the
// setting's place for a bad value; `options` may then be partly changed (the relay does not
// start).
Status ApplySettings(const std::vector<Setting>& settings, RelayOptions* options);

}  // namespace weft::relay
