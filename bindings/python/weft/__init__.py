"""Weft for Python: an offline-first CRDT replica, over the C API (libweft.so.0) with ctypes.

    import weft
    with weft.Replica.open("notes.db") as r:
        with r.transaction("todo") as t:          # one atomic change, or nothing
            t["title"] = "Groceries"
            t.counter("edits").add(1)
            t.text("body").insert(0, "milk, eggs")
        print(r.get("todo"))                      # {'body': 'milk, eggs', 'edits': 1, ...}

Values come back as Python types: maps as dict, text as str, counters as int, lists as list,
sets as set, registers as their value. Concurrent writes of one map key or register that were
not resolved come back as a Conflict (a list of the sibling values).

Every failure raises WeftError (or a subclass per code) carrying the C error code and message.

The library is found through the WEFT_LIBRARY environment variable (a path to libweft.so), else
the path `cmake --install` recorded in the copy of this package it installed
(PREFIX/share/weft/python, which `pip install` takes from there), else the system's library path.

Threads: a Replica may be shared between threads. Change-feed callbacks run on the thread that
committed: the one calling a transaction for local changes, a sync client's network thread for
remote ones (ctypes takes the GIL for them).
"""

import ctypes
import json
import os
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, List, Optional, Tuple

from . import _capi
from ._capi import lib

__all__ = [
    "Replica", "Sync", "WeftError", "Conflict", "ChangeEvent", "Patch", "CommitInfo", "HistoryEntry",
    "PeerStatus", "DocumentSyncStatus", "sync_once", "version",
]

# --------------------------------------------------------------------------------------- errors

OK = 0
_CODE_NAMES = {}


class WeftError(Exception):
    """A failed Weft call: `code` is the C API's weft_status, `message` its message."""

    code = None

    def __init__(self, code, message):
        super().__init__(f"{_name(code)} ({code}): {message}")
        self.code = code
        self.message = message

    @property
    def name(self):
        return _name(self.code)


def _name(code):
    return lib.weft_status_name(code).decode()


def _subclass(name, code):
    cls = type(name, (WeftError,), {"code": code})
    _CODE_NAMES[code] = cls
    return cls


NotFound = _subclass("NotFound", 1)
InvalidArgument = _subclass("InvalidArgument", 2)
Corruption = _subclass("Corruption", 3)
IOError_ = _subclass("WeftIOError", 4)
Disconnected = _subclass("Disconnected", 5)
PermissionDenied = _subclass("PermissionDenied", 6)
MissingDependency = _subclass("MissingDependency", 7)
OutOfRange = _subclass("OutOfRange", 8)
TypeMismatch = _subclass("TypeMismatch", 9)
UnsupportedVersion = _subclass("UnsupportedVersion", 10)
ClockDrift = _subclass("ClockDrift", 11)
HistoryTruncated = _subclass("HistoryTruncated", 12)
Timeout = _subclass("Timeout", 13)
Busy = _subclass("Busy", 14)
Aborted = _subclass("Aborted", 15)
Internal = _subclass("Internal", 16)
__all__ += [c.__name__ for c in _CODE_NAMES.values()] + ["IOError_"]


def _key_bytes(key):
    """A public key given as 64 hex characters, as the 32 bytes the C API takes."""
    if not isinstance(key, str) or len(key) != 64:
        raise ValueError("a public key is 64 hex characters")
    return bytes.fromhex(key)


def _take_string(ptr, length=None):
    """Copies out and frees a string the C API returned."""
    if not ptr:
        return ""
    try:
        n = length if length is not None else len(ctypes.string_at(ptr))
        return ctypes.string_at(ptr, n).decode("utf-8")
    finally:
        lib.weft_string_free(ptr)


def _thread_error():
    n = ctypes.c_size_t()
    return _take_string(lib.weft_thread_errmsg(ctypes.byref(n)), n.value)


def _check(code):
    if code != OK:
        cls = _CODE_NAMES.get(code, WeftError)
        raise cls(code, _thread_error())


def _b(s):
    """A str (or raw bytes, passed through for the C side to validate) as UTF-8 bytes."""
    if isinstance(s, bytes):
        return s
    if not isinstance(s, str):
        raise TypeError(f"expected str, got {type(s).__name__}")
    return s.encode("utf-8", "surrogatepass")  # lone surrogates reach C, which refuses them


def version():
    return lib.weft_version().decode()


# --------------------------------------------------------------------------------------- values

NULL, BOOL, INT, DOUBLE, STRING, BYTES = 0, 1, 2, 3, 4, 5
MAP, REGISTER, LWW, COUNTER, SET, LIST, TEXT = 16, 17, 18, 19, 20, 21, 22
_KIND_NAMES = {MAP: "map", REGISTER: "register", LWW: "lww", COUNTER: "counter", SET: "set",
               LIST: "list", TEXT: "text"}


class Conflict(list):
    """The sibling values of a map key or register written concurrently (unresolved)."""

    def __repr__(self):
        return f"Conflict({list.__repr__(self)})"


def _scalar(v):
    """A Python scalar as a weft_value (keeping its bytes alive in the returned tuple)."""
    c = _capi.Value()
    keep = None
    if v is None:
        c.type = NULL
    elif isinstance(v, bool):
        c.type, c.boolean = BOOL, int(v)
    elif isinstance(v, int):
        if not -(1 << 63) <= v < (1 << 63):
            raise OverflowError("integers are 64-bit")
        c.type, c.integer = INT, v
    elif isinstance(v, float):
        c.type, c.real = DOUBLE, v
    elif isinstance(v, str):
        keep = ctypes.create_string_buffer(_b(v), len(_b(v)))
        c.type, c.data, c.len = STRING, ctypes.cast(keep, ctypes.c_void_p), len(keep)
    elif isinstance(v, (bytes, bytearray, memoryview)):
        data = bytes(v)
        keep = ctypes.create_string_buffer(data, len(data))
        c.type, c.data, c.len = BYTES, ctypes.cast(keep, ctypes.c_void_p), len(data)
    else:
        raise TypeError(f"not a Weft scalar: {type(v).__name__} (use None, bool, int, float, "
                        "str or bytes; nested objects through t.map(), t.list(), ...)")
    return c, keep


def _from_c(c):
    t = c.type
    if t == NULL:
        return None
    if t == BOOL:
        return bool(c.boolean)
    if t == INT:
        return c.integer
    if t == DOUBLE:
        return c.real
    if t == STRING:
        return ctypes.string_at(c.data, c.len).decode("utf-8")
    if t == BYTES:
        return ctypes.string_at(c.data, c.len)
    raise ValueError(f"not a scalar: type {t}")


class _Values:
    """An owned weft_values list."""

    def __init__(self):
        self.ptr = ctypes.c_void_p()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        lib.weft_values_free(self.ptr)
        self.ptr = ctypes.c_void_p()

    def items(self):
        out = []
        for i in range(lib.weft_values_count(self.ptr)):
            c = _capi.Value()
            _check(lib.weft_values_get(self.ptr, i, ctypes.byref(c)))
            out.append(c)
        return out


def _strings(ptr):
    try:
        out = []
        for i in range(lib.weft_strings_count(ptr)):
            n = ctypes.c_size_t()
            p = lib.weft_strings_get(ptr, i, ctypes.byref(n))
            out.append(ctypes.string_at(p, n.value).decode("utf-8"))
        return out
    finally:
        lib.weft_strings_free(ptr)


# ----------------------------------------------------------------------------------------- views

class View:
    """Read access to a document, valid inside Replica.read's callback or a live transaction.
    Paths are map keys (str) and list indexes (int) from the root map."""

    def __init__(self, ptr):
        self._p = ptr

    def _obj_of(self, c):
        return _capi.Obj(c.object.node, c.object.seq)

    def _resolve(self, path):
        """The (kind, obj) of the object at `path`, or ("scalar", value) for a scalar."""
        obj, kind = _capi.ROOT, MAP
        for i, step in enumerate(path):
            if kind == MAP:
                if not isinstance(step, (str, bytes)):
                    raise TypeError(f"path step {i}: a map key must be str")
                k = _b(step)
                with _Values() as vals:
                    _check(lib.weft_view_map_get(self._p, obj, k, len(k), ctypes.byref(vals.ptr)))
                    items = vals.items()
                    if not items:
                        raise NotFound(1, f"no key {step!r}")
                    objects = [c for c in items if c.type >= MAP]
                    c = objects[-1] if objects else items[-1]
                    if c.type < MAP:
                        if i != len(path) - 1:
                            raise TypeMismatch(9, f"key {step!r} holds a scalar")
                        return "scalar", (Conflict(_from_c(x) for x in items)
                                          if len(items) > 1 else _from_c(c))
                    obj, kind = self._obj_of(c), c.type
            elif kind == LIST:
                if not isinstance(step, int):
                    raise TypeError(f"path step {i}: a list index must be int")
                with _Values() as vals:
                    _check(lib.weft_view_list_values(self._p, obj, ctypes.byref(vals.ptr)))
                    items = vals.items()
                    if not -len(items) <= step < len(items):
                        raise OutOfRange(8, f"list index {step} of {len(items)}")
                    c = items[step]
                    if c.type < MAP:
                        if i != len(path) - 1:
                            raise TypeMismatch(9, f"index {step} holds a scalar")
                        return "scalar", _from_c(c)
                    obj, kind = self._obj_of(c), c.type
            else:
                raise TypeMismatch(9, f"path step {i}: a {_KIND_NAMES[kind]} has no children")
        return kind, obj

    def get(self, *path):
        """The value at `path` (the whole document when empty) as Python types."""
        kind, obj = self._resolve(path)
        if kind == "scalar":
            return obj
        return self._object(kind, obj)

    def _object(self, kind, obj):
        p = self._p
        if kind == MAP:
            out = {}
            keys = ctypes.c_void_p()
            _check(lib.weft_view_map_keys(p, obj, ctypes.byref(keys)))
            for k in _strings(keys):
                kb = _b(k)
                with _Values() as vals:
                    _check(lib.weft_view_map_get(p, obj, kb, len(kb), ctypes.byref(vals.ptr)))
                    items = [self._value(c) for c in vals.items()]
                out[k] = items[0] if len(items) == 1 else Conflict(items)
            return out
        if kind == REGISTER:
            sibs = self.siblings_of(obj)
            return None if not sibs else sibs[0] if len(sibs) == 1 else Conflict(sibs)
        if kind == LWW:
            with _Values() as vals:
                _check(lib.weft_view_lww_get(p, obj, ctypes.byref(vals.ptr)))
                items = vals.items()
                return _from_c(items[0]) if items else None
        if kind == COUNTER:
            n = ctypes.c_int64()
            _check(lib.weft_view_counter_get(p, obj, ctypes.byref(n)))
            return n.value
        if kind == SET:
            with _Values() as vals:
                _check(lib.weft_view_set_elements(p, obj, ctypes.byref(vals.ptr)))
                return {_from_c(c) for c in vals.items()}
        if kind == LIST:
            with _Values() as vals:
                _check(lib.weft_view_list_values(p, obj, ctypes.byref(vals.ptr)))
                return [self._value(c) for c in vals.items()]
        if kind == TEXT:
            s, n = ctypes.c_void_p(), ctypes.c_size_t()
            _check(lib.weft_view_text_read(p, obj, ctypes.byref(s), ctypes.byref(n)))
            return _take_string(s.value, n.value)
        raise ValueError(f"unknown kind {kind}")

    def _value(self, c):
        return self._object(c.type, self._obj_of(c)) if c.type >= MAP else _from_c(c)

    def siblings_of(self, reg):
        with _Values() as vals:
            _check(lib.weft_view_register_get(self._p, reg, ctypes.byref(vals.ptr)))
            return [_from_c(c) for c in vals.items()]

    def siblings(self, *path):
        """Every value of the map key or register at `path` (several after concurrent writes)."""
        kind, obj = self._resolve(path)
        if kind == REGISTER:
            return self.siblings_of(obj)
        parent_kind, parent = self._resolve(path[:-1])
        if parent_kind != MAP:
            raise TypeMismatch(9, "siblings of a list element")
        k = _b(path[-1])
        with _Values() as vals:
            _check(lib.weft_view_map_get(self._p, parent, k, len(k), ctypes.byref(vals.ptr)))
            return [self._value(c) for c in vals.items()]

    def lww(self, *path):
        """An LWW register: (value, [values it overwrote]); (None, []) when never written."""
        kind, obj = self._resolve(path)
        if kind != LWW:
            raise TypeMismatch(9, "not an LWW register")
        with _Values() as vals:
            _check(lib.weft_view_lww_get(self._p, obj, ctypes.byref(vals.ptr)))
            items = [_from_c(c) for c in vals.items()]
        return (items[0], items[1:]) if items else (None, [])

    def keys(self, *path):
        kind, obj = self._resolve(path)
        if kind != MAP:
            raise TypeMismatch(9, "not a map")
        keys = ctypes.c_void_p()
        _check(lib.weft_view_map_keys(self._p, obj, ctypes.byref(keys)))
        return _strings(keys)

    def to_json(self):
        s, n = ctypes.c_void_p(), ctypes.c_size_t()
        _check(lib.weft_view_to_json(self._p, ctypes.byref(s), ctypes.byref(n)))
        return _take_string(s.value, n.value)


# ---------------------------------------------------------------------------------- transactions

@dataclass
class CommitInfo:
    changed: bool
    change: Tuple[int, int]  # (author node, first seq)
    token: str  # the document's version after the commit, as a causal token


class _Ref:
    """A nested object at a path, for writing inside a transaction."""

    kind = MAP

    def __init__(self, txn, path):
        self._t = txn
        self._path = tuple(path)

    def _do(self, fn):
        kind = self.kind
        path = self._path
        self._t._run(lambda tp: fn(tp, self._t._object(tp, path, kind)))


class MapRef(_Ref):
    kind = MAP

    def put(self, key, value):
        c, keep = _scalar(value)
        k = _b(key)
        holder = (c, keep)
        self._do(lambda tp, obj: _check(
            lib.weft_txn_map_put(tp, obj, k, len(k), ctypes.byref(holder[0]))))

    __setitem__ = put

    def __delitem__(self, key):
        k = _b(key)
        self._do(lambda tp, obj: _check(lib.weft_txn_map_delete(tp, obj, k, len(k))))

    def delete(self, key):
        del self[key]

    # The nested object at `key`, created (inside this transaction) when the key is absent; a
    # key holding something else raises TypeMismatch.
    def _nested(self, cls, key):
        ref = cls(self._t, self._path + (key,))
        ref._do(lambda tp, obj: None)
        return ref

    def map(self, key):
        return self._nested(MapRef, key)

    def register(self, key):
        return self._nested(RegisterRef, key)

    def lww(self, key):
        return self._nested(LwwRef, key)

    def counter(self, key):
        return self._nested(CounterRef, key)

    def set(self, key):
        return self._nested(SetRef, key)

    def list(self, key):
        return self._nested(ListRef, key)

    def text(self, key):
        return self._nested(TextRef, key)



class RegisterRef(_Ref):
    kind = REGISTER

    def set(self, value):
        holder = _scalar(value)
        self._do(lambda tp, obj: _check(lib.weft_txn_register_set(tp, obj,
                                                                  ctypes.byref(holder[0]))))

    def siblings(self):
        """The register's current siblings (live transactions only)."""
        view = self._t.view
        obj = self._t._object(self._t._live, self._path, REGISTER)
        return view.siblings_of(obj)

    def resolve(self, value):
        """Replaces exactly the siblings read now with `value` (live transactions only); siblings
        written concurrently elsewhere stay."""
        holder = _scalar(value)
        tp = self._t._require_live("resolve")
        obj = self._t._object(tp, self._path, REGISTER)
        with _Values() as vals:
            _check(lib.weft_view_register_get(lib.weft_txn_view(tp), obj, ctypes.byref(vals.ptr)))
            _check(lib.weft_txn_register_set_after_read(tp, obj, ctypes.byref(holder[0]),
                                                        vals.ptr))


class LwwRef(_Ref):
    kind = LWW

    def set(self, value):
        holder = _scalar(value)
        self._do(lambda tp, obj: _check(lib.weft_txn_register_set(tp, obj,
                                                                  ctypes.byref(holder[0]))))


class CounterRef(_Ref):
    kind = COUNTER

    def add(self, delta=1):
        if not isinstance(delta, int) or isinstance(delta, bool):
            raise TypeError("a counter adds integers")
        self._do(lambda tp, obj: _check(lib.weft_txn_counter_add(tp, obj, delta)))


class SetRef(_Ref):
    kind = SET

    def add(self, element):
        holder = _scalar(element)
        self._do(lambda tp, obj: _check(lib.weft_txn_set_add(tp, obj, ctypes.byref(holder[0]))))

    def remove(self, element):
        holder = _scalar(element)
        self._do(lambda tp, obj: _check(lib.weft_txn_set_remove(tp, obj,
                                                                ctypes.byref(holder[0]))))

    discard = remove


def _seq_size(tp, obj):
    n = ctypes.c_size_t()
    _check(lib.weft_view_seq_size(lib.weft_txn_view(tp), obj, ctypes.byref(n)))
    return n.value


class ListRef(_Ref):
    kind = LIST

    def insert(self, index, *values):
        holders = [_scalar(v) for v in values]
        arr = (_capi.Value * len(holders))(*[h[0] for h in holders])

        def op(tp, obj):
            pos = index if index >= 0 else _seq_size(tp, obj) + index + 1
            # `holders` (closed over) keeps the strings' buffers alive until the op runs.
            _check(lib.weft_txn_list_insert(tp, obj, pos, arr, len(holders)))
        self._do(op)

    def append(self, *values):
        self.insert(-1, *values)

    def extend(self, values):
        self.insert(-1, *values)

    def delete(self, index, count=1):
        self._do(lambda tp, obj: _check(lib.weft_txn_seq_delete(tp, obj, index, count)))

    def insert_map(self, index):
        """Inserts a new map at `index`; returns its MapRef (by index at the time of use)."""
        self._do(lambda tp, obj: _check(lib.weft_txn_list_insert_object(
            tp, obj, index if index >= 0 else _seq_size(tp, obj) + index + 1, MAP,
            ctypes.byref(_capi.Obj()))))
        return MapRef(self._t, self._path + (index,))


class TextRef(_Ref):
    kind = TEXT

    def insert(self, index, text):
        s = _b(text)

        def op(tp, obj):
            pos = index if index >= 0 else _seq_size(tp, obj) + index + 1
            _check(lib.weft_txn_text_insert(tp, obj, pos, s, len(s)))
        self._do(op)

    def append(self, text):
        self.insert(-1, text)

    def delete(self, index, count=1):
        self._do(lambda tp, obj: _check(lib.weft_txn_seq_delete(tp, obj, index, count)))


class Transaction(MapRef):
    """Writes to one document, applied as one atomic change.

    As a context manager (`with replica.transaction(doc) as t:`) the writes are recorded and
    applied together when the block ends without an exception; an exception (or a failed write)
    leaves the document untouched. Reads are not available there: use `replica.transact(doc, fn)`,
    whose `fn(t)` runs inside the transaction with `t.view` reading its own writes."""

    def __init__(self, replica, doc):
        super().__init__(self, ())
        self._replica = replica
        self._doc = doc
        self._ops = []
        self._live = None
        self.result: Optional[CommitInfo] = None

    # A transaction is the root map.
    def _run(self, op):
        if self._live is not None:
            op(self._live)
        else:
            self._ops.append(op)

    def _require_live(self, what):
        if self._live is None:
            raise WeftError(2, f"{what} needs a live transaction (replica.transact(doc, fn))")
        return self._live

    @property
    def view(self):
        return View(lib.weft_txn_view(self._require_live("reading")))

    def _object(self, tp, path, kind):
        obj = _capi.ROOT
        for i, step in enumerate(path):
            want = kind if i == len(path) - 1 else (MAP if isinstance(path[i + 1], str) else LIST)
            if isinstance(step, int):
                with _Values() as vals:
                    _check(lib.weft_view_list_values(lib.weft_txn_view(tp), obj,
                                                     ctypes.byref(vals.ptr)))
                    items = vals.items()
                    if not -len(items) <= step < len(items):
                        raise OutOfRange(8, f"list index {step} of {len(items)}")
                    c = items[step]
                    if c.type != want:
                        raise TypeMismatch(9, f"list index {step} is not a {_KIND_NAMES[want]}")
                    obj = _capi.Obj(c.object.node, c.object.seq)
                continue
            k = _b(step)
            out = _capi.Obj()
            _check(lib.weft_txn_map_object(tp, obj, k, len(k), want, ctypes.byref(out)))
            obj = out
        return obj

    def _execute(self, fn):
        """Runs weft_transact; fn(tp) does the work inside. Re-raises Python errors from it."""
        failure = []

        def body(tp, _user):
            try:
                self._live = tp
                fn(tp)
                return OK
            except WeftError as e:
                failure.append(e)
                return e.code if e.code else 15
            except BaseException as e:  # noqa: B036 (anything aborts the transaction)
                failure.append(e)
                return 15
            finally:
                self._live = None

        cb = _capi.TXN_FN(body)
        info = _capi.CommitInfo()
        d = _b(self._doc)
        code = lib.weft_transact(self._replica._handle(), d, len(d), cb, None, ctypes.byref(info))
        if failure:
            raise failure[0]
        _check(code)
        try:
            token = ctypes.string_at(info.version_token, info.version_token_len).decode()
            self.result = CommitInfo(bool(info.changed), (info.change.node, info.change.seq), token)
        finally:
            lib.weft_commit_info_release(ctypes.byref(info))
        return self.result

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            return False  # nothing was applied
        ops = self._ops
        self._ops = []

        def run(tp):
            for op in ops:
                op(tp)
        self._execute(run)
        return False


# -------------------------------------------------------------------------------------- feed

@dataclass
class Patch:
    type: str  # map_key, register, counter, set_add, set_remove, insert, delete
    object: Tuple[int, int]
    key: Optional[str] = None
    siblings: int = 0
    delta: int = 0
    element: Any = None
    index: int = 0
    length: int = 0
    text: Optional[str] = None


_PATCH_TYPES = {1: "map_key", 2: "register", 3: "counter", 4: "set_add", 5: "set_remove",
                6: "insert", 7: "delete"}


@dataclass
class ChangeEvent:
    doc: str
    local: bool
    change: Tuple[int, int]
    patches: List[Patch] = field(default_factory=list)


class Subscription:
    """A change-feed subscription; close() (or leaving the with block) ends it. Once close returns
    the callback is not running and will not run again."""

    def __init__(self, replica, ptr, cb):
        self._replica = replica
        self._ptr = ptr
        self._cb = cb  # keeps the ctypes trampoline alive

    def close(self):
        if self._ptr:
            lib.weft_unsubscribe(self._ptr)
            self._ptr = None
            self._replica._subs.discard(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _patch(p):
    typ = _PATCH_TYPES.get(p.type, str(p.type))
    return Patch(
        type=typ, object=(p.object.node, p.object.seq),
        key=ctypes.string_at(p.key, p.key_len).decode() if typ == "map_key" else None,
        siblings=p.siblings, delta=p.delta,
        element=_from_c(p.element) if typ in ("set_add", "set_remove") else None,
        index=p.index, length=p.length,
        text=ctypes.string_at(p.text, p.text_len).decode() if p.text_len else None)


@dataclass
class HistoryEntry:
    """One change of a document's history, and the version (causal token) it led to."""
    change: Tuple[int, int]  # (author, first seq)
    end_seq: int
    lamport: int
    time_ms: int
    ops: int
    token: str


def _event(ev):
    e = ev.contents
    patches = [_patch(e.patches[i]) for i in range(e.patch_count)]
    return ChangeEvent(ctypes.string_at(e.doc, e.doc_len).decode(), bool(e.local),
                       (e.change.node, e.change.seq), patches)


# ----------------------------------------------------------------------------------- replica

class Replica:
    """A Weft replica: one SQLite database file holding many documents."""

    def __init__(self, ptr, path):
        self._p = ptr
        self.path = path
        self._subs = set()
        self._syncs = set()
        self._resolvers = {}  # keeps the ctypes trampolines alive

    @classmethod
    def open(cls, path, *, durability="normal", create=True, snapshot_every=None,
             max_drift_ms=None, public_documents=False):
        """Opens (or creates) the replica at `path`. durability: "normal" (survives an app crash)
        or "full" (also power loss). Documents it creates are owned by its key, readable and
        writable only by the devices granted a role (grant), unless `public_documents`."""
        opts = lib.weft_options_create()
        if not opts:
            raise MemoryError()
        try:
            if durability not in ("normal", "full"):
                raise ValueError("durability is 'normal' or 'full'")
            _check(lib.weft_options_set_durability(opts, 1 if durability == "full" else 0))
            _check(lib.weft_options_set_create_if_missing(opts, 1 if create else 0))
            if snapshot_every is not None:
                _check(lib.weft_options_set_snapshot_every(opts, snapshot_every[0],
                                                           snapshot_every[1]))
            if max_drift_ms is not None:
                _check(lib.weft_options_set_drift_check(opts, 1, max_drift_ms))
            _check(lib.weft_options_set_public_documents(opts, 1 if public_documents else 0))
            p = _b(str(path))
            out = ctypes.c_void_p()
            _check(lib.weft_open(p, len(p), opts, ctypes.byref(out)))
            return cls(out, str(path))
        finally:
            lib.weft_options_free(opts)

    def _handle(self):
        if not self._p:
            raise WeftError(2, "the replica is closed")
        return self._p

    def close(self):
        """Closes the replica, first ending its subscriptions and sync clients."""
        if not self._p:
            return
        for s in list(self._syncs):
            s.close()
        for s in list(self._subs):
            s.close()
        _check(lib.weft_close(self._p))
        self._p = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    @property
    def node_id(self):
        """The replica's stable node ID: its identity in sync and presence."""
        n = ctypes.c_uint64()
        _check(lib.weft_replica_node_id(self._handle(), ctypes.byref(n)))
        return n.value

    @property
    def actor_id(self):
        """The author ID of the changes this open makes (the last open's after a clean close, a new
        one after a crash, a restore or a copy)."""
        n = ctypes.c_uint64()
        _check(lib.weft_replica_actor_id(self._handle(), ctypes.byref(n)))
        return n.value

    @property
    def public_key(self) -> str:
        """This device's identity: its Ed25519 public key, as 64 hex characters."""
        buf = ctypes.create_string_buffer(32)
        _check(lib.weft_replica_public_key(self._handle(), buf))
        return buf.raw.hex()

    # documents
    def create_document(self, doc):
        d = _b(doc)
        _check(lib.weft_doc_create(self._handle(), d, len(d)))

    def has_document(self, doc):
        d, out = _b(doc), ctypes.c_int()
        _check(lib.weft_doc_exists(self._handle(), d, len(d), ctypes.byref(out)))
        return bool(out.value)

    __contains__ = has_document

    def delete_document(self, doc):
        d = _b(doc)
        _check(lib.weft_doc_delete(self._handle(), d, len(d)))

    def documents(self):
        out = ctypes.c_void_p()
        _check(lib.weft_doc_list(self._handle(), ctypes.byref(out)))
        return _strings(out)

    def snapshot(self, doc):
        d = _b(doc)
        _check(lib.weft_doc_snapshot(self._handle(), d, len(d)))

    # transactions and reads
    def transaction(self, doc):
        """`with r.transaction(doc) as t:` records writes, applied atomically at the end."""
        self._handle()
        return Transaction(self, doc)

    def transact(self, doc, fn: Callable[[Transaction], Any]) -> CommitInfo:
        """Runs fn(t) inside one transaction on `doc` (created if new); t writes at once and
        t.view reads its own writes. An exception from fn aborts everything and propagates."""
        t = Transaction(self, doc)
        return t._execute(lambda tp: fn(t))

    @staticmethod
    def _with_view(call, fn: Callable[[View], Any]):
        """Runs call(view_callback) and returns what fn(view) returned inside it."""
        result, failure = [], []

        def body(vp, _user):
            try:
                result.append(fn(View(vp)))
            except BaseException as e:  # noqa: B036
                failure.append(e)

        _check(call(_capi.VIEW_FN(body)))
        if failure:
            raise failure[0]
        return result[0]

    def read(self, doc, fn: Callable[[View], Any]):
        """Calls fn(view) with a consistent read view of `doc`; returns what fn returns."""
        d = _b(doc)
        return self._with_view(lambda cb: lib.weft_read(self._handle(), d, len(d), cb, None), fn)

    def get(self, doc, *path):
        """The value at `path` in `doc` (the whole document as a dict when no path)."""
        return self.read(doc, lambda v: v.get(*path))

    # time travel
    def read_at(self, doc, token, fn: Callable[[View], Any]):
        """Calls fn(view) with a read-only view of `doc` as it was at `token` (a causal token of
        it; None or "": before its first change); returns what fn returns. Raises NotFound when
        this replica does not hold that version, InvalidArgument for a token that is not one of
        the document's versions, HistoryTruncated for one older than its base snapshot."""
        d, t = _b(doc), _b(token) if token else b""
        return self._with_view(
            lambda cb: lib.weft_read_at(self._handle(), d, len(d), t, len(t), cb, None), fn)

    def get_at(self, doc, token, *path):
        """The value at `path` in `doc` as it was at `token` (the whole document when no path)."""
        return self.read_at(doc, token, lambda v: v.get(*path))

    def diff(self, doc, from_token, to_token) -> List[Patch]:
        """The patches from version `from_token` of `doc` to the later `to_token`."""
        d = _b(doc)
        f = _b(from_token) if from_token else b""
        t = _b(to_token) if to_token else b""
        out = ctypes.c_void_p()
        _check(lib.weft_diff(self._handle(), d, len(d), f, len(f), t, len(t), ctypes.byref(out)))
        try:
            patches = []
            for i in range(lib.weft_patches_count(out)):
                p = _capi.Patch()
                _check(lib.weft_patches_get(out, i, ctypes.byref(p)))
                patches.append(_patch(p))
            return patches
        finally:
            lib.weft_patches_free(out)

    def history(self, doc) -> List[HistoryEntry]:
        """The changes of `doc` in log order (a causal order), each with the token it led to."""
        d = _b(doc)
        out = ctypes.c_void_p()
        _check(lib.weft_doc_history(self._handle(), d, len(d), ctypes.byref(out)))
        try:
            entries = []
            for i in range(lib.weft_history_count(out)):
                e = _capi.HistoryEntry()
                _check(lib.weft_history_get(out, i, ctypes.byref(e)))
                entries.append(HistoryEntry(
                    (e.change.node, e.change.seq), e.end_seq, e.lamport, e.time_ms, e.ops,
                    ctypes.string_at(e.token, e.token_len).decode()))
            return entries
        finally:
            lib.weft_history_free(out)

    def to_json(self, doc):
        return self.read(doc, lambda v: v.to_json())

    # change feed
    def subscribe(self, callback: Callable[[ChangeEvent], None], doc=None) -> Subscription:
        """Calls callback(ChangeEvent) after each commit of `doc` (None: every document), on the
        committing thread."""
        def trampoline(ev, _user):
            try:
                callback(_event(ev))
            except Exception:
                traceback.print_exc()

        cb = _capi.CHANGE_FN(trampoline)
        d = _b(doc) if doc else b""
        out = ctypes.c_void_p()
        _check(lib.weft_subscribe(self._handle(), d, len(d), cb, None, ctypes.byref(out)))
        sub = Subscription(self, out, cb)
        self._subs.add(sub)
        return sub

    # resolve on write
    def set_conflict_resolver(self, resolver, doc=None):
        """resolver(doc, key, siblings) is called when a remote change leaves a map key with
        siblings; returning a scalar writes it (replacing exactly those siblings), None leaves
        them. It runs on the thread that applied the change. resolver None removes it."""
        d = _b(doc) if doc else b""
        if resolver is None:
            _check(lib.weft_set_conflict_resolver(self._handle(), d, len(d),
                                                  _capi.RESOLVER_FN(), None))
            self._resolvers.pop(d, None)
            return
        pending = []

        def trampoline(conflict, chosen, _user):
            try:
                c = conflict.contents
                sibs = []
                for i in range(lib.weft_values_count(c.siblings)):
                    v = _capi.Value()
                    _check(lib.weft_values_get(c.siblings, i, ctypes.byref(v)))
                    sibs.append(_from_c(v) if v.type < MAP else (_KIND_NAMES[v.type],
                                                                   (v.object.node, v.object.seq)))
                value = resolver(ctypes.string_at(c.doc, c.doc_len).decode(),
                                 ctypes.string_at(c.key, c.key_len).decode(), sibs)
                if value is None:
                    return 0
                holder = _scalar(value)
                pending[:] = [holder]  # alive until C copies it, after this returns
                ctypes.memmove(chosen, ctypes.byref(holder[0]), ctypes.sizeof(_capi.Value))
                return 1
            except Exception:
                traceback.print_exc()
                return 0

        cb = _capi.RESOLVER_FN(trampoline)
        _check(lib.weft_set_conflict_resolver(self._handle(), d, len(d), cb, None))
        self._resolvers[d] = cb

    # causal tokens
    # access lists
    _ROLES = {"reader": 1, "writer": 2, "admin": 3}

    def grant(self, doc, key, role):
        """Gives the device with public key `key` (64 hex characters) `role` in `doc`: "reader",
        "writer" or "admin". A change, synced like any other."""
        if role not in self._ROLES:
            raise ValueError("role is 'reader', 'writer' or 'admin'")
        d, k = _b(doc), _key_bytes(key)
        _check(lib.weft_doc_grant(self._handle(), d, len(d), k, self._ROLES[role]))

    def revoke(self, doc, key):
        """Takes that device's role away (its later changes are refused everywhere)."""
        d, k = _b(doc), _key_bytes(key)
        _check(lib.weft_doc_revoke(self._handle(), d, len(d), k))

    def members(self, doc):
        """The access list: {key hex: "owner" | "admin" | "writer" | "reader"} ({} when public)."""
        d, s, n = _b(doc), ctypes.c_void_p(), ctypes.c_size_t()
        _check(lib.weft_doc_members(self._handle(), d, len(d), ctypes.byref(s), ctypes.byref(n)))
        return json.loads(_take_string(s.value, n.value))

    def create_encrypted_document(self, doc):
        """Creates `doc` end-to-end encrypted and owned by this device: relays store and forward
        only ciphertext; grant and revoke rotate its key. Raises when it exists already."""
        d = _b(doc)
        _check(lib.weft_doc_create_encrypted(self._handle(), d, len(d)))

    def encryption(self, doc):
        """{"encrypted": bool, "epoch": int, "has_key": bool, "missing_epochs": [int]}: while
        any epoch is missing, reads of `doc` raise (permission denied)."""
        d, s, n = _b(doc), ctypes.c_void_p(), ctypes.c_size_t()
        _check(lib.weft_doc_encryption(self._handle(), d, len(d), ctypes.byref(s),
                                       ctypes.byref(n)))
        return json.loads(_take_string(s.value, n.value))

    def issue_token(self, device_key, ttl=86400):
        """An admission token (hex) for that device, valid `ttl` seconds, signed by this replica's
        key: for relays started with --admission-key set to this replica's public_key."""
        s, n = ctypes.c_void_p(), ctypes.c_size_t()
        _check(lib.weft_issue_token(self._handle(), _key_bytes(device_key), int(ttl),
                                    ctypes.byref(s), ctypes.byref(n)))
        return _take_string(s.value, n.value)

    def causal_token(self, doc):
        d, s, n = _b(doc), ctypes.c_void_p(), ctypes.c_size_t()
        _check(lib.weft_causal_token(self._handle(), d, len(d), ctypes.byref(s), ctypes.byref(n)))
        return _take_string(s.value, n.value)

    def satisfies(self, token):
        t, out = _b(token), ctypes.c_int()
        _check(lib.weft_token_satisfied(self._handle(), t, len(t), ctypes.byref(out)))
        return bool(out.value)

    def wait_for(self, token, timeout=10.0):
        """Blocks until this replica holds everything `token` names (raises Timeout)."""
        t = _b(token)
        _check(lib.weft_wait_for_token(self._handle(), t, len(t), int(timeout * 1000)))

    # raw changes
    def changes_since(self, doc, token=None):
        """Encoded changes of `doc` that a replica at `token` lacks (list of bytes)."""
        d = _b(doc)
        t = _b(token) if token else b""
        out = ctypes.c_void_p()
        _check(lib.weft_changes_since(self._handle(), d, len(d), t, len(t), ctypes.byref(out)))
        try:
            blobs = []
            for i in range(lib.weft_blobs_count(out)):
                n = ctypes.c_size_t()
                p = lib.weft_blobs_get(out, i, ctypes.byref(n))
                blobs.append(ctypes.string_at(p, n.value))
            return blobs
        finally:
            lib.weft_blobs_free(out)

    def apply_changes(self, doc, blobs):
        """Applies encoded changes all-or-nothing; returns how many were new."""
        d = _b(doc)
        bufs = [ctypes.create_string_buffer(b, len(b)) for b in blobs]
        ptrs = (ctypes.c_void_p * max(1, len(bufs)))(*[ctypes.cast(b, ctypes.c_void_p)
                                                        for b in bufs])
        lens = (ctypes.c_size_t * max(1, len(bufs)))(*[len(b) for b in blobs])
        applied = ctypes.c_size_t()
        _check(lib.weft_apply_changes(self._handle(), d, len(d), ptrs, lens, len(bufs),
                                      ctypes.byref(applied)))
        return applied.value

    # sync
    def sync(self, documents=None, *, backoff_ms=None, seed=None, ca=None, token=None,
             relay_key=None) -> "Sync":
        """A sync client for this replica (its own network thread).

        `ca`: for wss:// peers, a PEM file of the certificates a server must chain to (a private
        CA or a self-signed server certificate); None trusts the system's CAs. `token`: an
        admission token (issue_token) for relays that ask for one. `relay_key`: refuse a relay
        that does not prove this public key."""
        return Sync(self, documents, backoff_ms, seed, ca, token, relay_key)


# -------------------------------------------------------------------------------------- sync

@dataclass
class DocumentSyncStatus:
    doc: str
    live: bool
    acknowledged_operations: int
    unacknowledged_changes: int
    oldest_unacknowledged_age_ms: Optional[int]
    behind_operations: int
    incoming_remaining: int
    changes_sent: int
    changes_received: int


@dataclass
class PeerStatus:
    url: str
    state: str  # connecting, connected, backoff, stopped
    peer_node: Optional[int]
    peer_is_relay: bool
    last_error: str
    failed_attempts: int
    changes_sent: int
    changes_received: int
    duplicates_received: int
    documents: List[DocumentSyncStatus]


_STATES = {0: "connecting", 1: "connected", 2: "backoff", 3: "stopped"}


def _summary(s):
    return {"changes_sent": s.changes_sent, "changes_received": s.changes_received,
            "documents": s.documents}


class Sync:
    """Syncs a replica with peers (relays) over WebSockets, in the background."""

    def __init__(self, replica, documents, backoff_ms, seed, ca=None, token=None, relay_key=None):
        self._replica = replica
        self._presence_cb = None
        opts = lib.weft_sync_options_create()
        if not opts:
            raise MemoryError()
        try:
            for d in documents or []:
                b = _b(d)
                _check(lib.weft_sync_options_add_document(opts, b, len(b)))
            if backoff_ms:
                _check(lib.weft_sync_options_set_backoff(opts, backoff_ms[0], backoff_ms[1]))
            if seed is not None:
                _check(lib.weft_sync_options_set_seed(opts, seed))
            if ca is not None:
                p = os.fsencode(ca)
                _check(lib.weft_sync_options_set_ca_file(opts, p, len(p)))
            if token is not None:
                t = _b(token)
                _check(lib.weft_sync_options_set_token(opts, t, len(t)))
            if relay_key is not None:
                _check(lib.weft_sync_options_set_relay_key(opts, _key_bytes(relay_key)))
            out = ctypes.c_void_p()
            _check(lib.weft_sync_create(replica._handle(), opts, ctypes.byref(out)))
            self._p = out
        finally:
            lib.weft_sync_options_free(opts)
        replica._syncs.add(self)

    def _handle(self):
        if not self._p:
            raise WeftError(2, "the sync client is closed")
        return self._p

    def close(self):
        if self._p:
            lib.weft_sync_free(self._p)
            self._p = None
            self._replica._syncs.discard(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def add_peer(self, url):
        u = _b(url)
        _check(lib.weft_sync_add_peer(self._handle(), u, len(u)))

    def remove_peer(self, url):
        u = _b(url)
        _check(lib.weft_sync_remove_peer(self._handle(), u, len(u)))

    def wait_until_synced(self, url, timeout=10.0):
        u, s = _b(url), _capi.SyncSummary()
        _check(lib.weft_sync_wait_until_synced(self._handle(), u, len(u), int(timeout * 1000),
                                               ctypes.byref(s)))
        return _summary(s)

    def wait_for_ack(self, doc, token, timeout=10.0, url=None, quorum=None):
        """Waits until a peer (`url`, or any) stored every change `token` names; with `quorum`,
        until that many of the peers each did."""
        d, t, u = _b(doc), _b(token), _b(url) if url else b""
        if quorum is not None:
            if url:
                raise ValueError("give either url or quorum")
            _check(lib.weft_sync_wait_for_acks(self._handle(), d, len(d), t, len(t), quorum,
                                               int(timeout * 1000)))
            return
        _check(lib.weft_sync_wait_for_ack(self._handle(), d, len(d), t, len(t),
                                          int(timeout * 1000), u, len(u)))

    def peers(self) -> List[PeerStatus]:
        out = ctypes.c_void_p()
        _check(lib.weft_sync_peers(self._handle(), ctypes.byref(out)))
        try:
            result = []
            for i in range(lib.weft_peers_count(out)):
                p = _capi.PeerInfo()
                _check(lib.weft_peers_get(out, i, ctypes.byref(p)))
                docs = []
                for j in range(p.document_count):
                    d = _capi.DocSyncInfo()
                    _check(lib.weft_peers_document(out, i, j, ctypes.byref(d)))
                    docs.append(DocumentSyncStatus(
                        ctypes.string_at(d.doc, d.doc_len).decode(), bool(d.live),
                        d.acknowledged_operations, d.unacknowledged_changes,
                        None if d.oldest_unacknowledged_age_ms < 0
                        else d.oldest_unacknowledged_age_ms,
                        d.behind_operations, d.incoming_remaining, d.changes_sent,
                        d.changes_received))
                result.append(PeerStatus(
                    ctypes.string_at(p.url, p.url_len).decode(), _STATES.get(p.state, "?"),
                    p.peer_node if p.has_peer_node else None, bool(p.peer_is_relay),
                    ctypes.string_at(p.last_error, p.last_error_len).decode(),
                    p.failed_attempts, p.changes_sent, p.changes_received,
                    p.duplicates_received, docs))
            return result
        finally:
            lib.weft_peers_free(out)

    def publish_presence(self, doc, payload: bytes):
        d = _b(doc)
        data = bytes(payload)
        _check(lib.weft_sync_publish_presence(self._handle(), d, len(d), data, len(data)))

    def on_presence(self, callback: Optional[Callable[[str, int, bytes], None]]):
        """Sets callback(doc, node, payload) for remote presence (None: clears). It runs on the
        client's network thread."""
        if callback is None:
            _check(lib.weft_sync_set_presence_callback(self._handle(), _capi.PRESENCE_FN(), None))
            self._presence_cb = None
            return

        def trampoline(doc, doc_len, node, payload, payload_len, _user):
            try:
                callback(ctypes.string_at(doc, doc_len).decode(), node,
                         ctypes.string_at(payload, payload_len) if payload_len else b"")
            except Exception:
                traceback.print_exc()

        cb = _capi.PRESENCE_FN(trampoline)
        _check(lib.weft_sync_set_presence_callback(self._handle(), cb, None))
        self._presence_cb = cb


def sync_once(replica, url, doc=None, timeout=10.0):
    """Connects to `url`, syncs `doc` (None: every document) both ways, disconnects."""
    u, d, s = _b(url), _b(doc) if doc else b"", _capi.SyncSummary()
    _check(lib.weft_sync_once(replica._handle(), u, len(u), d, len(d), int(timeout * 1000),
                              ctypes.byref(s)))
    return _summary(s)
