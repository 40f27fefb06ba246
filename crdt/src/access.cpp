#include "weft/crdt/access.h"

#include <algorithm>
#include <set>
#include <tuple>

#include "change_codec.h"
#include "weft/crdt/encoding.h"

namespace weft::crdt {

const char* RoleName(Role role) {
  switch (role) {
    case Role::kNone: return "none";
    case Role::kReader: return "reader";
    case Role::kWriter: return "writer";
    case Role::kAdmin: return "admin";
    case Role::kOwner: return "owner";
  }
  return "?";
}

std::optional<Role> RoleFromName(std::string_view name) {
  for (Role r : {Role::kNone, Role::kReader, Role::kWriter, Role::kAdmin, Role::kOwner}) {
    if (name == RoleName(r)) return r;
  }
  return std::nullopt;
}

const char* AccessActionName(AccessAction action) {
  switch (action) {
    case AccessAction::kCreate: return "create";
    case AccessAction::kBind: return "bind";
    case AccessAction::kGrant: return "grant";
    case AccessAction::kRevoke: return "revoke";
    case AccessAction::kEncrypt: return "encrypt";
    case AccessAction::kKeys: return "keys";
  }
  return "?";
}

bool AccessOrder(const AccessEntry& a, const AccessEntry& b) {
  return std::tie(a.lamport, a.dot) < std::tie(b.lamport, b.dot);
}

namespace {

Status Denied(std::string message) {
  return Status(StatusCode::kPermissionDenied, std::move(message));
}

// A short, printable name of a key: its first four bytes in hex.
std::string KeyName(const Principal& key) {
  static const char* kHex = "0123456789abcdef";
  std::string out = "key ";
  for (size_t i = 0; i < key.size() && i < 4; ++i) {
    out += kHex[static_cast<unsigned char>(key[i]) >> 4];
    out += kHex[static_cast<unsigned char>(key[i]) & 15];
  }
  return out + "..";
}

bool ChangesRoles(AccessAction a) {
  return a == AccessAction::kGrant || a == AccessAction::kRevoke;
}

// Whether `later` saw `earlier` (both in walk order, `earlier` first): it names it in its
// observed ops, or it is an earlier op of the same actor (always in its causal past).
bool Saw(const AccessEntry& later, const AccessEntry& earlier) {
  if (earlier.dot.node == later.dot.node) return earlier.dot.seq < later.dot.seq;
  return later.observed.Contains(earlier.dot);
}

Role RoleIn(const std::map<Principal, Role>& roles, const Principal& key) {
  auto it = roles.find(key);
  return it == roles.end() ? Role::kNone : it->second;
}

// Whether `e` names the access ops it observed (and is checked against the list they make).
bool NamesObserved(AccessAction a) {
  return ChangesRoles(a) || a == AccessAction::kKeys;
}

// The role the author of `e` needs, given the current role of its target.
Role Needed(const AccessEntry& e, Role target) {
  if (e.action == AccessAction::kKeys) return Role::kAdmin;
  if (e.action == AccessAction::kGrant) return e.role == Role::kAdmin ? Role::kOwner : Role::kAdmin;
  return target >= Role::kAdmin ? Role::kOwner : Role::kAdmin;
}

struct Evaluation {
  std::vector<bool> valid;
  std::optional<Principal> owner;
  std::map<NodeId, Principal> bindings;
  std::map<Principal, Role> roles;
  std::map<NodeId, uint64_t> write_cutoffs;
};

// One walk over `es` (in walk order) with the cutoffs of the revokes `cutting` marks.
void Walk(const std::vector<AccessEntry>& es, const std::vector<bool>& cutting, Evaluation* ev) {
  ev->roles.clear();
  ev->write_cutoffs.clear();
  if (ev->owner) ev->roles[*ev->owner] = Role::kOwner;
  // Valid revokes so far, and revokes whose cutoffs apply, by their principal.
  std::map<Principal, std::vector<size_t>> revoked, cuts;
  for (size_t i = 0; i < es.size(); ++i) {
    if (cutting[i]) cuts[es[i].principal].push_back(i);
  }
  for (size_t i = 0; i < es.size(); ++i) {
    const AccessEntry& e = es[i];
    ev->valid[i] = !ChangesRoles(e.action);
    if (ev->valid[i]) continue;
    auto bound = ev->bindings.find(e.dot.node);
    if (bound == ev->bindings.end()) continue;
    const Principal& key = bound->second;
    bool cut = false;
    if (auto it = cuts.find(key); it != cuts.end()) {
      for (size_t r : it->second) {
        if (r != i && e.dot.seq > es[r].context.Get(e.dot.node) && !(r < i && Saw(e, es[r]))) {
          cut = true;
          break;
        }
      }
    }
    if (cut || (ev->owner && e.principal == *ev->owner)) continue;
    if (e.action == AccessAction::kGrant && (e.role == Role::kNone || e.role == Role::kOwner)) {
      continue;
    }
    Role target = RoleIn(ev->roles, e.principal);
    if (RoleIn(ev->roles, key) < Needed(e, target)) continue;
    ev->valid[i] = true;
    if (e.action == AccessAction::kRevoke) {
      ev->roles.erase(e.principal);
      revoked[e.principal].push_back(i);
      if (target >= Role::kWriter) {
        for (const auto& [actor, k] : ev->bindings) {
          if (k == e.principal) ev->write_cutoffs[actor] = e.context.Get(actor);
        }
      }
      continue;
    }
    // A grant that did not see a valid revoke of its principal before it does not undo it.
    bool overridden = false;
    if (auto it = revoked.find(e.principal); it != revoked.end()) {
      for (size_t r : it->second) overridden = overridden || !Saw(e, es[r]);
    }
    if (!overridden) ev->roles[e.principal] = e.role;
  }
}

Evaluation EvaluateEntries(const std::vector<AccessEntry>& es) {
  Evaluation ev;
  ev.valid.assign(es.size(), true);
  std::map<NodeId, uint64_t> bind_seq;  // an actor's earliest bind wins
  for (const AccessEntry& e : es) {
    if (e.action == AccessAction::kCreate && !ev.owner) ev.owner = e.principal;
    if (e.action == AccessAction::kBind) {
      auto [it, fresh] = bind_seq.emplace(e.dot.node, e.dot.seq);
      if (fresh || e.dot.seq <= it->second) {
        it->second = e.dot.seq;
        ev.bindings[e.dot.node] = e.principal;
      }
    }
  }
  std::vector<bool> cutting(es.size(), false);
  for (int round = 0; round < kMaxAccessRounds; ++round) {
    Walk(es, cutting, &ev);
    std::vector<bool> next(es.size(), false);
    for (size_t i = 0; i < es.size(); ++i) {
      next[i] = ev.valid[i] && es[i].action == AccessAction::kRevoke;
    }
    if (next == cutting) break;
    cutting = std::move(next);
  }
  return ev;
}

}  // namespace

Status ValidateAccessFields(const AccessEntry& e) {
  switch (e.action) {
    case AccessAction::kCreate:
    case AccessAction::kBind:
    case AccessAction::kGrant:
    case AccessAction::kRevoke:
    case AccessAction::kEncrypt:
    case AccessAction::kKeys: break;
    default: return Status::InvalidArgument("unknown access action");
  }
  if (e.principal.size() != kPrincipalBytes) {
    return Status::InvalidArgument("a principal is " + std::to_string(kPrincipalBytes) +
                                   " bytes, not " + std::to_string(e.principal.size()));
  }
  if (e.action == AccessAction::kGrant) {
    if (e.role != Role::kReader && e.role != Role::kWriter && e.role != Role::kAdmin) {
      return Status::InvalidArgument("a grant gives reader, writer or admin");
    }
  } else if (e.role != Role::kNone) {
    return Status::InvalidArgument(std::string("a ") + AccessActionName(e.action) +
                                   " op has no role");
  }
  if (e.action == AccessAction::kKeys) {
    if (e.proof.empty() || e.proof.size() > kMaxKeyRecordBytes) {
      return Status::InvalidArgument("a keys op holds 1 to " + std::to_string(kMaxKeyRecordBytes) +
                                     " bytes of key record");
    }
  } else if (e.proof.size() > kMaxProofBytes) {
    return Status::InvalidArgument("bind proof too long");
  } else if (e.action != AccessAction::kBind && !e.proof.empty()) {
    return Status::InvalidArgument("only a bind or keys op has a proof");
  }
  if (e.action != AccessAction::kRevoke && !e.context.empty()) {
    return Status::InvalidArgument("only a revoke op has cutoffs");
  }
  if (!NamesObserved(e.action) && !e.observed.empty()) {
    return Status::InvalidArgument("only grant, revoke and keys ops name what they observed");
  }
  return Status::Ok();
}

Role AccessList::RoleOf(const Principal& key) const {
  return RoleIn(roles_, key);
}

std::map<Principal, Role> AccessList::Members() const {
  return roles_;  // Walk keeps no kNone entries
}

const Principal* AccessList::KeyOf(NodeId actor) const {
  auto it = bindings_.find(actor);
  return it == bindings_.end() ? nullptr : &it->second;
}

std::vector<NodeId> AccessList::ActorsOf(const Principal& key) const {
  std::vector<NodeId> out;
  for (const auto& [actor, k] : bindings_) {
    if (k == key) out.push_back(actor);
  }
  return out;
}

bool AccessList::WasWriter(const Principal& key) const {
  if (owner_ && *owner_ == key) return true;
  for (const AccessEntry& x : entries_) {
    if (x.action == AccessAction::kGrant && x.role >= Role::kWriter && x.principal == key) {
      return true;
    }
  }
  return false;
}

Status AccessList::CheckWrite(NodeId author, uint64_t end_seq) const {
  if (!owned()) return Status::Ok();
  auto fast = std::lower_bound(actor_roles_.begin(), actor_roles_.end(), author,
                               [](const auto& e, NodeId n) { return e.first < n; });
  if (fast != actor_roles_.end() && fast->first == author && fast->second >= Role::kWriter) {
    return Status::Ok();
  }
  const Principal* key = KeyOf(author);
  if (!key) {
    return Denied("author " + author.ToHex() + " is not bound to a key in this document");
  }
  Role role = RoleOf(*key);
  if (role >= Role::kWriter) return Status::Ok();
  auto cutoff = write_cutoffs_.find(author);
  if (cutoff != write_cutoffs_.end()) {
    if (end_seq <= cutoff->second) return Status::Ok();
    return Denied("author " + author.ToHex() + " (" + KeyName(*key) +
                  ") was cut off by a revoke at seq " + std::to_string(cutoff->second) +
                  "; this change reaches seq " + std::to_string(end_seq));
  }
  if (role == Role::kReader) {
    return Denied("author " + author.ToHex() + " (" + KeyName(*key) +
                  ") is a reader of this document and may not write");
  }
  return Denied("author " + author.ToHex() + " (" + KeyName(*key) +
                ") has no role in this document");
}

Status AccessList::Check(const AccessEntry& e, const VersionVector& held, bool first_change) const {
  if (e.action == AccessAction::kGrant && (e.role == Role::kNone || e.role == Role::kOwner)) {
    return Denied(std::string("a grant of ") + RoleName(e.role) +
                  ": a grant gives reader, writer or admin, and only a create names the owner");
  }
  WEFT_RETURN_IF_ERROR(ValidateAccessFields(e));
  if (e.action == AccessAction::kCreate) {
    // Only in the first change a node applies: a second create would make its author co-owner
    // of a document someone else created. Where the squatter's create arrives first, that node
    // holds the squatter's document, which no honest change can join: it hurts only the squatter.
    if (!first_change || owned()) return Denied("the document already exists");
    return Status::Ok();
  }
  if (!owned()) {
    return Denied(std::string("a ") + AccessActionName(e.action) +
                  " op in a document without an owner (no create op)");
  }
  const Principal* key = KeyOf(e.dot.node);
  if (e.action == AccessAction::kEncrypt) {
    // With the create, in the first change, by the creator: every node sees the flag from the
    // document's first change on, so no change is ever judged with and without it.
    const AccessEntry* create = nullptr;
    for (const AccessEntry& x : entries_) {
      if (x.action == AccessAction::kCreate) create = &x;
    }
    if (!first_change || encrypted_ || !create || create->dot.node != e.dot.node ||
        e.principal != *owner_) {
      return Denied("an encrypt op belongs in the document's first change, after its create");
    }
    return Status::Ok();
  }
  if (e.action == AccessAction::kKeys) {
    if (!encrypted_) return Denied("a keys op in a document that is not end-to-end encrypted");
    if (!key || *key != e.principal) {
      return Denied("keys op by actor " + e.dot.node.ToHex() +
                    ": the record's admin is not the key its author is bound to");
    }
  }
  if (e.action == AccessAction::kBind) {
    if (key && *key != e.principal) {
      return Denied("actor " + e.dot.node.ToHex() + " is bound to another key already");
    }
    // Only a key that was ever given the right to write binds an actor: a reader or a stranger
    // could otherwise fill the list with bindings (each held forever) through changes that carry
    // nothing else. "Ever given" (a grant held, valid or not) rather than "holds now" keeps the
    // decision the same on every node: an honest bind follows its grant causally, so every node
    // that applies it holds the grant; and the answer never turns from yes to no.
    if (!key && !WasWriter(e.principal)) {
      return Denied("actor " + e.dot.node.ToHex() + " may not bind to " + KeyName(e.principal) +
                    (RoleOf(e.principal) == Role::kReader
                         ? ": a reader of this document, which may not write"
                         : ": it has no role in this document"));
    }
    return Status::Ok();
  }
  // Grant or revoke: it may only name ops its author held.
  auto known = [&](const VersionVector& v) {
    for (const auto& [node, seq] : v.entries()) {
      if (held.Get(node) < seq && !(node == e.dot.node && seq < e.dot.seq)) return false;
    }
    return true;
  };
  if (!known(e.observed) || !known(e.context)) {
    return Status::Corruption("access op " + e.dot.ToString() + " names seqs it cannot have seen");
  }
  const std::string what =
      std::string(AccessActionName(e.action)) + " by actor " + e.dot.node.ToHex();
  if (ChangesRoles(e.action) && *owner_ == e.principal) {
    return Denied(what + ": nobody may grant or revoke the owner");
  }
  if (!key) return Denied(what + ": the actor is not bound to a key");
  // The list made of the ops it saw (binds and the create are facts, whoever saw them).
  std::vector<AccessEntry> past;
  for (const AccessEntry& x : entries_) {
    if (!ChangesRoles(x.action) || (AccessOrder(x, e) && Saw(e, x))) past.push_back(x);
  }
  Evaluation ev = EvaluateEntries(past);
  Role have = RoleIn(ev.roles, *key);
  Role need = Needed(e, RoleIn(ev.roles, e.principal));
  if (have < need) {
    return Denied(what + " (" + KeyName(*key) + ", " + RoleName(have) + ") needs " +
                  (need == Role::kOwner ? "the owner" : "an admin or the owner"));
  }
  return Status::Ok();
}

void AccessList::Add(AccessEntry e) {
  for (const AccessEntry& x : entries_) {
    if (x.dot == e.dot) return;
  }
  auto at = std::upper_bound(entries_.begin(), entries_.end(), e, AccessOrder);
  const auto index = at - entries_.begin();
  // The first binding of an actor that made no grant or revoke, to a key no revoke names, changes
  // nothing but the bindings: a walk would come out the same (a binding matters to the walk only
  // for its actor's own grants and revokes, and for the cutoffs of revokes of its key). Devices
  // joining a document each bind once, so this spares a full evaluation per device.
  bool bind_only = e.action == AccessAction::kBind && bindings_.count(e.dot.node) == 0;
  // Encrypt and keys ops take no part in the walk.
  if (e.action == AccessAction::kEncrypt || e.action == AccessAction::kKeys) {
    if (e.action == AccessAction::kEncrypt) encrypted_ = true;
    entries_.insert(at, std::move(e));
    valid_.insert(valid_.begin() + index, true);
    return;
  }
  for (size_t i = 0; bind_only && i < entries_.size(); ++i) {
    const AccessEntry& x = entries_[i];
    if ((ChangesRoles(x.action) && x.dot.node == e.dot.node) ||
        (x.action == AccessAction::kRevoke && x.principal == e.principal)) {
      bind_only = false;
    }
  }
  if (bind_only) {
    auto slot = std::lower_bound(actor_roles_.begin(), actor_roles_.end(), e.dot.node,
                                 [](const auto& x, NodeId n) { return x.first < n; });
    actor_roles_.insert(slot, {e.dot.node, RoleOf(e.principal)});
    bindings_[e.dot.node] = e.principal;
    entries_.insert(at, std::move(e));
    valid_.insert(valid_.begin() + index, true);
    return;
  }
  entries_.insert(at, std::move(e));
  Evaluate();
}

void AccessList::Evaluate() {
  Evaluation ev = EvaluateEntries(entries_);
  valid_ = std::move(ev.valid);
  owner_ = std::move(ev.owner);
  encrypted_ = std::any_of(entries_.begin(), entries_.end(),
                           [](const AccessEntry& x) { return x.action == AccessAction::kEncrypt; });
  bindings_ = std::move(ev.bindings);
  roles_ = std::move(ev.roles);
  write_cutoffs_ = std::move(ev.write_cutoffs);
  IndexActorRoles();
}

void AccessList::IndexActorRoles() {
  actor_roles_.clear();
  actor_roles_.reserve(bindings_.size());
  for (const auto& [actor, key] : bindings_) actor_roles_.emplace_back(actor, RoleOf(key));
}

Result<AccessList> AccessList::FromEntries(std::vector<AccessEntry> entries) {
  std::set<Dot> dots;
  std::map<NodeId, Principal> bound;
  int creates = 0;
  for (size_t i = 0; i < entries.size(); ++i) {
    const AccessEntry& e = entries[i];
    Status s = ValidateAccessFields(e);
    if (!s.ok()) return Status::Corruption("access op " + e.dot.ToString() + ": " + s.message());
    if (i > 0 && !AccessOrder(entries[i - 1], e))
      return Status::Corruption("access ops out of order");
    if (!e.dot.node.valid() || e.dot.seq == 0 || !dots.insert(e.dot).second) {
      return Status::Corruption("access op with a bad or repeated dot");
    }
    if (e.action == AccessAction::kCreate && ++creates > 1) {
      return Status::Corruption("two create ops");
    }
    if (e.action == AccessAction::kBind) {
      auto [it, fresh] = bound.emplace(e.dot.node, e.principal);
      if (!fresh && it->second != e.principal) {
        return Status::Corruption("an actor bound to two keys");
      }
    }
    if (e.action != AccessAction::kCreate && creates == 0) {
      return Status::Corruption("an access op before the create");
    }
  }
  AccessList list;
  list.entries_ = std::move(entries);
  list.Evaluate();
  return list;
}

// ---------------------------------------------------------------------------------------------
// Encoding (shared by the change codec and snapshots)

AccessEntry internal::AccessEntryOf(const Op& op, const Dot& dot, uint64_t lamport) {
  AccessEntry e;
  e.dot = dot;
  e.lamport = lamport;
  e.action = op.action;
  e.principal = op.principal;
  e.role = op.role;
  e.proof = op.proof;
  e.context = op.context;
  e.observed = op.observed;
  return e;
}

void internal::EncodeAccessFields(Writer& w, const AccessEntry& e) {
  w.U8(static_cast<uint8_t>(e.action));
  w.Bytes(e.principal);
  w.U8(static_cast<uint8_t>(e.role));
  w.Bytes(e.proof);
  w.Vector(e.context);
  w.Vector(e.observed);
}

void internal::DecodeAccessFields(Reader& r, AccessEntry* e) {
  uint8_t action = r.U8();
  std::string_view principal = r.Bytes();
  uint8_t role = r.U8();
  std::string_view proof = r.Bytes();
  if (!r.ok()) return;
  if (action < 1 || action > 6) {
    r.Fail("unknown access action " + std::to_string(action));
    return;
  }
  if (role > static_cast<uint8_t>(Role::kOwner)) {
    r.Fail("unknown role " + std::to_string(role));
    return;
  }
  e->action = static_cast<AccessAction>(action);
  e->role = static_cast<Role>(role);
  e->principal = std::string(principal);
  e->proof = std::string(proof);
  e->context = r.Vector();
  e->observed = r.Vector();
  if (!r.ok()) return;
  Status s = ValidateAccessFields(*e);
  if (!s.ok()) r.Fail(s.message());
}

}  // namespace weft::crdt
