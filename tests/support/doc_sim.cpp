#include "doc_sim.h"

#include <algorithm>

namespace weft::testing {

using namespace weft::crdt;

std::vector<ObjectInfo> CollectObjects(const Document& doc) {
  std::vector<ObjectInfo> out{{kRoot, ObjectKind::kMap, 0}};
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i].kind == ObjectKind::kList) {
      auto values = doc.ReadList(out[i].id);
      for (const Value& v : *values) {
        if (v.is_object()) out.push_back({v.object().id, v.object().kind, out[i].depth + 1});
      }
      continue;
    }
    if (out[i].kind != ObjectKind::kMap) continue;
    auto keys = doc.Keys(out[i].id);
    for (const auto& k : *keys) {
      auto read = doc.Get(out[i].id, k);
      for (const auto& e : read->values) {
        if (e.value.is_object()) {
          out.push_back({e.value.object().id, e.value.object().kind, out[i].depth + 1});
        }
      }
    }
  }
  return out;
}

Scalar RandomScalar(Rng& rng) {
  switch (rng.Below(7)) {
    case 0: return Scalar();
    case 1: return Scalar(rng.Chance(50));
    case 2: return Scalar(static_cast<int64_t>(rng.Range(-1000, 1000)));
    case 3: return Scalar(static_cast<double>(rng.Range(-50, 50)) / 4.0);
    case 4: return Scalar(std::string(1, static_cast<char>('a' + rng.Below(5))));
    case 5: return Scalar(Bytes{std::string(1 + rng.Below(3), '\x01')});
    default: return Scalar("h\xc3\xa9llo " + std::to_string(rng.Below(4)));
  }
}

Status RandomEdit(Document& doc, Transaction& txn, Rng& rng) {
  static const char* kKeys[] = {"a", "b", "c", "title", "items"};
  auto objects = CollectObjects(doc);
  const ObjectInfo& o = objects[rng.Below(objects.size())];
  switch (o.kind) {
    case ObjectKind::kMap: {
      std::string key = kKeys[rng.Below(5)];
      uint64_t what = rng.Below(10);
      if (what < 4) return txn.Put(o.id, key, RandomScalar(rng));
      if (what < 7 && o.depth < 3) {
        auto kind = static_cast<ObjectKind>(1 + rng.Below(7));
        auto r = txn.PutObject(o.id, key, kind);
        return r.status();
      }
      if (what < 8) {
        // A write after a read: replace exactly what was read.
        auto read = doc.Get(o.id, key);
        return txn.PutAfterRead(o.id, key, RandomScalar(rng), read->context);
      }
      return txn.Delete(o.id, key);
    }
    case ObjectKind::kRegister:
    case ObjectKind::kLwwRegister: return txn.SetRegister(o.id, RandomScalar(rng));
    case ObjectKind::kCounter: return txn.Increment(o.id, rng.Range(-10, 10));
    case ObjectKind::kSet: {
      Scalar e(static_cast<int64_t>(rng.Below(4)));
      return rng.Chance(60) ? txn.SetAdd(o.id, e) : txn.SetRemove(o.id, e);
    }
    case ObjectKind::kText: {
      static const char* kRuns[] = {"a", "hello", "\xc3\xa9t\xc3\xa9", "\xf0\x9f\x98\x80!", "xyz "};
      size_t size = *doc.SequenceSize(o.id);
      if (size > 0 && rng.Chance(35)) {
        size_t pos = rng.Below(size);
        return txn.TextDelete(o.id, pos, 1 + rng.Below(std::min<size_t>(size - pos, 6)));
      }
      return txn.TextInsert(o.id, rng.Below(size + 1), kRuns[rng.Below(5)]);
    }
    case ObjectKind::kList: {
      size_t size = *doc.SequenceSize(o.id);
      if (size > 0 && rng.Chance(30)) {
        size_t pos = rng.Below(size);
        return txn.ListDelete(o.id, pos, 1 + rng.Below(std::min<size_t>(size - pos, 3)));
      }
      if (o.depth < 3 && rng.Chance(25)) {
        return txn
            .ListInsertObject(o.id, rng.Below(size + 1),
                              rng.Chance(50) ? ObjectKind::kMap : ObjectKind::kCounter)
            .status();
      }
      std::vector<Scalar> values;
      for (uint64_t k = 0, n = 1 + rng.Below(3); k < n; ++k) values.push_back(RandomScalar(rng));
      return txn.ListInsert(o.id, rng.Below(size + 1), std::move(values));
    }
  }
  return Status::Ok();
}

Document RandomDocument(uint64_t seed, int ops) {
  Rng rng(seed);
  Document doc(NodeId{seed * 2 + 1});
  for (int i = 0; i < ops; ++i) {
    auto txn = doc.Begin(1000 + static_cast<uint64_t>(i));
    (void)RandomEdit(doc, txn, rng);
    txn.Commit();
  }
  return doc;
}

Result<std::vector<Change>> RandomHistory(uint64_t seed, int authors, int steps) {
  Rng rng(seed);
  std::vector<Document> docs;
  for (int a = 0; a < authors; ++a) docs.emplace_back(NodeId{static_cast<uint64_t>(a) + 1});
  std::vector<size_t> seen(docs.size(), 0);  // each author holds this prefix of `history`
  std::vector<Change> history;
  for (int step = 0; step < steps; ++step) {
    size_t a = rng.Below(docs.size());
    size_t upto = seen[a] + rng.Below(history.size() - seen[a] + 1);
    for (; seen[a] < upto; ++seen[a]) WEFT_RETURN_IF_ERROR(docs[a].ApplyChange(history[seen[a]]));
    auto txn = docs[a].Begin(1'700'000'000'000 + static_cast<uint64_t>(step));
    for (int e = 0, n = static_cast<int>(rng.Range(1, 3)); e < n; ++e) {
      WEFT_RETURN_IF_ERROR(RandomEdit(docs[a], txn, rng));
    }
    if (auto c = txn.Commit()) history.push_back(std::move(*c));
  }
  return history;
}

}  // namespace weft::testing
