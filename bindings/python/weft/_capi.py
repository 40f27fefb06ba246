"""ctypes declarations of the C API (bindings/c/include/weft.h). Internal to the package."""

import ctypes
import ctypes.util
import os

c_size_p = ctypes.POINTER(ctypes.c_size_t)


class Obj(ctypes.Structure):
    _fields_ = [("node", ctypes.c_uint64), ("seq", ctypes.c_uint64)]


ROOT = Obj(0, 0)


class Value(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int32),
        ("boolean", ctypes.c_int32),
        ("integer", ctypes.c_int64),
        ("real", ctypes.c_double),
        ("data", ctypes.c_void_p),
        ("len", ctypes.c_size_t),
        ("object", Obj),
        ("time_ms", ctypes.c_uint64),
        ("time_logical", ctypes.c_uint32),
    ]


class CommitInfo(ctypes.Structure):
    _fields_ = [
        ("changed", ctypes.c_int),
        ("change", Obj),
        ("version_token", ctypes.c_void_p),
        ("version_token_len", ctypes.c_size_t),
    ]


class Anchor(ctypes.Structure):
    _fields_ = [("item", Obj), ("bias", ctypes.c_int32)]


class Patch(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int32),
        ("object", Obj),
        ("key", ctypes.c_void_p),
        ("key_len", ctypes.c_size_t),
        ("siblings", ctypes.c_size_t),
        ("delta", ctypes.c_int64),
        ("element", Value),
        ("index", ctypes.c_size_t),
        ("length", ctypes.c_size_t),
        ("text", ctypes.c_void_p),
        ("text_len", ctypes.c_size_t),
    ]


class ChangeEvent(ctypes.Structure):
    _fields_ = [
        ("doc", ctypes.c_void_p),
        ("doc_len", ctypes.c_size_t),
        ("local", ctypes.c_int),
        ("change", Obj),
        ("patches", ctypes.POINTER(Patch)),
        ("patch_count", ctypes.c_size_t),
    ]


class HistoryEntry(ctypes.Structure):
    _fields_ = [
        ("change", Obj),
        ("end_seq", ctypes.c_uint64),
        ("lamport", ctypes.c_uint64),
        ("time_ms", ctypes.c_uint64),
        ("ops", ctypes.c_size_t),
        ("token", ctypes.c_void_p),
        ("token_len", ctypes.c_size_t),
    ]


class SyncSummary(ctypes.Structure):
    _fields_ = [
        ("changes_sent", ctypes.c_uint64),
        ("changes_received", ctypes.c_uint64),
        ("documents", ctypes.c_uint64),
    ]


class PeerInfo(ctypes.Structure):
    _fields_ = [
        ("url", ctypes.c_void_p),
        ("url_len", ctypes.c_size_t),
        ("state", ctypes.c_int32),
        ("has_peer_node", ctypes.c_int),
        ("peer_node", ctypes.c_uint64),
        ("peer_is_relay", ctypes.c_int),
        ("last_error", ctypes.c_void_p),
        ("last_error_len", ctypes.c_size_t),
        ("failed_attempts", ctypes.c_uint32),
        ("changes_sent", ctypes.c_uint64),
        ("changes_received", ctypes.c_uint64),
        ("duplicates_received", ctypes.c_uint64),
        ("document_count", ctypes.c_size_t),
    ]


class DocSyncInfo(ctypes.Structure):
    _fields_ = [
        ("doc", ctypes.c_void_p),
        ("doc_len", ctypes.c_size_t),
        ("live", ctypes.c_int),
        ("acknowledged_operations", ctypes.c_uint64),
        ("unacknowledged_changes", ctypes.c_uint64),
        ("oldest_unacknowledged_age_ms", ctypes.c_int64),
        ("behind_operations", ctypes.c_uint64),
        ("incoming_remaining", ctypes.c_uint64),
        ("changes_sent", ctypes.c_uint64),
        ("changes_received", ctypes.c_uint64),
    ]


class Conflict(ctypes.Structure):
    _fields_ = [
        ("doc", ctypes.c_void_p),
        ("doc_len", ctypes.c_size_t),
        ("map", Obj),
        ("key", ctypes.c_void_p),
        ("key_len", ctypes.c_size_t),
        ("siblings", ctypes.c_void_p),
    ]


RESOLVER_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(Conflict), ctypes.POINTER(Value),
                               ctypes.c_void_p)
TXN_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)
VIEW_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)
CHANGE_FN = ctypes.CFUNCTYPE(None, ctypes.POINTER(ChangeEvent), ctypes.c_void_p)
PRESENCE_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint64,
                               ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p)

_P = ctypes.c_void_p
_S = ctypes.c_char_p  # borrowed input bytes (with an explicit length beside it)
_Z = ctypes.c_size_t
_I = ctypes.c_int
_I32 = ctypes.c_int32
_U64 = ctypes.c_uint64
_I64 = ctypes.c_int64
_ST = ctypes.c_int  # weft_status

# name: (restype, argtypes)
_SIGNATURES = {
    "weft_version": (ctypes.c_char_p, []),
    "weft_status_name": (ctypes.c_char_p, [_I]),
    "weft_thread_errmsg": (_P, [c_size_p]),
    "weft_string_free": (None, [_P]),
    "weft_strings_count": (_Z, [_P]),
    "weft_strings_get": (_P, [_P, _Z, c_size_p]),
    "weft_strings_free": (None, [_P]),
    "weft_values_count": (_Z, [_P]),
    "weft_values_get": (_ST, [_P, _Z, ctypes.POINTER(Value)]),
    "weft_values_free": (None, [_P]),
    "weft_options_create": (_P, []),
    "weft_options_free": (None, [_P]),
    "weft_options_set_durability": (_ST, [_P, _I]),
    "weft_options_set_snapshot_every": (_ST, [_P, ctypes.c_uint32, ctypes.c_uint32]),
    "weft_options_set_create_if_missing": (_ST, [_P, _I]),
    "weft_options_set_drift_check": (_ST, [_P, _I, _U64]),
    "weft_options_set_public_documents": (_ST, [_P, _I]),
    "weft_doc_grant": (_ST, [_P, _S, _Z, ctypes.c_char_p, _I]),
    "weft_doc_revoke": (_ST, [_P, _S, _Z, ctypes.c_char_p]),
    "weft_doc_members": (_ST, [_P, _S, _Z, ctypes.POINTER(_P), c_size_p]),
    "weft_doc_create_encrypted": (_ST, [_P, _S, _Z]),
    "weft_doc_encryption": (_ST, [_P, _S, _Z, ctypes.POINTER(_P), c_size_p]),
    "weft_issue_token": (_ST, [_P, ctypes.c_char_p, _U64, ctypes.POINTER(_P), c_size_p]),
    "weft_open": (_ST, [_S, _Z, _P, ctypes.POINTER(_P)]),
    "weft_close": (_ST, [_P]),
    "weft_replica_node_id": (_ST, [_P, ctypes.POINTER(_U64)]),
    "weft_replica_actor_id": (_ST, [_P, ctypes.POINTER(_U64)]),
    "weft_replica_public_key": (_ST, [_P, ctypes.c_char_p]),
    "weft_doc_create": (_ST, [_P, _S, _Z]),
    "weft_doc_exists": (_ST, [_P, _S, _Z, ctypes.POINTER(_I)]),
    "weft_doc_delete": (_ST, [_P, _S, _Z]),
    "weft_doc_list": (_ST, [_P, ctypes.POINTER(_P)]),
    "weft_doc_snapshot": (_ST, [_P, _S, _Z]),
    "weft_commit_info_release": (None, [ctypes.POINTER(CommitInfo)]),
    "weft_transact": (_ST, [_P, _S, _Z, TXN_FN, _P, ctypes.POINTER(CommitInfo)]),
    "weft_read": (_ST, [_P, _S, _Z, VIEW_FN, _P]),
    "weft_txn_view": (_P, [_P]),
    "weft_view_to_json": (_ST, [_P, ctypes.POINTER(_P), c_size_p]),
    "weft_view_kind": (_ST, [_P, Obj, ctypes.POINTER(_I32)]),
    "weft_view_map_keys": (_ST, [_P, Obj, ctypes.POINTER(_P)]),
    "weft_view_map_get": (_ST, [_P, Obj, _S, _Z, ctypes.POINTER(_P)]),
    "weft_view_map_lookup": (_ST, [_P, Obj, _S, _Z, _I32, ctypes.POINTER(Obj)]),
    "weft_view_register_get": (_ST, [_P, Obj, ctypes.POINTER(_P)]),
    "weft_view_lww_get": (_ST, [_P, Obj, ctypes.POINTER(_P)]),
    "weft_view_counter_get": (_ST, [_P, Obj, ctypes.POINTER(_I64)]),
    "weft_view_set_elements": (_ST, [_P, Obj, ctypes.POINTER(_P)]),
    "weft_view_set_contains": (_ST, [_P, Obj, ctypes.POINTER(Value), ctypes.POINTER(_I)]),
    "weft_view_text_read": (_ST, [_P, Obj, ctypes.POINTER(_P), c_size_p]),
    "weft_view_seq_size": (_ST, [_P, Obj, c_size_p]),
    "weft_view_list_values": (_ST, [_P, Obj, ctypes.POINTER(_P)]),
    "weft_view_anchor_at": (_ST, [_P, Obj, _Z, _I32, ctypes.POINTER(Anchor)]),
    "weft_view_anchor_index": (_ST, [_P, Obj, ctypes.POINTER(Anchor), c_size_p]),
    "weft_txn_map_put": (_ST, [_P, Obj, _S, _Z, ctypes.POINTER(Value)]),
    "weft_txn_map_put_after_read": (_ST, [_P, Obj, _S, _Z, ctypes.POINTER(Value), _P]),
    "weft_txn_map_delete": (_ST, [_P, Obj, _S, _Z]),
    "weft_txn_map_object": (_ST, [_P, Obj, _S, _Z, _I32, ctypes.POINTER(Obj)]),
    "weft_txn_register_set": (_ST, [_P, Obj, ctypes.POINTER(Value)]),
    "weft_txn_register_set_after_read": (_ST, [_P, Obj, ctypes.POINTER(Value), _P]),
    "weft_txn_counter_add": (_ST, [_P, Obj, _I64]),
    "weft_txn_set_add": (_ST, [_P, Obj, ctypes.POINTER(Value)]),
    "weft_txn_set_remove": (_ST, [_P, Obj, ctypes.POINTER(Value)]),
    "weft_txn_text_insert": (_ST, [_P, Obj, _Z, _S, _Z]),
    "weft_txn_seq_delete": (_ST, [_P, Obj, _Z, _Z]),
    "weft_txn_list_insert": (_ST, [_P, Obj, _Z, ctypes.POINTER(Value), _Z]),
    "weft_txn_list_insert_object": (_ST, [_P, Obj, _Z, _I32, ctypes.POINTER(Obj)]),
    "weft_subscribe": (_ST, [_P, _S, _Z, CHANGE_FN, _P, ctypes.POINTER(_P)]),
    "weft_unsubscribe": (None, [_P]),
    "weft_set_conflict_resolver": (_ST, [_P, _S, _Z, RESOLVER_FN, _P]),
    "weft_causal_token": (_ST, [_P, _S, _Z, ctypes.POINTER(_P), c_size_p]),
    "weft_token_satisfied": (_ST, [_P, _S, _Z, ctypes.POINTER(_I)]),
    "weft_wait_for_token": (_ST, [_P, _S, _Z, _U64]),
    "weft_read_at": (_ST, [_P, _S, _Z, _S, _Z, VIEW_FN, _P]),
    "weft_patches_count": (_Z, [_P]),
    "weft_patches_get": (_ST, [_P, _Z, ctypes.POINTER(Patch)]),
    "weft_patches_free": (None, [_P]),
    "weft_diff": (_ST, [_P, _S, _Z, _S, _Z, _S, _Z, ctypes.POINTER(_P)]),
    "weft_doc_history": (_ST, [_P, _S, _Z, ctypes.POINTER(_P)]),
    "weft_history_count": (_Z, [_P]),
    "weft_history_get": (_ST, [_P, _Z, ctypes.POINTER(HistoryEntry)]),
    "weft_history_free": (None, [_P]),
    "weft_blobs_count": (_Z, [_P]),
    "weft_blobs_get": (_P, [_P, _Z, c_size_p]),
    "weft_blobs_free": (None, [_P]),
    "weft_changes_since": (_ST, [_P, _S, _Z, _S, _Z, ctypes.POINTER(_P)]),
    "weft_apply_changes": (_ST, [_P, _S, _Z, ctypes.POINTER(ctypes.c_void_p), c_size_p, _Z,
                                 c_size_p]),
    "weft_sync_options_create": (_P, []),
    "weft_sync_options_free": (None, [_P]),
    "weft_sync_options_add_document": (_ST, [_P, _S, _Z]),
    "weft_sync_options_set_backoff": (_ST, [_P, _U64, _U64]),
    "weft_sync_options_set_seed": (_ST, [_P, _U64]),
    "weft_sync_options_set_ca_file": (_ST, [_P, _S, _Z]),
    "weft_sync_options_set_token": (_ST, [_P, _S, _Z]),
    "weft_sync_options_set_relay_key": (_ST, [_P, ctypes.c_char_p]),
    "weft_sync_create": (_ST, [_P, _P, ctypes.POINTER(_P)]),
    "weft_sync_free": (None, [_P]),
    "weft_sync_add_peer": (_ST, [_P, _S, _Z]),
    "weft_sync_remove_peer": (_ST, [_P, _S, _Z]),
    "weft_sync_wait_until_synced": (_ST, [_P, _S, _Z, _U64, ctypes.POINTER(SyncSummary)]),
    "weft_sync_wait_for_ack": (_ST, [_P, _S, _Z, _S, _Z, _U64, _S, _Z]),
    "weft_sync_wait_for_acks": (_ST, [_P, _S, _Z, _S, _Z, _Z, _U64]),
    "weft_sync_peers": (_ST, [_P, ctypes.POINTER(_P)]),
    "weft_peers_count": (_Z, [_P]),
    "weft_peers_get": (_ST, [_P, _Z, ctypes.POINTER(PeerInfo)]),
    "weft_peers_document": (_ST, [_P, _Z, _Z, ctypes.POINTER(DocSyncInfo)]),
    "weft_peers_free": (None, [_P]),
    "weft_sync_publish_presence": (_ST, [_P, _S, _Z, _S, _Z]),
    "weft_sync_set_presence_callback": (_ST, [_P, PRESENCE_FN, _P]),
    "weft_sync_once": (_ST, [_P, _S, _Z, _S, _Z, _U64, ctypes.POINTER(SyncSummary)]),
}


def installed_path(name):
    """The path of `name` ("library" or "relay") that `cmake --install` recorded in the copy of
    this package it installed (weft/_install.py), if that file exists there; else None."""
    try:
        from . import _install
    except ImportError:  # a package from the source tree: nothing recorded
        return None
    path = {"library": _install.LIBRARY, "relay": _install.RELAY}[name]
    return path if os.path.exists(path) else None


def _find_library():
    """Where libweft is: $WEFT_LIBRARY, else the path recorded at install time, else the system's
    library path (ldconfig's cache, then the dynamic loader's own search)."""
    path = os.environ.get("WEFT_LIBRARY")
    if path:
        return path, "WEFT_LIBRARY"
    path = installed_path("library")
    if path:
        return path, "the path recorded by cmake --install"
    return ctypes.util.find_library("weft") or "libweft.so.0", "the system's library path"


def _load():
    global LIBRARY_PATH
    path, source = _find_library()
    try:
        lib = ctypes.CDLL(path)
    except OSError as e:
        raise ImportError(
            f"weft: cannot load libweft ({path}, from {source}): {e}. Install Weft "
            "(cmake --install, then pip install PREFIX/share/weft/python), or set WEFT_LIBRARY "
            "to the path of libweft.so.0") from None
    LIBRARY_PATH = path
    for name, (res, args) in _SIGNATURES.items():
        fn = getattr(lib, name)
        fn.restype = res
        fn.argtypes = args
    return lib


# The libweft that was loaded: a path, or a name the dynamic loader resolved.
LIBRARY_PATH = None
lib = _load()
