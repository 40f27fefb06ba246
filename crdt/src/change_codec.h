// Internal to crdt: the encoding of one op, shared by the change codec (document.cpp) and the
// history segment codec (history.cpp), which stores ops it has no column for in this form.
#pragma once

#include "weft/crdt/document.h"
#include "weft/crdt/encoding.h"

namespace weft::crdt::internal {

// Appends `op` as a change blob holds it.
void EncodeOp(Writer& w, const Op& op);
// Reads one op written by EncodeOp, validating its structure; a failure is left in `r`.
Op DecodeOp(Reader& r);

}  // namespace weft::crdt::internal
