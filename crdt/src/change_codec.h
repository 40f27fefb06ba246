// Internal to crdt: the encoding of one op (and of an access op's fields, which snapshots share),
// shared by the change codec (document.cpp) and the history segment codec (history.cpp), which
// stores ops it has no column for in this form.
#pragma once

#include "weft/crdt/access.h"
#include "weft/crdt/document.h"
#include "weft/crdt/encoding.h"

namespace weft::crdt::internal {

// Appends `op` as a change blob holds it.
void EncodeOp(Writer& w, const Op& op);
// Reads one op written by EncodeOp, validating its structure; a failure is left in `r`.
Op DecodeOp(Reader& r);

// Whether `c` holds an access op (its encoding then takes the format that has them).
bool HasAccessOps(const Change& c);
// The access op `op` (Op::Type::kAccess) as an access list holds it.
AccessEntry AccessEntryOf(const Op& op, const Dot& dot, uint64_t lamport);
// The fields of an access op after its action: u8(action) bytes(principal) u8(role) bytes(proof)
// VV(context) VV(observed). Decoding validates them (ValidateAccessFields); a failure is left in
// `r`.
void EncodeAccessFields(Writer& w, const AccessEntry& e);
void DecodeAccessFields(Reader& r, AccessEntry* e);

}  // namespace weft::crdt::internal
