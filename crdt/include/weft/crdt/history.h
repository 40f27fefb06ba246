// Compact storage of a document's history: a run of changes encoded column by column (a "history
// segment"), and the checksum that guards stored change blobs and segments.
//
// A change blob (EncodeChange) spends most of its bytes on what the previous change already said:
// the author, the next seq, the same dependencies, a Lamport time one higher, an insert right after
// the previous one. A segment stores each field of every change in its own column, as the
// difference from what the previous change predicts, run-length encoded, so a run of typing costs
// about the bytes of the text typed. The format is in docs/storage.md.
//
// Stateless functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "weft/crdt/document.h"
#include "weft/status.h"

namespace weft::crdt {

// CRC-32C (Castagnoli) of `data`: detects every burst error up to 32 bits and random damage with
// probability 1 - 2^-32.
uint32_t Crc32c(std::string_view data);

// Limits on a decoded segment (untrusted bytes): at most this many changes and ops.
inline constexpr uint64_t kMaxSegmentChanges = 1ull << 20;
inline constexpr uint64_t kMaxSegmentOps = 1ull << 22;

// Encodes `changes` (at least one, at most kMaxSegmentChanges, each one DecodeChange could
// return) as a segment, checksum included. The order is kept.
std::string EncodeSegment(const std::vector<const Change*>& changes);
std::string EncodeSegment(const std::vector<Change>& changes);

// Decodes a segment: checks the checksum, then every field as DecodeChange would; kCorruption on
// any damage, kUnsupportedVersion on a newer format. DecodeSegment(EncodeSegment(cs)) == cs.
Result<std::vector<Change>> DecodeSegment(std::string_view bytes);

}  // namespace weft::crdt
