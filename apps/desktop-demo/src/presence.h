// Presence payloads of the demo: who is in the document, in which colour, and where their cursor
// and selection are, as stable text anchors (so they stay on the same characters while others
// edit). Payloads come from other peers: Decode validates everything and never crashes.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "weft/crdt/sequence.h"

namespace weft::demo {

struct Presence {
  std::string name;   // at most kMaxNameBytes, no control characters
  std::string color;  // "#rrggbb"
  // The cursor and the other end of the selection (equal when nothing is selected); absent when
  // the peer has no cursor in the text yet.
  std::optional<crdt::Anchor> cursor;
  std::optional<crdt::Anchor> anchor;
};

inline constexpr size_t kMaxNameBytes = 64;

std::string EncodePresence(const Presence& p);
// nullopt for anything that is not a well-formed payload of this version.
std::optional<Presence> DecodePresence(std::string_view payload);

// A display name made safe for a payload: control characters dropped, cut to kMaxNameBytes on a
// UTF-8 boundary; "anonymous" when nothing is left.
std::string SanitizeName(std::string_view name);

}  // namespace weft::demo
