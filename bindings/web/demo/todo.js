// The demos' shared document, laid out as apps/desktop-demo/src/todo.h (the Qt desktop demo) lays
// it out, so that the web demo and the desktop demo edit the same documents: a text at root key
// "text", and at "todos" a list of maps, one per item, with "title" (a string), "done" (a
// boolean) and "order" (a double: items show sorted by order, then by ID). Each key is a
// multi-value slot; concurrent writes stay as siblings (the title shown is the first, an item is
// done when every sibling says so), as the desktop demo reads them.
//
// todoModel(weft) takes the weft.js module (the page and the Node.js tests load it from
// different places) and returns functions on a Document or a Transaction; no DOM here.

export const TEXT_KEY = 'text';
export const TODO_KEY = 'todos';

// Object IDs "<16 hex digits>:<seq>" in the core's order (node, then seq), as the desktop demo
// breaks ties between equal orders.
function compareIds(a, b) {
  const [an, as] = a.split(':');
  const [bn, bs] = b.split(':');
  if (an !== bn) return an < bn ? -1 : 1;
  const x = BigInt(as);
  const y = BigInt(bs);
  return x < y ? -1 : x > y ? 1 : 0;
}

export function todoModel(weft) {
  const listOf = (doc) => {
    const ref = doc.lookup(TODO_KEY);
    return ref && ref.kind === 'list' ? ref : null;
  };
  const siblings = (doc, id, key, type) =>
    doc.siblings(id, key).values.map((e) => e.value).filter((v) => typeof v === type);

  /**
   * The items, sorted for display: {id, title, titles, done, dones, order, conflicted}.
   * @returns {object[]}
   */
  function readTodos(doc) {
    const list = listOf(doc);
    if (!list) return [];
    const items = [];
    for (const v of doc.readList(list.id)) {
      if (!(v instanceof weft.ObjectRef) || v.kind !== 'map') continue;  // not an item
      const titles = siblings(doc, v.id, 'title', 'string');
      const dones = siblings(doc, v.id, 'done', 'boolean');
      // Of concurrent moves, the smallest order. (Reads give a double and an int64 alike as a
      // Number; the desktop demo, which skips int64 orders, never writes one, nor does this.)
      const orders = siblings(doc, v.id, 'order', 'number').filter((o) => Number.isFinite(o));
      items.push({
        id: v.id,
        titles,
        dones,
        title: titles[0] ?? '',
        done: dones.length > 0 && dones.every((d) => d),
        order: orders.length ? Math.min(...orders) : 0,
        conflicted: titles.length > 1 || dones.length > 1,
      });
    }
    items.sort((a, b) => (a.order !== b.order ? a.order - b.order : compareIds(a.id, b.id)));
    return items;
  }

  /** Adds an item at the end (AddTodo). */
  function addTodo(t, title) {
    const items = readTodos(t.doc);
    const list = t.root.list(TODO_KEY);
    const order = items.length ? Math.floor(items[items.length - 1].order) + 1 : 1;
    list.insertMap(list.length).put('title', title).put('done', false)
        .put('order', weft.float64(order));
  }

  /** Ticks or unticks an item (SetTodoDone). */
  function setDone(t, item, done) { t.put(item.id, 'done', done); }

  /** Removes an item (RemoveTodo); false when it is gone already. */
  function removeTodo(t, item) {
    const list = listOf(t.doc);
    const index = list ? t.doc.readList(list.id).findIndex((v) => v && v.id === item.id) : -1;
    if (index < 0) return false;
    t.listDelete(list.id, index, 1);
    return true;
  }

  return { readTodos, addTodo, setDone, removeTodo };
}
