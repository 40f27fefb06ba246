#include "todo.h"

#include <algorithm>
#include <cmath>

namespace weft::demo {
namespace {

Result<MapRef> Item(Txn& txn, ObjectId item) {
  auto kind = txn.document().KindOf(item);
  if (!kind.ok() || *kind != ObjectKind::kMap) return Status::NotFound("the item is gone");
  return MapRef(&txn.document(), &txn.raw(), item);
}

Status Renumber(Txn& txn, const std::vector<TodoItem>& items) {
  for (size_t i = 0; i < items.size(); ++i) {
    auto m = Item(txn, items[i].id);
    if (!m.ok()) return m.status();
    WEFT_RETURN_IF_ERROR(m->Put("order", Scalar(static_cast<double>(i + 1))));
  }
  return Status::Ok();
}

}  // namespace

bool TodoItem::done() const {
  if (dones.empty()) return false;
  return std::all_of(dones.begin(), dones.end(), [](bool d) { return d; });
}

Result<std::vector<TodoItem>> ReadTodos(const crdt::Document& doc, ObjectId list) {
  auto values = doc.ReadList(list);
  if (!values.ok()) return values.status();
  std::vector<TodoItem> items;
  for (const crdt::Value& v : *values) {
    if (!v.is_object() || v.object().kind != ObjectKind::kMap) continue;  // not an item
    TodoItem item;
    item.id = v.object().id;
    MapRef m(&doc, nullptr, item.id);
    if (auto r = m.Get("title"); r.ok()) {
      for (const auto& e : r->values) {
        if (!e.value.is_object() && e.value.scalar().is<std::string>()) {
          item.titles.push_back(e.value.scalar().as<std::string>());
        }
      }
    }
    if (auto r = m.Get("done"); r.ok()) {
      for (const auto& e : r->values) {
        if (!e.value.is_object() && e.value.scalar().is<bool>()) {
          item.dones.push_back(e.value.scalar().as<bool>());
        }
      }
    }
    bool have_order = false;
    if (auto r = m.Get("order"); r.ok()) {
      for (const auto& e : r->values) {  // of concurrent moves, the smallest order
        if (e.value.is_object() || !e.value.scalar().is<double>()) continue;
        double o = e.value.scalar().as<double>();
        if (!std::isfinite(o)) continue;
        if (!have_order || o < item.order) item.order = o;
        have_order = true;
      }
    }
    items.push_back(std::move(item));
  }
  std::stable_sort(items.begin(), items.end(), [](const TodoItem& a, const TodoItem& b) {
    if (a.order != b.order) return a.order < b.order;
    return a.id < b.id;
  });
  return items;
}

Result<std::vector<Conflict>> FindConflicts(const crdt::Document& doc, ObjectId list) {
  auto items = ReadTodos(doc, list);
  if (!items.ok()) return items.status();
  std::vector<Conflict> out;
  for (const TodoItem& item : *items) {
    MapRef m(&doc, nullptr, item.id);
    for (const char* field : {"title", "done"}) {
      auto r = m.Get(field);
      if (!r.ok() || !r->conflict()) continue;
      Conflict c;
      c.item = item.id;
      c.field = field;
      c.item_title = item.title();
      for (const auto& e : r->values) {
        if (!e.value.is_object()) c.siblings.push_back(e.value.scalar());
      }
      c.context = r->context;
      out.push_back(std::move(c));
    }
  }
  return out;
}

Status AddTodo(Txn& txn, ObjectId list, const std::string& title) {
  auto items = ReadTodos(txn.document(), list);
  if (!items.ok()) return items.status();
  ListRef l(&txn.document(), &txn.raw(), list);
  auto size = l.Size();
  if (!size.ok()) return size.status();
  auto m = l.InsertMap(*size);
  if (!m.ok()) return m.status();
  double order = items->empty() ? 1.0 : std::floor(items->back().order) + 1.0;
  WEFT_RETURN_IF_ERROR(m->Put("title", Scalar(title)));
  WEFT_RETURN_IF_ERROR(m->Put("done", Scalar(false)));
  return m->Put("order", Scalar(order));
}

Status SetTodoTitle(Txn& txn, ObjectId item, const std::string& title) {
  auto m = Item(txn, item);
  if (!m.ok()) return m.status();
  return m->Put("title", Scalar(title));
}

Status SetTodoDone(Txn& txn, ObjectId item, bool done) {
  auto m = Item(txn, item);
  if (!m.ok()) return m.status();
  return m->Put("done", Scalar(done));
}

Status RemoveTodo(Txn& txn, ObjectId list, ObjectId item) {
  ListRef l(&txn.document(), &txn.raw(), list);
  auto values = l.Values();
  if (!values.ok()) return values.status();
  for (size_t i = 0; i < values->size(); ++i) {
    const crdt::Value& v = (*values)[i];
    if (v.is_object() && v.object().id == item) return l.Delete(i, 1);
  }
  return Status::NotFound("the item is gone");
}

Status MoveTodo(Txn& txn, ObjectId list, ObjectId item, int steps) {
  auto items = ReadTodos(txn.document(), list);
  if (!items.ok()) return items.status();
  std::vector<TodoItem>& v = *items;
  auto it = std::find_if(v.begin(), v.end(), [&](const TodoItem& t) { return t.id == item; });
  if (it == v.end()) return Status::NotFound("the item is gone");
  const long from = it - v.begin();
  const long to = std::clamp<long>(from + steps, 0, static_cast<long>(v.size()) - 1);
  if (to == from) return Status::Ok();
  TodoItem moved = *it;
  v.erase(it);
  // The new neighbours, after removing the item: it goes between v[to - 1] and v[to].
  double lo = to > 0 ? v[to - 1].order : (v.empty() ? 0.0 : v.front().order - 2.0);
  double hi = to < static_cast<long>(v.size()) ? v[to].order : lo + 2.0;
  double mid = lo + (hi - lo) / 2;
  if (!(mid > lo && mid < hi)) {  // no room left between them (or equal orders): renumber all
    v.insert(v.begin() + to, moved);
    return Renumber(txn, v);
  }
  auto m = Item(txn, item);
  if (!m.ok()) return m.status();
  return m->Put("order", Scalar(mid));
}

Status ResolveConflict(Txn& txn, const Conflict& conflict, Scalar value) {
  auto m = Item(txn, conflict.item);
  if (!m.ok()) return m.status();
  return m->PutAfterRead(conflict.field, std::move(value), conflict.context);
}

}  // namespace weft::demo
