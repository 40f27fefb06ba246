// Snapshots, the canonical state encoding and the JSON rendering of a Document.
//
// Snapshot format (version 1), all integers LEB128 unless noted:
//   "WEFTDOC" u8(version) u8(flags: 1 = history follows, 2 = access ops follow the state,
//                            4 = named container origins follow the state)
//   state: VV(version) varint(object count) object*
//     object: dot(id) u8(kind) VV(seen) body
//       map:      varint(n) { bytes(key) siblings<value> }*      keys strictly increasing
//       register: siblings<scalar>
//       lww:      siblings<scalar, varint(wall) varint(logical)>
//       counter:  varint(n) { fixed64(node) varint(total) }*     nodes strictly increasing
//       set:      varint(n) { scalar siblings<> }*               elements strictly increasing
//     siblings<X>: varint(n) { dot VV(context) X }*             dots strictly increasing
//     value: scalar, or u8(7) u8(kind) for a nested object whose id is the sibling's dot, or
//            u8(8) u8(kind) dot(id) for a named container (several siblings of a key may
//            reference one; one need not be referenced at all: hidden after its key dropped it)
//   [named: varint(n >= 1) { dot(id) dot(parent) bytes(key) u8(kind) }*  ids increasing; each
//    id is the hash of its origin; written (flag 4) only when the document holds named ones]
//   [access: varint(n >= 1) { dot varint(lamport) access fields }*  in walk order (access.h);
//    the fields as in a change (change_codec.h: EncodeAccessFields)]
//   varint(lamport) varint(wall) varint(logical)
//   [history: VV(base) varint(n) { bytes(change) }*]
// The state part, the named part and the access part (each when the document holds any) are the
// canonical encoding: every collection is written in a fixed order. A public document's snapshot
// and canonical state are what they were before access lists.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <set>

#include "change_codec.h"
#include "weft/crdt/document.h"
#include "weft/crdt/encoding.h"

namespace weft::crdt {

namespace {
constexpr std::string_view kSnapshotMagic = "WEFTDOC";
constexpr uint8_t kSnapshotVersion = 1;
constexpr uint8_t kObjectRefTag = 7;
constexpr uint8_t kNamedRefTag = 8;
constexpr uint8_t kFlagHistory = 1, kFlagAccess = 2, kFlagNamed = 4;
constexpr int kMaxDepth = 512;
}  // namespace

namespace {

void EncodeListValue(Writer& w, const Value& v) {
  if (v.is_object()) {
    w.U8(kObjectRefTag);
    w.U8(static_cast<uint8_t>(v.object().kind));
    w.DotValue(v.object().id);
  } else {
    v.scalar().Encode(w);
  }
}

Value DecodeListValue(Reader& r) {
  Reader probe = r;
  if (probe.U8() != kObjectRefTag) return Value(Scalar::Decode(r));
  r.U8();
  uint8_t kind = r.U8();
  Dot id = r.DotValue();
  if (kind < 1 || kind > 7 || !id.node.valid() || id.seq == 0) {
    r.Fail("bad object reference in a list");
    return Value();
  }
  return Value(ObjectRef{id, static_cast<ObjectKind>(kind)});
}

}  // namespace

struct Document::Snapshotter {
  template <typename V, typename F>
  static void Siblings(Writer& w, const MVSlot<V>& slot, F&& value) {
    w.Varint(slot.siblings().size());
    for (const auto& s : slot.siblings()) {
      w.DotValue(s.clock.dot);
      w.Vector(s.clock.context);
      value(s.value);
    }
  }

  static void State(Writer& w, const Document& d) {
    w.Vector(d.version_);
    w.Varint(d.objects_.size());
    for (const auto& [id, obj] : d.objects_) {
      w.DotValue(id);
      w.U8(static_cast<uint8_t>(KindOf(obj)));
      std::visit(
          [&](const auto& o) {
            using T = std::decay_t<decltype(o)>;
            if constexpr (std::is_same_v<T, MapObject>) {
              w.Vector(o.seen);
              w.Varint(o.entries.size());
              for (const auto& [k, slot] : o.entries) {
                w.Bytes(k);
                Siblings(w, slot, [&](const Value& v) {
                  if (v.is_object() && IsNamedObject(v.object().id)) {
                    w.U8(kNamedRefTag);
                    w.U8(static_cast<uint8_t>(v.object().kind));
                    w.DotValue(v.object().id);
                  } else if (v.is_object()) {
                    w.U8(kObjectRefTag);
                    w.U8(static_cast<uint8_t>(v.object().kind));
                  } else {
                    v.scalar().Encode(w);
                  }
                });
              }
            } else if constexpr (std::is_same_v<T, MVRegister<Scalar>>) {
              w.Vector(o.seen());
              Siblings(w, o.slot(), [&](const Scalar& v) { v.Encode(w); });
            } else if constexpr (std::is_same_v<T, LWWRegister<Scalar>>) {
              w.Vector(o.mv().seen());
              Siblings(w, o.mv().slot(), [&](const Stamped<Scalar>& v) {
                v.value.Encode(w);
                w.Varint(v.time.wall_ms);
                w.Varint(v.time.logical);
              });
            } else if constexpr (std::is_same_v<T, Counter>) {
              w.Vector(o.seen());
              w.Varint(o.totals().size());
              for (const auto& [node, total] : o.totals()) {
                w.Node(node);
                w.Varint(total);
              }
            } else if constexpr (std::is_same_v<T, List<Value>>) {
              w.Vector(VersionVector());
              o.EncodeState(w, [](Writer& w2, const Value& v) { EncodeListValue(w2, v); });
            } else if constexpr (std::is_same_v<T, Text>) {
              w.Vector(VersionVector());
              o.EncodeState(w);
            } else {
              w.Vector(o.seen());
              w.Varint(o.entries().size());
              for (const auto& [e, slot] : o.entries()) {
                e.Encode(w);
                Siblings(w, slot, [](const Present&) {});
              }
            }
          },
          obj);
    }
  }

  static void Named(Writer& w, const Document& d) {
    if (d.named_.empty()) return;
    w.Varint(d.named_.size());
    for (const auto& [id, origin] : d.named_) {
      w.DotValue(id);
      w.DotValue(origin.parent);
      w.Bytes(origin.key);
      w.U8(static_cast<uint8_t>(origin.kind));
    }
  }

  static Status ReadNamed(Reader& r, Document& d) {
    uint64_t n = r.Count(5);
    if (r.ok() && n == 0) r.Fail("an empty list of named objects");
    ObjectId prev{};
    for (uint64_t i = 0; i < n && r.ok(); ++i) {
      ObjectId id = r.DotValue();
      NamedOrigin o;
      o.parent = r.DotValue();
      o.key = std::string(r.Bytes());
      uint8_t kind = r.U8();
      if (!r.ok()) break;
      if (!IsNamedObject(id) || !(prev < id))
        return Status::Corruption("snapshot: named ids out of order");
      if (kind < 1 || kind > 7 || !IsMergeableKind(static_cast<ObjectKind>(kind))) {
        return Status::Corruption("snapshot: a named object of a kind that has none");
      }
      o.kind = static_cast<ObjectKind>(kind);
      if (d.NamedId(o.parent, o.key, o.kind) != id) {
        return Status::Corruption("snapshot: named object " + id.ToString() +
                                  " is not the id of its origin");
      }
      prev = id;
      d.named_.emplace(id, std::move(o));
    }
    return r.status("snapshot named objects");
  }

  static void Access(Writer& w, const Document& d) {
    const auto& entries = d.access_.entries();
    if (entries.empty()) return;
    w.Varint(entries.size());
    for (const AccessEntry& e : entries) {
      w.DotValue(e.dot);
      w.Varint(e.lamport);
      internal::EncodeAccessFields(w, e);
    }
  }

  static Status ReadAccess(Reader& r, Document& d) {
    uint64_t n = r.Count(12);
    if (r.ok() && n == 0) r.Fail("an empty access list");
    std::vector<AccessEntry> entries;
    for (uint64_t i = 0; i < n && r.ok(); ++i) {
      AccessEntry e;
      e.dot = r.DotValue();
      e.lamport = r.Varint();
      internal::DecodeAccessFields(r, &e);
      if (r.ok() && !d.version_.Contains(e.dot)) r.Fail("access op beyond the version");
      if (r.ok() && (!d.version_.Dominates(e.context) || !d.version_.Dominates(e.observed))) {
        r.Fail("access op names seqs beyond the version");
      }
      entries.push_back(std::move(e));
    }
    WEFT_RETURN_IF_ERROR(r.status("snapshot access list"));
    auto list = AccessList::FromEntries(std::move(entries));
    if (!list.ok()) return Status::Corruption("snapshot: " + list.status().message());
    d.access_ = std::move(*list);
    return Status::Ok();
  }

  static ObjectKind KindOf(const Object& o) {
    static constexpr ObjectKind kKinds[] = {
        ObjectKind::kMap, ObjectKind::kRegister, ObjectKind::kLwwRegister, ObjectKind::kCounter,
        ObjectKind::kSet, ObjectKind::kList,     ObjectKind::kText};
    return kKinds[o.index()];
  }

  // Reads siblings, checking order and that every dot and context is within `version`.
  template <typename V, typename F>
  static MVSlot<V> ReadSiblings(Reader& r, const VersionVector& version, F&& value,
                                bool allow_empty = false) {
    MVSlot<V> slot;
    uint64_t n = r.Count(10);
    if (r.ok() && n == 0 && !allow_empty) r.Fail("empty sibling list");
    Dot prev{};
    for (uint64_t i = 0; i < n && r.ok(); ++i) {
      Dot dot = r.DotValue();
      VersionVector ctx = r.Vector();
      V v = value(dot);
      if (!r.ok()) break;
      if (!version.Contains(dot) || !(prev < dot)) {
        r.Fail("sibling dot out of order or unknown");
        break;
      }
      if (!version.Dominates(ctx)) {
        r.Fail("sibling context beyond the version");
        break;
      }
      prev = dot;
      slot.mutable_siblings().push_back({std::move(v), DottedVersionVector{dot, std::move(ctx)}});
    }
    return slot;
  }

  static VersionVector ReadSeen(Reader& r, const VersionVector& version) {
    VersionVector seen = r.Vector();
    if (r.ok() && !version.Dominates(seen)) r.Fail("object seen-vector beyond the version");
    return seen;
  }

  // A map value that references a named container: where it is, to check against its origin.
  struct NamedRef {
    ObjectId id;
    ObjectKind kind;
    ObjectId map;
    std::string key;
  };
  struct Refs {
    // Each nested object made by a dot must be referenced by exactly one value, whose dot is its
    // id.
    std::map<ObjectId, ObjectKind> dotted;
    std::vector<NamedRef> named;
  };

  static Status ReadState(Reader& r, Document& d, Refs& all) {
    d.version_ = r.Vector();
    d.heads_ = d.version_;  // a snapshot keeps no frontier: the whole version stands for it
    d.objects_.clear();
    uint64_t n = r.Count(11);
    auto& refs = all.dotted;
    Dot prev_id{};
    for (uint64_t i = 0; i < n && r.ok(); ++i) {
      ObjectId id = r.DotValue();
      uint8_t kind = r.U8();
      if (!r.ok()) break;
      if (i > 0 && !(prev_id < id)) return Status::Corruption("snapshot: objects out of order");
      if (i == 0 && id != kRoot) return Status::Corruption("snapshot: the root map is missing");
      if (id != kRoot && !IsNamedObject(id) && !d.version_.Contains(id)) {
        return Status::Corruption("snapshot: object " + id.ToString() + " beyond the version");
      }
      prev_id = id;
      VersionVector seen = ReadSeen(r, d.version_);
      Object obj;
      switch (kind) {
        case static_cast<uint8_t>(ObjectKind::kMap): {
          MapObject m;
          m.seen = std::move(seen);
          uint64_t keys = r.Count(11);
          std::string prev_key;
          for (uint64_t k = 0; k < keys && r.ok(); ++k) {
            std::string key(r.Bytes());
            if (k > 0 && !(prev_key < key)) {
              r.Fail("map keys out of order");
              break;
            }
            auto slot = ReadSiblings<Value>(r, d.version_, [&](const Dot& dot) -> Value {
              // Peek the tag: 7 is a nested object, 8 a named container, anything else a scalar.
              Reader probe = r;
              uint8_t tag = probe.U8();
              if (tag == kNamedRefTag) {
                r.U8();
                uint8_t k2 = r.U8();
                ObjectId named = r.DotValue();
                if (!r.ok()) return Value();
                if (k2 < 1 || k2 > 7 || !IsNamedObject(named)) {
                  r.Fail("bad named object reference");
                  return Value();
                }
                all.named.push_back({named, static_cast<ObjectKind>(k2), id, key});
                return Value(ObjectRef{named, static_cast<ObjectKind>(k2)});
              }
              if (tag == kObjectRefTag) {
                r.U8();
                uint8_t k2 = r.U8();
                if (k2 < 1 || k2 > 7) {
                  r.Fail("unknown object kind");
                  return Value();
                }
                if (!refs.emplace(dot, static_cast<ObjectKind>(k2)).second) {
                  r.Fail("object referenced twice");
                }
                return Value(ObjectRef{dot, static_cast<ObjectKind>(k2)});
              }
              return Value(Scalar::Decode(r));
            });
            prev_key = key;
            m.entries.emplace(std::move(key), std::move(slot));
          }
          obj = std::move(m);
          break;
        }
        case static_cast<uint8_t>(ObjectKind::kRegister): {
          MVRegister<Scalar> reg;
          auto slot = ReadSiblings<Scalar>(
              r, d.version_, [&](const Dot&) { return Scalar::Decode(r); }, true);
          reg.Restore(std::move(slot), std::move(seen));
          obj = std::move(reg);
          break;
        }
        case static_cast<uint8_t>(ObjectKind::kLwwRegister): {
          LWWRegister<Scalar> reg;
          auto slot = ReadSiblings<Stamped<Scalar>>(
              r, d.version_,
              [&](const Dot&) {
                Stamped<Scalar> s{Scalar::Decode(r), {}};
                s.time.wall_ms = r.Varint();
                uint64_t logical = r.Varint();
                if (logical > UINT32_MAX) r.Fail("logical time out of range");
                s.time.logical = static_cast<uint32_t>(logical);
                return s;
              },
              true);
          reg.mutable_mv().Restore(std::move(slot), std::move(seen));
          obj = std::move(reg);
          break;
        }
        case static_cast<uint8_t>(ObjectKind::kCounter): {
          Counter c;
          uint64_t m = r.Count(9);
          std::vector<std::pair<NodeId, uint64_t>> totals;
          for (uint64_t k = 0; k < m && r.ok(); ++k) {
            NodeId node = r.Node();
            uint64_t total = r.Varint();
            if (!node.valid() || (!totals.empty() && !(totals.back().first < node)) ||
                seen.Get(node) == 0) {
              r.Fail("counter entries malformed");
              break;
            }
            totals.emplace_back(node, total);
          }
          c.Restore(std::move(totals), std::move(seen));
          obj = std::move(c);
          break;
        }
        case static_cast<uint8_t>(ObjectKind::kSet): {
          ORSet<Scalar> s;
          std::map<Scalar, MVSlot<Present>> elements;
          uint64_t m = r.Count(11);
          for (uint64_t k = 0; k < m && r.ok(); ++k) {
            Scalar e = Scalar::Decode(r);
            auto slot = ReadSiblings<Present>(r, d.version_, [](const Dot&) { return Present{}; });
            if (!r.ok()) break;
            if (!elements.empty() && !(elements.rbegin()->first < e)) {
              r.Fail("set elements out of order");
              break;
            }
            elements.emplace(std::move(e), std::move(slot));
          }
          s.Restore(std::move(elements), std::move(seen));
          obj = std::move(s);
          break;
        }
        case static_cast<uint8_t>(ObjectKind::kList): {
          auto l = List<Value>::DecodeState(r, [&](Reader& rr) -> Result<Value> {
            Value v = DecodeListValue(rr);
            if (v.is_object() && !refs.emplace(v.object().id, v.object().kind).second) {
              rr.Fail("object referenced twice");
            }
            return v;
          });
          if (!l.ok()) return Status::Corruption("snapshot list: " + l.status().message());
          // A nested object in a list is named by its item's id.
          for (size_t k = 0; k < l->size(); ++k) {
            auto v = l->At(k);
            if (v->is_object() && *l->IdAt(k) != v->object().id) {
              return Status::Corruption("snapshot: list object id is not its item's id");
            }
          }
          if (!seen.empty()) return Status::Corruption("snapshot: list with a seen vector");
          obj = std::move(*l);
          break;
        }
        case static_cast<uint8_t>(ObjectKind::kText): {
          auto t = Text::DecodeState(r);
          if (!t.ok()) return Status::Corruption("snapshot text: " + t.status().message());
          if (!seen.empty()) return Status::Corruption("snapshot: text with a seen vector");
          obj = std::move(*t);
          break;
        }
        default: return Status::Corruption("snapshot: unknown object kind " + std::to_string(kind));
      }
      if (!r.ok()) break;
      if (id == kRoot && obj.index() != 0) return Status::Corruption("snapshot: root is not a map");
      d.objects_.emplace(id, std::move(obj));
    }
    WEFT_RETURN_IF_ERROR(r.status("snapshot"));
    if (d.objects_.empty()) return Status::Corruption("snapshot: the root map is missing");
    return Status::Ok();
  }

  // Checks that the objects read form one tree under the root (after the named origins are read).
  static Status CheckTree(Document& d, const Refs& all) {
    const auto& refs = all.dotted;
    // Every named container has its origin, in a map, and every reference to one is at its
    // origin; a named container need not be referenced (its key may have dropped it).
    std::multimap<ObjectId, ObjectId> named_children;
    for (const auto& [id, origin] : d.named_) {
      const Object* o = d.Find(id);
      const Object* parent = d.Find(origin.parent);
      if (!o || KindOf(*o) != origin.kind || !parent || KindOf(*parent) != ObjectKind::kMap) {
        return Status::Corruption("snapshot: named object " + id.ToString() +
                                  " does not match its origin");
      }
      named_children.emplace(origin.parent, id);
    }
    for (const NamedRef& ref : all.named) {
      auto it = d.named_.find(ref.id);
      if (it == d.named_.end() || it->second.parent != ref.map || it->second.key != ref.key ||
          it->second.kind != ref.kind) {
        return Status::Corruption("snapshot: a reference to a named object away from its origin");
      }
    }
    // The objects must form one tree under the root: every reference names an object of its kind,
    // and every object but the root and the named ones is referenced (exactly once, checked
    // above).
    if (refs.size() + d.named_.size() + 1 != d.objects_.size()) {
      return Status::Corruption("snapshot: objects and references do not match");
    }
    for (const auto& [id, kind] : refs) {
      const Object* o = d.Find(id);
      if (!o || KindOf(*o) != kind) return Status::Corruption("snapshot: dangling reference");
    }
    // Walk from the root, so that references cannot form a cycle cut off from it. A map leads to
    // the objects its values made by dots reference and to the named containers created in it.
    size_t reached = 0;
    std::function<bool(ObjectId, int)> walk = [&](ObjectId id, int depth) {
      if (depth > kMaxDepth) return false;
      ++reached;
      const Object* o = d.Find(id);
      if (auto* m = std::get_if<MapObject>(o)) {
        for (const auto& [k, slot] : m->entries) {
          for (const auto& s : slot.siblings()) {
            if (s.value.is_object() && !IsNamedObject(s.value.object().id) &&
                !walk(s.value.object().id, depth + 1)) {
              return false;
            }
          }
        }
        auto [b, e] = named_children.equal_range(id);
        for (auto it = b; it != e; ++it) {
          if (!walk(it->second, depth + 1)) return false;
        }
      } else if (auto* l = std::get_if<List<Value>>(o)) {
        for (const Value& v : l->Values()) {
          if (v.is_object() && !walk(v.object().id, depth + 1)) return false;
        }
      }
      return true;
    };
    if (!walk(kRoot, 0) || reached != d.objects_.size()) {
      return Status::Corruption("snapshot: objects do not form a tree under the root");
    }
    return Status::Ok();
  }
};

std::string Document::CanonicalState() const {
  Writer w;
  Snapshotter::State(w, *this);
  Snapshotter::Named(w, *this);
  Snapshotter::Access(w, *this);
  return w.Take();
}

std::string Document::EncodeSnapshot(bool with_history) const {
  Writer w;
  w.Raw(kSnapshotMagic);
  w.U8(kSnapshotVersion);
  bool history = with_history && options_.keep_history;
  w.U8((history ? kFlagHistory : 0) | (access_.entries().empty() ? 0 : kFlagAccess) |
       (named_.empty() ? 0 : kFlagNamed));
  Snapshotter::State(w, *this);
  Snapshotter::Named(w, *this);
  Snapshotter::Access(w, *this);
  w.Varint(lamport_);
  w.Varint(clock_.last().wall_ms);
  w.Varint(clock_.last().logical);
  if (history) {
    w.Vector(history_base_);
    w.Varint(history_.size());
    for (size_t i = 0; i < history_.size(); ++i) w.Bytes(history_.bytes(i));
  }
  return w.Take();
}

Result<Document> Document::DecodeSnapshot(std::string_view bytes, NodeId self,
                                          DocumentOptions options) {
  if (!self.valid()) return Status::InvalidArgument("a document needs a non-null node id");
  Reader r(bytes);
  if (r.Raw(kSnapshotMagic.size()) != kSnapshotMagic) {
    return Status::Corruption("not a Weft document snapshot");
  }
  uint8_t version = r.U8();
  if (r.ok() && version != kSnapshotVersion) {
    return Status::UnsupportedVersion("snapshot version " + std::to_string(version));
  }
  uint8_t flags = r.U8();
  if (r.ok() && flags > 7) return Status::Corruption("snapshot: unknown flags");
  Document d(self, options);
  Snapshotter::Refs refs;
  WEFT_RETURN_IF_ERROR(Snapshotter::ReadState(r, d, refs));
  if (flags & kFlagNamed) WEFT_RETURN_IF_ERROR(Snapshotter::ReadNamed(r, d));
  WEFT_RETURN_IF_ERROR(Snapshotter::CheckTree(d, refs));
  if (flags & kFlagAccess) WEFT_RETURN_IF_ERROR(Snapshotter::ReadAccess(r, d));
  d.lamport_ = r.Varint();
  for (const AccessEntry& e : d.access_.entries()) {
    if (e.lamport > d.lamport_) return Status::Corruption("snapshot: access op after the clock");
  }
  HlcTimestamp t;
  t.wall_ms = r.Varint();
  uint64_t logical = r.Varint();
  if (logical > UINT32_MAX) r.Fail("logical time out of range");
  t.logical = static_cast<uint32_t>(logical);
  d.clock_.Reset(t);
  if (flags & kFlagHistory) {
    VersionVector base = r.Vector();
    uint64_t n = r.Count(2);
    VersionVector running = base;
    KeptChanges history;
    for (uint64_t i = 0; i < n && r.ok(); ++i) {
      std::string_view bytes = r.Bytes();
      auto c = DecodeChange(bytes);
      if (!r.ok()) break;
      if (!c.ok()) return Status::Corruption("snapshot history: " + c.status().message());
      if (c->start_seq != running.Get(c->author) + 1 || !running.Dominates(c->deps)) {
        return Status::Corruption("snapshot history is not in causal order");
      }
      running.Set(c->author, c->end_seq());
      if (options.keep_history) history.Append(*c, bytes);
    }
    WEFT_RETURN_IF_ERROR(r.status("snapshot history"));
    if (running != d.version_) {
      return Status::Corruption("snapshot history does not add up to the version");
    }
    if (options.keep_history) {
      d.history_ = std::move(history);
      d.history_base_ = std::move(base);
    }
  } else {
    // Without history, the changes before this snapshot cannot be served to peers.
    d.history_base_ = d.version_;
  }
  WEFT_RETURN_IF_ERROR(r.Finish("snapshot"));
  return d;
}

// ---------------------------------------------------------------------------------------------
// JSON rendering

void AppendJsonString(std::string& out, std::string_view s) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

namespace {

void JsonScalar(std::string& out, const Scalar& s) {
  if (s.is<std::string>()) return AppendJsonString(out, s.as<std::string>());
  if (s.is<Bytes>()) {
    out += "{\"bytes\":";
    std::string hex = s.ToString();  // b"..."
    AppendJsonString(out, hex.substr(2, hex.size() - 3));
    out += "}";
    return;
  }
  if (s.is<double>() && !std::isfinite(s.as<double>())) {
    out += "null";
    return;
  }
  out += s.ToString();
}

}  // namespace

namespace {

void RenderSlot(const Document& d, const MVSlot<Value>& slot, std::string& out);

void RenderObject(const Document& d, const Document::Object* o, std::string& out) {
  if (!o) {
    out += "null";
    return;
  }
  auto many = [&](size_t n, auto&& each) {
    if (n != 1) out += "{\"conflict\":[";
    for (size_t i = 0; i < n; ++i) {
      if (i) out += ",";
      each(i);
    }
    if (n != 1) out += "]}";
  };
  std::visit(
      [&](const auto& obj) {
        using T = std::decay_t<decltype(obj)>;
        if constexpr (std::is_same_v<T, Document::MapObject>) {
          out += "{";
          bool first = true;
          for (const auto& [k, slot] : obj.entries) {
            if (!first) out += ",";
            first = false;
            AppendJsonString(out, k);
            out += ":";
            RenderSlot(d, slot, out);
          }
          out += "}";
        } else if constexpr (std::is_same_v<T, MVRegister<Scalar>>) {
          const auto& sibs = obj.Siblings();
          if (sibs.empty())
            out += "null";
          else
            many(sibs.size(), [&](size_t i) { JsonScalar(out, sibs[i].value); });
        } else if constexpr (std::is_same_v<T, LWWRegister<Scalar>>) {
          if (const Scalar* v = obj.Value())
            JsonScalar(out, *v);
          else
            out += "null";
        } else if constexpr (std::is_same_v<T, Counter>) {
          out += std::to_string(obj.Value());
        } else if constexpr (std::is_same_v<T, Text>) {
          AppendJsonString(out, obj.ToString());
        } else if constexpr (std::is_same_v<T, List<Value>>) {
          out += "[";
          bool first = true;
          for (const Value& v : obj.Values()) {
            if (!first) out += ",";
            first = false;
            if (v.is_object())
              RenderObject(d, d.FindObject(v.object().id), out);
            else
              JsonScalar(out, v.scalar());
          }
          out += "]";
        } else {
          out += "[";
          bool first = true;
          for (const auto& [e, slot] : obj.entries()) {
            if (!first) out += ",";
            first = false;
            JsonScalar(out, e);
          }
          out += "]";
        }
      },
      *o);
}

void RenderSlot(const Document& d, const MVSlot<Value>& slot, std::string& out) {
  // Siblings that reference one named container are one value.
  std::vector<const Value*> values;
  for (const auto& s : slot.siblings()) {
    if (std::find_if(values.begin(), values.end(), [&](const Value* v) { return *v == s.value; }) ==
            values.end() ||
        !s.value.is_object()) {
      values.push_back(&s.value);
    }
  }
  if (values.size() != 1) out += "{\"conflict\":[";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i) out += ",";
    if (values[i]->is_object()) {
      RenderObject(d, d.FindObject(values[i]->object().id), out);
    } else {
      JsonScalar(out, values[i]->scalar());
    }
  }
  if (values.size() != 1) out += "]}";
}

}  // namespace

std::string Document::ToJson() const {
  std::string out;
  RenderObject(*this, Find(kRoot), out);
  return out;
}

Result<std::optional<std::string>> Document::KeyToJson(ObjectId map, std::string_view key) const {
  const Object* o = Find(map);
  if (!o) return Status::NotFound("object " + map.ToString());
  auto* m = std::get_if<MapObject>(o);
  if (!m) return Status::TypeMismatch("object " + map.ToString() + " is not a map");
  auto it = m->entries.find(key);
  if (it == m->entries.end()) return std::optional<std::string>();
  std::string out;
  RenderSlot(*this, it->second, out);
  return std::optional<std::string>(std::move(out));
}

namespace {

// A scalar with its type kept: doubles always show a fraction or exponent, bytes and non-finite
// doubles are tagged objects, so different scalars never render alike.
void ExactScalar(std::string& out, const Scalar& s) {
  if (s.is<double>()) {
    double d = s.as<double>();
    if (!std::isfinite(d)) {
      out += std::isnan(d) ? R"({"f64":"nan"})" : d > 0 ? R"({"f64":"inf"})" : R"({"f64":"-inf"})";
      return;
    }
    std::string t = s.ToString();
    if (t.find_first_of(".e") == std::string::npos) t += ".0";
    out += t;
    return;
  }
  JsonScalar(out, s);
}

std::string Hex(std::string_view bytes) {
  static const char* kHex = "0123456789abcdef";
  std::string hex;
  for (unsigned char c : bytes) {
    hex += kHex[c >> 4];
    hex += kHex[c & 15];
  }
  return hex;
}

void VectorJson(std::string& out, const VersionVector& v);

// The access list: every op held (keys and proofs in hex, whether the walk found it valid), then
// the members it gives.
void AccessJson(std::string& out, const AccessList& access) {
  out += ",\"access\":{\"ops\":[";
  for (size_t i = 0; i < access.entries().size(); ++i) {
    const AccessEntry& e = access.entries()[i];
    if (i) out += ",";
    out += "{\"dot\":";
    AppendJsonString(out, e.dot.ToString());
    out += ",\"lamport\":" + std::to_string(e.lamport) + ",\"action\":";
    AppendJsonString(out, AccessActionName(e.action));
    out += ",\"principal\":\"" + Hex(e.principal) + "\",\"role\":";
    AppendJsonString(out, RoleName(e.role));
    out += ",\"proof\":\"" + Hex(e.proof) + "\",\"context\":";
    VectorJson(out, e.context);
    out += ",\"observed\":";
    VectorJson(out, e.observed);
    out += access.valid(i) ? ",\"valid\":true}" : ",\"valid\":false}";
  }
  out += "],\"members\":{";
  bool first = true;
  for (const auto& [key, role] : access.Members()) {
    if (!first) out += ",";
    first = false;
    out += "\"" + Hex(key) + "\":";
    AppendJsonString(out, RoleName(role));
  }
  out += "}}";
}

void VectorJson(std::string& out, const VersionVector& v) {
  out += "{";
  for (size_t i = 0; i < v.entries().size(); ++i) {
    if (i) out += ",";
    AppendJsonString(out, v.entries()[i].first.ToHex());
    out += ":" + std::to_string(v.entries()[i].second);
  }
  out += "}";
}

template <typename V, typename F>
void SiblingsJson(std::string& out, const MVSlot<V>& slot, F&& value) {
  out += "[";
  bool first = true;
  for (const auto& s : slot.siblings()) {
    if (!first) out += ",";
    first = false;
    out += "{\"dot\":";
    AppendJsonString(out, s.clock.dot.ToString());
    out += ",\"context\":";
    VectorJson(out, s.clock.context);
    out += ",\"value\":";
    value(s.value);
    out += "}";
  }
  out += "]";
}

}  // namespace

std::string Document::CanonicalJson() const {
  std::string out = "{\"version\":";
  VectorJson(out, version_);
  out += ",\"objects\":{";
  bool first = true;
  for (const auto& entry : objects_) {
    const ObjectId& id = entry.first;  // not a structured binding: lambdas below capture it
    const auto& obj = entry.second;
    if (!first) out += ",";
    first = false;
    AppendJsonString(out, id == kRoot ? std::string("root") : id.ToString());
    out += ":{\"kind\":";
    AppendJsonString(out, ObjectKindName(Snapshotter::KindOf(obj)));
    if (auto origin = named_.find(id); origin != named_.end()) {
      out += ",\"origin\":{\"parent\":";
      AppendJsonString(out, origin->second.parent == kRoot ? std::string("root")
                                                           : origin->second.parent.ToString());
      out += ",\"key\":";
      AppendJsonString(out, origin->second.key);
      out += "}";
    }
    std::visit(
        [&](const auto& o) {
          using T = std::decay_t<decltype(o)>;
          out += ",\"seen\":";
          if constexpr (std::is_same_v<T, MapObject>) {
            VectorJson(out, o.seen);
            out += ",\"entries\":{";
            bool f = true;
            for (const auto& [k, slot] : o.entries) {
              if (!f) out += ",";
              f = false;
              AppendJsonString(out, k);
              out += ":";
              SiblingsJson(out, slot, [&](const Value& v) {
                if (v.is_object()) {
                  out += "{\"object\":";
                  AppendJsonString(out, ObjectKindName(v.object().kind));
                  if (IsNamedObject(v.object().id)) {
                    out += ",\"id\":";
                    AppendJsonString(out, v.object().id.ToString());
                  }
                  out += "}";
                } else {
                  ExactScalar(out, v.scalar());
                }
              });
            }
            out += "}";
          } else if constexpr (std::is_same_v<T, MVRegister<Scalar>>) {
            VectorJson(out, o.seen());
            out += ",\"siblings\":";
            SiblingsJson(out, o.slot(), [&](const Scalar& v) { ExactScalar(out, v); });
          } else if constexpr (std::is_same_v<T, LWWRegister<Scalar>>) {
            VectorJson(out, o.mv().seen());
            out += ",\"siblings\":";
            SiblingsJson(out, o.mv().slot(), [&](const Stamped<Scalar>& v) {
              out += "{\"time\":";
              AppendJsonString(out, v.time.ToString());
              out += ",\"value\":";
              ExactScalar(out, v.value);
              out += "}";
            });
          } else if constexpr (std::is_same_v<T, Counter>) {
            VectorJson(out, o.seen());
            out += ",\"totals\":{";
            bool f = true;
            for (const auto& [node, total] : o.totals()) {
              if (!f) out += ",";
              f = false;
              AppendJsonString(out, node.ToHex());
              out += ":" + std::to_string(static_cast<int64_t>(total));
            }
            out += "},\"value\":" + std::to_string(o.Value());
          } else if constexpr (std::is_same_v<T, Text> || std::is_same_v<T, List<Value>>) {
            // The sequence's structure (ids, origins, tombstones) as hex of its canonical
            // encoding, then its visible value.
            VectorJson(out, VersionVector());
            Writer w;
            if constexpr (std::is_same_v<T, Text>) {
              o.EncodeState(w);
            } else {
              o.EncodeState(w, [](Writer& w2, const Value& v) { EncodeListValue(w2, v); });
            }
            out += ",\"state\":\"" + Hex(w.data()) + "\",\"value\":";
            RenderObject(*this, &obj, out);
          } else {
            VectorJson(out, o.seen());
            out += ",\"elements\":[";
            bool f = true;
            for (const auto& [e, slot] : o.entries()) {
              if (!f) out += ",";
              f = false;
              out += "{\"element\":";
              ExactScalar(out, e);
              out += ",\"dots\":";
              SiblingsJson(out, slot, [&](const Present&) { out += "true"; });
              out += "}";
            }
            out += "]";
          }
        },
        obj);
    out += "}";
  }
  out += "}";
  if (!access_.entries().empty()) AccessJson(out, access_);
  out += "}";
  return out;
}

}  // namespace weft::crdt
