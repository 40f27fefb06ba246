// Two replicas edit the same document while offline, then exchange their changes and converge.
// The program `make run` starts until the relay exists.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "weft/crdt/document.h"

using namespace weft::crdt;

namespace {

void Check(const weft::Status& s) {
  if (!s.ok()) {
    std::fprintf(stderr, "error: %s\n", s.ToString().c_str());
    std::exit(1);
  }
}

// Sends every change `to` lacks from `from`, as encoded bytes (what a network would carry).
size_t Sync(const Document& from, Document& to) {
  auto changes = from.EncodedChangesSince(to.version());
  Check(changes.status());
  for (std::string_view bytes : *changes) {
    auto decoded = DecodeChange(bytes);
    Check(decoded.status());
    Check(to.Receive(std::move(*decoded)));
  }
  return changes->size();
}

}  // namespace

int main() {
  Document laptop(NodeId{0x1a7}), phone(NodeId{0x9f0});
  uint64_t now = 1'700'000'000'000;

  // A shared starting point: a to-do list with a counter and a set of tags.
  ObjectId todo, likes, tags;
  {
    auto txn = laptop.Begin(now);
    todo = *txn.PutObject(kRoot, "todo", ObjectKind::kMap);
    Check(txn.Put(todo, "title", "Buy milk"));
    likes = *txn.PutObject(todo, "likes", ObjectKind::kCounter);
    tags = *txn.PutObject(todo, "tags", ObjectKind::kSet);
    Check(txn.SetAdd(tags, "home"));
    txn.Commit();
  }
  Sync(laptop, phone);
  std::printf("shared start:   %s\n", laptop.ToJson().c_str());

  // Offline: both edit the title, both like it, one removes a tag the other re-adds.
  {
    auto txn = laptop.Begin(now + 1000);
    Check(txn.Put(todo, "title", "Buy oat milk"));
    Check(txn.Increment(likes, 1));
    Check(txn.SetAdd(tags, "home"));
    txn.Commit();
  }
  {
    auto txn = phone.Begin(now + 1500);
    Check(txn.Put(todo, "title", "Buy milk and eggs"));
    Check(txn.Increment(likes, 2));
    Check(txn.SetRemove(tags, "home"));
    Check(txn.SetAdd(tags, "errand"));
    txn.Commit();
  }
  std::printf("laptop offline: %s\n", laptop.ToJson().c_str());
  std::printf("phone offline:  %s\n", phone.ToJson().c_str());

  // Back online: exchange what each lacks.
  size_t to_phone = Sync(laptop, phone), to_laptop = Sync(phone, laptop);
  std::printf("synced: %zu change(s) to the phone, %zu to the laptop\n", to_phone, to_laptop);
  std::printf("laptop:         %s\n", laptop.ToJson().c_str());
  std::printf("phone:          %s\n", phone.ToJson().c_str());

  // The title has two siblings; the laptop reads them and writes a merge that replaces both.
  auto read = laptop.Get(todo, "title");
  Check(read.status());
  std::printf("title siblings: %zu\n", read->values.size());
  {
    auto txn = laptop.Begin(now + 5000);
    Check(txn.PutAfterRead(todo, "title", "Buy oat milk and eggs", read->context));
    txn.Commit();
  }
  Sync(laptop, phone);
  std::printf("resolved:       %s\n", phone.ToJson().c_str());

  bool converged = laptop.CanonicalState() == phone.CanonicalState();
  std::printf("converged: %s\n", converged ? "yes" : "NO");
  return converged ? 0 : 1;
}
