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
// Exits 1 with "error TEXT" on stderr when something fails.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "todo.h"
#include "weft/replica.h"

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

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() < 3) return Fail("usage: weft-web-demo-model DB init|add|done|read DOC ...");
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
  } else {
    return Fail("usage: weft-web-demo-model DB init|add|done|read DOC ...");
  }
  return s.ok() ? 0 : Fail(s.ToString());
}
