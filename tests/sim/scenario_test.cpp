// Cases that have broken other sync systems, each on its own, in the deterministic simulation
// (tests/sim/sim.h): two devices and a relay, connected and cut by hand.
#include <algorithm>
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "sim.h"

namespace weft::sim {
namespace {

constexpr int kD0 = 0, kD1 = 1;

SimOptions TwoDevices() {
  SimOptions o;
  o.devices = 2;
  o.relays = 1;
  o.documents = {"doc"};
  o.connect_at_start = false;
  return o;
}

void SyncAll(Sim& sim) {
  sim.Heal();
  sim.Settle();
}

void RequireConverged(Sim& sim) {
  SimReport r = sim.Check();
  std::string problems;
  for (const auto& p : r.problems) problems += "\n  " + p;
  INFO("problems:" << problems);
  REQUIRE(r.problems.empty());
}

// The values of a root key on `node`, as strings, sorted.
std::vector<std::string> Values(Sim& sim, int node, const std::string& key) {
  std::vector<std::string> out;
  REQUIRE(sim.replica(node)
              .Read("doc",
                    [&](const View& v) {
                      auto r = v.root().Get(key);
                      REQUIRE(r.ok());
                      for (const auto& e : r->values) out.push_back(e.value.ToString());
                    })
              .ok());
  std::sort(out.begin(), out.end());
  return out;
}

Status Put(Txn& t, const std::string& key, int64_t v) {
  return t.root().Put(key, Scalar(v));
}

uint64_t Acked(Sim& sim, int device, const crdt::NodeId& author) {
  auto acks = sim.replica(device).PeerVersions("sim:relay0");
  REQUIRE(acks.ok());
  for (const auto& [doc, v] : *acks) {
    if (doc == "doc") return v.Get(author);
  }
  return 0;
}

}  // namespace

TEST_CASE("a key created, deleted and re-created converges with the concurrent write", "[sim]") {
  Sim sim(1, TwoDevices());
  REQUIRE(sim.Edit(kD0, "doc", [](Txn& t) { return Put(t, "k", 1); }).ok());
  REQUIRE(sim.Edit(kD0, "doc",
                   [](Txn& t) { return t.root().Map("m").value().Put("a", Scalar(int64_t{1})); })
              .ok());
  SyncAll(sim);
  // Offline: d1 deletes both and re-creates them; d0 writes the key and inside the old map.
  for (int i = 0; i < 2; ++i) sim.Disconnect(i, sim.relay(0));
  REQUIRE(sim.Edit(kD1, "doc", [](Txn& t) { return t.root().Delete("k"); }).ok());
  REQUIRE(sim.Edit(kD1, "doc", [](Txn& t) { return t.root().Delete("m"); }).ok());
  REQUIRE(sim.Edit(kD1, "doc", [](Txn& t) { return Put(t, "k", 2); }).ok());
  REQUIRE(sim.Edit(kD1, "doc",
                   [](Txn& t) { return t.root().Map("m").value().Put("b", Scalar(int64_t{2})); })
              .ok());
  REQUIRE(sim.Edit(kD0, "doc", [](Txn& t) { return Put(t, "k", 3); }).ok());
  REQUIRE(sim.Edit(kD0, "doc",
                   [](Txn& t) { return t.root().Map("m").value().Put("c", Scalar(int64_t{3})); })
              .ok());
  SyncAll(sim);
  RequireConverged(sim);
  // The re-created key and the concurrent write are siblings. The map is a named container (one
  // map for both devices): d1's re-creation emptied what d1 had seen ("a") and d0's inner write,
  // concurrent with it, survives beside d1's own key (docs/crdt.md, re-creation).
  CHECK(Values(sim, kD0, "k") == std::vector<std::string>{"2", "3"});
  std::string m;
  REQUIRE(
      sim.replica(kD0)
          .Read("doc",
                [&](const View& v) { m = v.document().KeyToJson(crdt::kRoot, "m")->value_or(""); })
          .ok());
  CHECK(m == R"({"b":2,"c":3})");
}

TEST_CASE("a delete concurrent with an update keeps the update", "[sim]") {
  Sim sim(2, TwoDevices());
  REQUIRE(sim.Edit(kD0, "doc", [](Txn& t) { return Put(t, "k", 1); }).ok());
  SyncAll(sim);
  for (int i = 0; i < 2; ++i) sim.Disconnect(i, sim.relay(0));
  REQUIRE(sim.Edit(kD0, "doc", [](Txn& t) { return t.root().Delete("k"); }).ok());
  REQUIRE(sim.Edit(kD1, "doc", [](Txn& t) { return Put(t, "k", 5); }).ok());
  SyncAll(sim);
  RequireConverged(sim);
  CHECK(Values(sim, kD0, "k") == std::vector<std::string>{"5"});
}

TEST_CASE("an acknowledgement lost after the data was stored", "[sim]") {
  Sim sim(3, TwoDevices());
  auto c = sim.Edit(kD0, "doc", [](Txn& t) { return Put(t, "k", 1); });
  REQUIRE(c.ok());
  const crdt::NodeId author = c->change.node;
  sim.Connect(kD0, sim.relay(0));
  // Hello, Have and the changes reach the relay, which stores them; its ack is then lost with
  // the connection.
  for (int i = 0; i < 4; ++i) {
    sim.DeliverFrom(kD0, sim.relay(0));
    if (sim.replica(sim.relay(0)).Version("doc").ok()) break;
    sim.DeliverFrom(sim.relay(0), kD0);
  }
  REQUIRE(sim.replica(sim.relay(0)).Version("doc").ok());
  REQUIRE(sim.InFlight(sim.relay(0), kD0) > 0);  // the ack, still on its way
  CHECK(Acked(sim, kD0, author) == 0);
  sim.Disconnect(kD0, sim.relay(0));
  CHECK(Acked(sim, kD0, author) == 0);  // the device cannot know the relay has it
  SyncAll(sim);
  RequireConverged(sim);
  CHECK(Acked(sim, kD0, author) == 1);  // acknowledged on the next connection
  CHECK(Values(sim, sim.relay(0), "k") == std::vector<std::string>{"1"});
}

TEST_CASE("a relay that crashes between storing and acknowledging keeps the change", "[sim]") {
  Sim sim(4, TwoDevices());
  auto c = sim.Edit(kD0, "doc", [](Txn& t) { return Put(t, "k", 7); });
  REQUIRE(c.ok());
  sim.Connect(kD0, sim.relay(0));
  for (int i = 0; i < 4; ++i) {
    sim.DeliverFrom(kD0, sim.relay(0));
    if (sim.replica(sim.relay(0)).Version("doc").ok()) break;
    sim.DeliverFrom(sim.relay(0), kD0);
  }
  REQUIRE(sim.InFlight(sim.relay(0), kD0) > 0);  // its ack, not delivered
  sim.Crash(sim.relay(0));                       // before its ack leaves
  auto v = sim.replica(sim.relay(0)).Version("doc");
  REQUIRE(v.ok());
  CHECK(v->Get(c->change.node) == c->change.seq);  // stored before it was acknowledged
  SyncAll(sim);
  RequireConverged(sim);
  CHECK(Values(sim, kD1, "k") == std::vector<std::string>{"7"});
}

TEST_CASE("a device restored from an old copy of its database loses nothing", "[sim]") {
  Sim sim(5, TwoDevices());
  REQUIRE(sim.Edit(kD0, "doc", [](Txn& t) { return Put(t, "a", 1); }).ok());
  SyncAll(sim);
  const std::string backup = sim.CopyDatabase(kD0);
  // After the backup: more changes, synced and acknowledged by the relay.
  REQUIRE(sim.Edit(kD0, "doc", [](Txn& t) { return Put(t, "b", 2); }).ok());
  REQUIRE(sim.Edit(kD0, "doc", [](Txn& t) { return Put(t, "c", 3); }).ok());
  SyncAll(sim);
  // The device goes back to the backup (its version vector goes backwards) and writes offline.
  sim.RestoreDatabase(kD0, backup);
  auto before = sim.replica(kD0).Version("doc");
  REQUIRE(before.ok());
  REQUIRE(sim.Edit(kD0, "doc", [](Txn& t) { return Put(t, "d", 4); }).ok());
  REQUIRE(sim.Edit(kD0, "doc", [](Txn& t) { return Put(t, "e", 5); }).ok());
  SyncAll(sim);
  // Every change, from before and after the restore, is everywhere: the restored device writes
  // under a new author, so its new changes cannot be mistaken for the ones it made after the
  // backup (which come back to it from the relay).
  RequireConverged(sim);
  for (const char* k : {"a", "b", "c", "d", "e"}) {
    INFO(k);
    CHECK(Values(sim, kD1, k).size() == 1);
  }
}

TEST_CASE("two replicas at one version in different states are found out", "[sim]") {
  // Both devices author under one ID (as two devices restored from one backup would have under
  // a per-replica author): each holds {X:1}, with different values. Versions alone say "in sync".
  Sim sim(6, TwoDevices());
  const crdt::NodeId shared{0xD0D0};
  sim.ReopenWithActor(kD0, shared);
  sim.ReopenWithActor(kD1, shared);
  REQUIRE(sim.Edit(kD0, "doc", [](Txn& t) { return Put(t, "k", 1); }).ok());
  REQUIRE(sim.Edit(kD1, "doc", [](Txn& t) { return Put(t, "k", 2); }).ok());
  REQUIRE(*sim.replica(kD0).Version("doc") == *sim.replica(kD1).Version("doc"));
  REQUIRE(sim.State(kD0, "doc") != sim.State(kD1, "doc"));
  SyncAll(sim);
  // The relay took d0's change first; d1's Have names the same version with another state
  // digest: both ends of that connection report the divergence.
  CHECK(sim.Divergences(sim.relay(0)) >= 1);
  CHECK(sim.Divergences(kD1) >= 1);
  CHECK(sim.Divergences(kD0) == 0);  // d0 and the relay agree
  CHECK(sim.State(kD0, "doc") == sim.State(sim.relay(0), "doc"));
}

}  // namespace weft::sim
