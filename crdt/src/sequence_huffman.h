// Internal to the sequence CRDT: a byte block codec for snapshots (canonical Huffman coding).
//
// A block is either stored raw or Huffman coded, whichever is smaller, so the output is a pure
// function of the input (canonical encodings stay canonical). Decoding validates the code table
// and bounds every allocation by the input size. Stateless functions; thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "weft/crdt/encoding.h"
#include "weft/status.h"

namespace weft::crdt::internal {

// Appends `data` as a block.
void EncodeBlock(Writer& w, std::string_view data);
// Reads a block written by EncodeBlock; kCorruption on bad input.
Result<std::string> DecodeBlock(Reader& r);

}  // namespace weft::crdt::internal
