// Per-document access lists: who owns a document and who may administer, write or read it,
// replicated with the document as ordinary ops (Op::Type::kAccess) and evaluated by the same
// deterministic rules on every node.
//
// A document without a create op is public: anyone may write, and every other access op is
// refused in it. A create op names the owner; it is valid only in the first change a node applies
// to a document (a second creator cannot become co-owner of someone else's document: a node that
// received the squatter's create first holds a different document from everyone else, which only
// hurts the squatter). Each actor (NodeId) is bound to one principal (a device's Ed25519 public
// key) by a bind op in one of its own changes; crdt stores the bind's proof and never interprets
// it (the SDK makes and checks it). In an owned document, every change's author must be bound.
//
// The list is a pure function of the SET of access ops it holds, never of their arrival order:
//  1. The ops are ordered by (Lamport time of their change, author, seq): a total order that
//     respects causality. Each grant and revoke records in Op::observed the access ops its author
//     held (per actor, the last seq of an access op held); X "saw" an op Y when X.observed names
//     Y's dot and Y comes before X in the order (a claim of having seen a later op counts for
//     nothing, so a back-dated op cannot claim to follow the revoke that cuts it).
//  2. The walk: the owner (the create's principal) holds kOwner, nobody else a role. The grants
//     and revokes are taken in order; one is valid when its author is bound, its author's key
//     holds the role it needs at that point of the walk (grant of reader or writer, revoke of a
//     non-admin: admin or owner; grant of admin, revoke of an admin: owner; nobody may grant or
//     revoke the owner's key; grant of kOwner or kNone is never valid) and it is not cut off: an
//     op of actor a bound to key k is cut off by a valid revoke R of k when the op's seq is past
//     R's cutoff for a (R's context: the last seq of a the revoker held; 0 when absent) and the
//     op did not see R. A valid revoke sets its principal's role to kNone; a valid grant sets
//     the role, except that a grant that did not see a valid revoke of the same principal earlier
//     in the order does not undo it (a revoke concurrent with a grant wins).
//  3. Because a revoke later in the order can cut an op earlier in it, the walk is repeated, each
//     time with the cutoffs of the revokes valid in the previous one (the first with none), until
//     the set of valid ops stops changing or kMaxAccessRounds walks were made.
//
// When an access op arrives, it is checked against the ops it saw (its causal past, whatever
// else the node holds, so every node decides alike): a grant or revoke whose author lacked the
// role in the list made of the ops it saw is refused, and so is its whole change. A concurrent
// revoke that cuts it later voids it in the walk (it stays held, without effect).
//
// Data ops (every op that is not kAccess) are checked when their change is applied, against the
// list the node holds then (CheckWrite). A bind is accepted only when its key is the owner's or
// a grant of writer or admin to it is held (valid or not): a key that was never given the right
// to write has nothing to bind an actor for (Check says why this rule gives every node the same
// answer). Consequence: a change a node accepted before it learned
// of the revoke that cuts it off stays there; a node that learned of the revoke first refuses it.
//
// AccessList is a plain value; not thread-safe for concurrent mutation.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "weft/crdt/causality.h"
#include "weft/status.h"

namespace weft::crdt {

enum class Role : uint8_t { kNone = 0, kReader = 1, kWriter = 2, kAdmin = 3, kOwner = 4 };
// "none", "reader", "writer", "admin", "owner".
const char* RoleName(Role role);
// The role named by RoleName's spelling; nullopt for anything else.
std::optional<Role> RoleFromName(std::string_view name);

// A device's Ed25519 public key: exactly kPrincipalBytes raw bytes.
using Principal = std::string;
inline constexpr size_t kPrincipalBytes = 32;
// The longest bind proof a change may carry.
inline constexpr size_t kMaxProofBytes = 128;
// The longest key record a kKeys op may carry (a record for 10,000 readers is about 1.1 MiB).
inline constexpr size_t kMaxKeyRecordBytes = 2 << 20;
// The bound on evaluation rounds (see the top of this file).
inline constexpr int kMaxAccessRounds = 16;

enum class AccessAction : uint8_t {
  kCreate = 1,  // the document's owner := principal (only in the first change a node applies)
  kBind = 2,    // the op's author actor := principal, `proof` the SDK's signature
  kGrant = 3,   // principal := role (reader, writer or admin)
  kRevoke = 4,  // principal loses its role; context: per actor bound to it, the cutoff seq
  // The document's content is end-to-end encrypted (docs/security.md): principal the owner's
  // key; only in the first change, after its create, by the same actor. Fixed for good.
  kEncrypt = 5,
  // A key record of an encrypted document (the SDK's e2e::EncodeKeyRecord bytes in `proof`,
  // opaque here): principal the admin key that signed it, which must be its author's key and
  // hold admin or owner in the list of the access ops it observed (as a grant of reader).
  kKeys = 6,
};
const char* AccessActionName(AccessAction action);

// One access op as the list holds it: the op's fields, its dot and its change's Lamport time.
struct AccessEntry {
  Dot dot;  // (author actor, seq)
  uint64_t lamport = 0;
  AccessAction action = AccessAction::kCreate;
  Principal principal;
  Role role = Role::kNone;
  std::string proof;
  VersionVector context;   // kRevoke: the cutoffs
  VersionVector observed;  // kGrant, kRevoke: the access ops its author held

  friend bool operator==(const AccessEntry&, const AccessEntry&) = default;
};

// The order of the walk: (lamport, author, seq).
bool AccessOrder(const AccessEntry& a, const AccessEntry& b);

// Checks the fields of one access op alone (action known, principal of kPrincipalBytes, a role
// only in a grant and then reader, writer or admin, a proof only in a bind and at most
// kMaxProofBytes, cutoffs only in a revoke, observed ops only in a grant or revoke):
// kInvalidArgument saying what is wrong.
Status ValidateAccessFields(const AccessEntry& e);

class AccessList {
 public:
  // Whether a create op is held (the document has an owner).
  bool owned() const { return owner_.has_value(); }
  // Whether a kEncrypt op is held: the document's content is end-to-end encrypted.
  bool encrypted() const { return encrypted_; }
  // The owner's key, when owned.
  const std::optional<Principal>& owner() const { return owner_; }
  // The role of `key`: kNone when absent or revoked.
  Role RoleOf(const Principal& key) const;
  // Every principal with a role above kNone (the owner as kOwner).
  std::map<Principal, Role> Members() const;
  // The key `actor` is bound to (valid until the list changes); nullptr when it is not bound.
  const Principal* KeyOf(NodeId actor) const;
  // The actors bound to `key`, in NodeId order.
  std::vector<NodeId> ActorsOf(const Principal& key) const;
  // Whether `author` may write data ops in a change whose last seq is `end_seq`: OK in a public
  // document, OK when its key holds writer or more, OK when its key lost such a role by a revoke
  // whose cutoff for `author` is at least `end_seq`; else kPermissionDenied saying why (not
  // bound, no role, a reader, cut off by a revoke).
  Status CheckWrite(NodeId author, uint64_t end_seq) const;

  // Whether the access op `e` (its lamport, dot and fields set; its author's earlier ops of the
  // same change already added) may be added, by the rules at the top of this file: OK, or
  // kPermissionDenied (no right), kCorruption (names an access op or seq it cannot have seen:
  // `held` is what the node holds besides the earlier seqs of e's author), kInvalidArgument (a
  // malformed op). `first_change`: e is in the first change the node applies.
  Status Check(const AccessEntry& e, const VersionVector& held, bool first_change) const;
  // Adds `e` (checked by the caller; an entry with a dot held already is ignored) and evaluates
  // the list again.
  void Add(AccessEntry e);

  // Every access op held, in walk order.
  const std::vector<AccessEntry>& entries() const { return entries_; }
  // Whether entries()[i] is valid in the walk (creates and binds are always valid).
  bool valid(size_t i) const { return valid_[i]; }
  // A list of `entries` (untrusted: from a snapshot). kCorruption when they are not in strict
  // walk order, malformed, hold two creates or bind one actor to two keys.
  static Result<AccessList> FromEntries(std::vector<AccessEntry> entries);

  friend bool operator==(const AccessList& a, const AccessList& b) {
    return a.entries_ == b.entries_;
  }

 private:
  void Evaluate();
  // Whether `key` is the owner's or a grant of writer or admin to it is held.
  bool WasWriter(const Principal& key) const;

  std::vector<AccessEntry> entries_;
  // Derived from entries_ by Evaluate.
  std::vector<bool> valid_;
  std::optional<Principal> owner_;
  bool encrypted_ = false;
  std::map<NodeId, Principal> bindings_;
  std::map<Principal, Role> roles_;
  // Per actor whose key lost writer rights (or more) by a valid revoke: the revoke's cutoff.
  std::map<NodeId, uint64_t> write_cutoffs_;
  // Per bound actor, the role of its key, sorted by actor: CheckWrite's fast path (one search
  // of a contiguous array, run for every change applied).
  std::vector<std::pair<NodeId, Role>> actor_roles_;
  void IndexActorRoles();
};

}  // namespace weft::crdt
