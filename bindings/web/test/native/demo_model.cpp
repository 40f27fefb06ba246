// weft-web-demo-model: the Qt desktop demo's document model (apps/desktop-demo/src/todo.cpp, the
// code its window calls, without Qt) on a replica database, for the web demo's interop test
// (test/demo_interop.test.mjs). The `weft` tool syncs the same database with the relay.
//
//   weft-web-demo-model DB init DOC          the text and the to-do list, as the desktop demo's
//                                            first transaction on a new document makes them
//   weft-web-demo-model DB add DOC TITLE     AddTodo
//   weft-web-demo-model DB done DOC ROW 0|1  SetTodoDone on the ROWth item as displayed
//   weft-web-demo-model DB read DOC          one JSON line: {"text": ..., "todos": [{"title",
//                                            "done", "order", "conflicted"}, ...]} (ReadTodos)
//   weft-web-demo-model DB presence DOC URL NAME COLOR CURSOR ANCHOR MS
//                                            the desktop demo's presence (presence.cpp) through
//                                            the SDK's sync client: syncs DOC with the relay at
//                                            URL, then every 100 ms publishes {NAME, COLOR, the
//                                            text's anchors at code points CURSOR and ANCHOR},
//                                            and prints a JSON line per payload received:
//                                            {"node", "name", "color", "cursor", "anchor"} (the
//                                            anchors' indices in its text, null when absent) or
//                                            {"node", "invalid": true}; stops once it has
//                                            received a valid one and published for a second,
//                                            or after MS milliseconds
// Exits 1 with "error TEXT" on stderr when something fails.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "presence.h"
#include "todo.h"
#include "weft/replica.h"
#include "weft/sync.h"

namespace {

using namespace weft;

int Fail(const std::string& what) {
  std::fprintf(stderr, "error %s\n", what.c_str());
  return 1;
}

std::string Quote(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

Status WithList(Replica& r, const std::string& doc,
                const std::function<Status(Txn&, ObjectId)>& body) {
  return r
      .Transact(doc,
                [&](Txn& txn) -> Status {
                  auto list = txn.root().List(demo::kTodoKey);
                  if (!list.ok()) return list.status();
                  return body(txn, list->id());
                })
      .status();
}

// The `presence` command (see the top of this file).
Status RunPresence(Replica& r, const std::vector<std::string>& args) {
  const std::string& doc = args[2];
  SyncOptions opts;
  opts.documents = {doc};
  auto client = SyncClient::Create(r, opts);
  if (!client.ok()) return client.status();
  std::mutex mu;
  std::vector<PresenceEvent> inbox;
  (*client)->SetPresenceCallback([&](const PresenceEvent& e) {
    std::lock_guard l(mu);
    inbox.push_back(e);
  });
  WEFT_RETURN_IF_ERROR((*client)->AddPeer(args[3]));
  WEFT_RETURN_IF_ERROR((*client)->WaitUntilSynced(args[3], std::chrono::seconds(30)).status());
  // The text's anchors at code points, and an anchor's index (nullopt when it names no item of
  // this replica's text), as the desktop demo's TextBinding makes and reads them.
  auto anchor_at = [&](size_t index) -> Result<crdt::Anchor> {
    Result<crdt::Anchor> out = Status::NotFound("no text");
    WEFT_RETURN_IF_ERROR(r.Read(doc, [&](const View& v) {
      if (auto t = v.root().Text(demo::kTextKey); t.ok()) out = t->AnchorAt(index);
    }));
    return out;
  };
  auto index_of = [&](const std::optional<crdt::Anchor>& a) -> std::string {
    if (!a) return "null";
    std::string out = "null";
    (void)r.Read(doc, [&](const View& v) {
      if (auto t = v.root().Text(demo::kTextKey); t.ok()) {
        if (auto i = t->IndexOf(*a); i.ok()) out = std::to_string(*i);
      }
    });
    return out;
  };
  demo::Presence mine;
  mine.name = args[4];
  mine.color = args[5];
  auto cursor = anchor_at(std::strtoul(args[6].c_str(), nullptr, 10));
  if (!cursor.ok()) return cursor.status();
  auto anchor = anchor_at(std::strtoul(args[7].c_str(), nullptr, 10));
  if (!anchor.ok()) return anchor.status();
  mine.cursor = *cursor;
  mine.anchor = *anchor;
  const std::string payload = demo::EncodePresence(mine);
  const auto start = std::chrono::steady_clock::now();
  const auto limit = std::chrono::milliseconds(std::strtoul(args[8].c_str(), nullptr, 10));
  bool got = false;
  int published = 0;
  while (std::chrono::steady_clock::now() - start < limit && !(got && published >= 10)) {
    if ((*client)->PublishPresence(doc, payload).ok()) ++published;
    std::vector<PresenceEvent> events;
    {
      std::lock_guard l(mu);
      events.swap(inbox);
    }
    for (const PresenceEvent& e : events) {
      auto p = demo::DecodePresence(e.payload);
      if (!p) {
        std::printf("{\"node\":\"%s\",\"invalid\":true}\n", e.node.ToHex().c_str());
        continue;
      }
      got = true;
      std::printf("{\"node\":\"%s\",\"name\":%s,\"color\":%s,\"cursor\":%s,\"anchor\":%s}\n",
                  e.node.ToHex().c_str(), Quote(p->name).c_str(), Quote(p->color).c_str(),
                  index_of(p->cursor).c_str(), index_of(p->anchor).c_str());
    }
    std::fflush(stdout);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  (*client)->Stop();
  return Status::Ok();
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() < 3)
    return Fail("usage: weft-web-demo-model DB init|add|done|read|presence DOC ...");
  const std::string& cmd = args[1];
  const std::string& doc = args[2];
  ReplicaOptions opts;
  opts.create_if_missing = cmd != "read";
  auto opened = Replica::Open(args[0], opts);
  if (!opened.ok()) return Fail(opened.status().ToString());
  Replica& r = **opened;

  Status s;
  if (cmd == "init" && args.size() == 3) {
    s = r.Transact(doc, [](Txn& txn) -> Status {
           if (Status t = txn.root().Text(demo::kTextKey).status(); !t.ok()) return t;
           return txn.root().List(demo::kTodoKey).status();
         }).status();
  } else if (cmd == "add" && args.size() == 4) {
    s = WithList(r, doc, [&](Txn& t, ObjectId list) { return demo::AddTodo(t, list, args[3]); });
  } else if (cmd == "done" && args.size() == 5) {
    s = WithList(r, doc, [&](Txn& t, ObjectId list) -> Status {
      auto items = demo::ReadTodos(t.document(), list);
      if (!items.ok()) return items.status();
      size_t row = std::strtoul(args[3].c_str(), nullptr, 10);
      if (row >= items->size()) return Status::OutOfRange("no such row");
      return demo::SetTodoDone(t, (*items)[row].id, args[4] == "1");
    });
  } else if (cmd == "read" && args.size() == 3) {
    std::string out;
    s = r.Read(doc, [&](const View& v) {
      std::string text;
      if (auto t = v.root().Text(demo::kTextKey); t.ok()) {
        if (auto read = v.document().ReadText(t->id()); read.ok()) text = *read;
      }
      out = "{\"text\":" + Quote(text) + ",\"todos\":[";
      if (auto list = v.root().List(demo::kTodoKey); list.ok()) {
        if (auto items = demo::ReadTodos(v.document(), list->id()); items.ok()) {
          for (size_t i = 0; i < items->size(); ++i) {
            const demo::TodoItem& item = (*items)[i];
            char order[32];
            std::snprintf(order, sizeof order, "%.17g", item.order);
            out += std::string(i ? "," : "") + "{\"title\":" + Quote(item.title()) +
                   ",\"done\":" + (item.done() ? "true" : "false") + ",\"order\":" + order +
                   ",\"conflicted\":" + (item.conflicted() ? "true" : "false") + "}";
          }
        }
      }
      out += "]}";
    });
    if (s.ok()) std::printf("%s\n", out.c_str());
  } else if (cmd == "presence" && args.size() == 9) {
    s = RunPresence(r, args);
  } else {
    return Fail("usage: weft-web-demo-model DB init|add|done|read|presence DOC ...");
  }
  return s.ok() ? 0 : Fail(s.ToString());
}
