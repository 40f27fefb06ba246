// Fuzz target: the relay's side of a connection (sync::Link as weft-relay configures it), fed a
// sequence of frames from an untrusted peer: the handshake, then whatever follows.
// Properties: nothing crashes; every frame the relay sends in answer is a valid protocol message;
// after a close the link takes no more frames.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fixtures.h"
#include "sync/hub.h"
#include "sync/link.h"
#include "sync/wire.h"
#include "weft/replica.h"

namespace {

struct RelaySide {
  std::string dir;
  std::unique_ptr<weft::Replica> replica;
  std::unique_ptr<weft::sync::Hub> hub;

  RelaySide() {
    char tmpl[] = "/tmp/weft-fuzz-relay-XXXXXX";
    const char* d = mkdtemp(tmpl);
    if (d == nullptr) weft::fuzz::Violated("cannot create a temporary directory");
    dir = d;
    weft::ReplicaOptions opts;
    opts.clock = [] { return weft::fuzz::kBaseTime + 60'000; };
    auto r = weft::Replica::Open(dir + "/relay.db", opts);
    if (!r.ok()) weft::fuzz::Violated("cannot open the relay replica");
    replica = std::move(*r);
    // One document the peer may ask for, holding the base document's changes.
    std::vector<std::string> blobs;
    const weft::crdt::Document base = weft::fuzz::BaseDocument();
    for (const auto& c : base.history()) {
      blobs.push_back(weft::crdt::EncodeChange(c));
    }
    if (!replica->ApplyRemoteChanges("doc", blobs).ok()) {
      weft::fuzz::Violated("cannot seed the relay replica");
    }
    hub = std::make_unique<weft::sync::Hub>(*replica);
  }
  ~RelaySide() {
    hub.reset();
    replica.reset();
    std::string rm = "rm -rf '" + dir + "'";
    if (std::system(rm.c_str()) != 0) std::fprintf(stderr, "could not remove %s\n", dir.c_str());
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace weft;
  static RelaySide relay;

  sync::LinkConfig config;  // as weft-relay's sessions: the accepting side, a relay
  config.relay = true;
  config.max_documents = 64;
  bool closed = false;
  sync::LinkTransport transport;
  transport.send = [&](std::string frame) {
    fuzz::Expect(!closed, "no frame is sent after a close");
    auto sent = sync::Decode(frame);
    if (!sent.ok()) {
      std::fprintf(stderr, "the relay sent: %s\n", sent.status().ToString().c_str());
      fuzz::Violated("every frame the relay sends is valid");
    }
  };
  transport.close = [&](uint16_t, std::string) { closed = true; };
  transport.queued = [] { return size_t{0}; };
  sync::Link link(*relay.hub, config, transport);
  link.Start();
  for (std::string_view frame :
       fuzz::SplitFrames(std::string_view(reinterpret_cast<const char*>(data), size))) {
    if (link.closed()) break;
    link.OnFrame(frame);
    link.OnWritable();
  }
  if (!link.closed()) link.OnTick();
  link.OnClosed("end of input");
  return 0;
}
