// The shared to-do list on the SDK: a Weft list of maps, one per item, with keys "title" (a
// string), "done" (a bool) and "order" (a double: items show sorted by order, then by id, so that
// reordering is one write of one item and concurrent adds at the end have a fixed order
// everywhere). Each key is a multi-value slot: concurrent offline writes stay as siblings until
// someone picks or merges one (a write after read of exactly the siblings shown).
//
// Functions on a document view or a transaction; no Qt.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "weft/replica.h"
#include "weft/values.h"

namespace weft::demo {

inline constexpr char kTextKey[] = "text";
inline constexpr char kTodoKey[] = "todos";

struct TodoItem {
  ObjectId id;
  std::vector<std::string> titles;  // every sibling of "title" (one unless in conflict)
  std::vector<bool> dones;          // every sibling of "done"
  double order = 0;
  std::string title() const { return titles.empty() ? std::string() : titles.front(); }
  bool done() const;  // true when every sibling says so
  bool conflicted() const { return titles.size() > 1 || dones.size() > 1; }
};

// A field of one item with siblings.
struct Conflict {
  ObjectId item;
  std::string field;  // "title" or "done"
  std::string item_title;
  std::vector<Scalar> siblings;
  crdt::VersionVector context;  // of the read that showed the siblings
};

// The items of the list `list` (sorted for display) and the conflicts among them.
Result<std::vector<TodoItem>> ReadTodos(const crdt::Document& doc, ObjectId list);
Result<std::vector<Conflict>> FindConflicts(const crdt::Document& doc, ObjectId list);

// Writes, inside a transaction on the list's document. kNotFound when the item is gone (deleted
// by someone else).
Status AddTodo(Txn& txn, ObjectId list, const std::string& title);
Status SetTodoTitle(Txn& txn, ObjectId item, const std::string& title);
Status SetTodoDone(Txn& txn, ObjectId item, bool done);
Status RemoveTodo(Txn& txn, ObjectId list, ObjectId item);
// Moves the item `steps` places up (negative) or down (positive) in the displayed order.
Status MoveTodo(Txn& txn, ObjectId list, ObjectId item, int steps);
// Replaces exactly the siblings `conflict` showed with `value`.
Status ResolveConflict(Txn& txn, const Conflict& conflict, Scalar value);

}  // namespace weft::demo
