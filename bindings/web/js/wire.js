// The sync protocol's messages (docs/protocol.md) in JavaScript: one Cap'n Proto `Message` of
// sdk/proto/weft.capnp per WebSocket binary frame, unpacked, in the standard segment-table framing.
// The Cap'n Proto code is generated from the schema at build time (capnp-es, proto/weft.js);
// this module turns plain objects into frames and frames into plain objects, checking every limit
// the native peer checks (sdk/src/sync/wire.cpp) before a caller sees anything.
//
// Plain objects: node IDs are 16-digit hex strings (as weft.js's nodeId), version vectors objects
// of node ID to seq (Numbers, as Document.version), bytes Uint8Arrays.
// Thread safety: pure functions; nothing is shared.

import * as capnp from 'capnp-es';
import * as proto from './proto/weft.js';

/** The protocol version this client speaks (the schema's constant). */
export const PROTOCOL_VERSION = 4;

/** The limits of docs/protocol.md ("Transport"), as the native peer has them by default. */
export const LIMITS = Object.freeze({
  maxFrameBytes: 16 << 20,
  maxBatchChanges: 4096,
  maxPathNodes: 64,
  maxVersionEntries: 100000,
  maxDocIdBytes: 1024,
  maxPresenceBytes: 64 << 10,
  maxNesting: 16,
});

/** Error codes of the schema's Error.Code, by name. */
export const ErrorCode = Object.freeze({
  internal: 0, malformed: 1, unsupportedVersion: 2, unexpected: 3, tooLarge: 4,
  missingDependency: 5, invalidChange: 6, permissionDenied: 7, slowConsumer: 8, timeout: 9,
  storage: 10, diverged: 11, corruption: 12, unauthenticated: 13,
});
const errorCodeNames = Object.fromEntries(Object.entries(ErrorCode).map(([k, v]) => [v, k]));

/** A frame that is not a valid message (or breaks a limit); `code` is an ErrorCode name. */
export class WireError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'WireError';
    this.code = code;
  }
}

const utf8 = new TextEncoder();

export const nodeHex = (n) => BigInt.asUintN(64, BigInt(n)).toString(16).padStart(16, '0');
export const nodeBig = (hex) => {
  if (typeof hex !== 'string' || !/^[0-9a-f]{1,16}$/i.test(hex)) {
    throw new TypeError(`a node ID is 16 hex digits, not ${String(hex)}`);
  }
  return BigInt('0x' + hex);
};

// --- Encoding -------------------------------------------------------------------------------

function setData(list, i, bytes) {
  // capnp-es initializes Data fields of structs, not elements of List(Data): this is its
  // initList for one byte list, at the element's pointer.
  const el = list.get(i);
  const c = el.segment.allocate(bytes.length);
  const res = capnp.utils.initPointer(c.segment, c.byteOffset, el);
  capnp.utils.setListPointer(res.offsetWords, capnp.ListElementSize.BYTE, bytes.length, res.pointer);
  if (bytes.length) list.get(i).copyBuffer(bytes);
}

function setBytes(struct, field, bytes) {
  if (!bytes || bytes.length === 0) return;
  const init = '_init' + field[0].toUpperCase() + field.slice(1);
  struct[init](bytes.length).copyBuffer(bytes);
}

function setVersion(struct, version) {
  const entries = Object.entries(version ?? {});
  const list = struct._initVersion(entries.length);
  entries.forEach(([node, seq], i) => {
    const e = list.get(i);
    e.node = nodeBig(node);
    e.seq = BigInt(seq);
  });
}

function setPath(struct, path, init = '_initPath') {
  const list = struct[init](path.length);
  path.forEach((n, i) => list.set(i, nodeBig(n)));
}

/**
 * Encodes one message: an object with exactly one of hello, have, changes, ack, presence, error,
 * auth (fields as in the schema, in camelCase). Returns the frame's bytes.
 * @param {object} m
 * @returns {Uint8Array}
 */
export function encode(m) {
  const msg = new capnp.Message();
  const root = msg.initRoot(proto.Message);
  if (m.hello) {
    const h = root._initHello();
    const x = m.hello;
    h.protocolVersion = x.protocolVersion ?? PROTOCOL_VERSION;
    h.nodeId = nodeBig(x.nodeId);
    setBytes(h, 'credentials', x.credentials);
    h.allDocuments = !!x.allDocuments;
    h.agent = x.agent ?? '';
    h.role = x.role === 'relay' ? proto.Hello_Role.RELAY : proto.Hello_Role.DEVICE;
    h.announces = x.announces ?? 0;
    setBytes(h, 'publicKey', x.publicKey);
    setBytes(h, 'nonce', x.nonce);
    h.audience = x.audience ?? '';
    setBytes(h, 'proof', x.proof);
    h.expires = BigInt(x.expires ?? 0);
  } else if (m.auth) {
    const a = root._initAuth();
    setBytes(a, 'proof', m.auth.proof);
    a.expires = BigInt(m.auth.expires);
  } else if (m.have) {
    const h = root._initHave();
    h.doc = m.have.doc;
    setVersion(h, m.have.version);
    h.stateDigest = BigInt(m.have.stateDigest ?? 0);
  } else if (m.changes) {
    const c = root._initChanges();
    const x = m.changes;
    c.doc = x.doc;
    const list = c._initChanges(x.changes.length);
    x.changes.forEach((bytes, i) => setData(list, i, bytes));
    setPath(c, x.path ?? []);
    c.remaining = BigInt(x.remaining ?? 0);
  } else if (m.ack) {
    const a = root._initAck();
    a.doc = m.ack.doc;
    setVersion(a, m.ack.version);
  } else if (m.presence) {
    const p = root._initPresence();
    p.doc = m.presence.doc;
    p.node = nodeBig(m.presence.node);
    setBytes(p, 'payload', m.presence.payload);
    setPath(p, m.presence.path ?? []);
  } else if (m.error) {
    const e = root._initError();
    e.code = ErrorCode[m.error.code] ?? ErrorCode.internal;
    e.message = m.error.message ?? '';
    e.doc = m.error.doc ?? '';
    e.fatal = !!m.error.fatal;
  } else {
    throw new TypeError('encode: no message kind given');
  }
  return new Uint8Array(msg.toArrayBuffer());
}

// --- Decoding -------------------------------------------------------------------------------

const bytesOf = (data) => new Uint8Array(data.toUint8Array()); // a copy: frames are reused

function docOf(s) {
  const doc = s.doc;
  const n = utf8.encode(doc).length;
  if (n < 1 || n > LIMITS.maxDocIdBytes) {
    throw new WireError('malformed', `a document ID of ${n} bytes (1 to ${LIMITS.maxDocIdBytes})`);
  }
  return doc;
}

function versionOf(s) {
  const list = s.version;
  if (list.length > LIMITS.maxVersionEntries) {
    throw new WireError('tooLarge', `a version vector of ${list.length} entries`);
  }
  const v = {};
  for (let i = 0; i < list.length; ++i) {
    const e = list.get(i);
    if (e.node === 0n) throw new WireError('malformed', 'a version vector entry for node 0');
    if (e.seq > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new WireError('malformed', 'a version vector seq beyond 2^53');
    }
    v[nodeHex(e.node)] = Number(e.seq);
  }
  return v;
}

function pathOf(list) {
  if (list.length > LIMITS.maxPathNodes) {
    throw new WireError('tooLarge', `a path of ${list.length} nodes (at most ${LIMITS.maxPathNodes})`);
  }
  const out = [];
  for (let i = 0; i < list.length; ++i) out.push(nodeHex(list.get(i)));
  return out;
}

function decodeUnchecked(bytes) {
  const msg = new capnp.Message(bytes, false);
  // The native peer's traversal limit: twice the frame's size in words, at least 1024 words.
  msg._capnp.traversalLimit = Math.max(1024, 2 * Math.ceil(bytes.length / 8)) * 8;
  const root = msg.getRoot(proto.Message);
  const M = proto.Message;
  switch (root.which()) {
    case M.HELLO: {
      const h = root.hello;
      return {
        kind: 'hello',
        protocolVersion: h.protocolVersion,
        nodeId: nodeHex(h.nodeId),
        credentials: bytesOf(h.credentials),
        allDocuments: h.allDocuments,
        agent: h.agent,
        role: h.role === proto.Hello_Role.RELAY ? 'relay' : 'device',
        announces: h.announces,
        publicKey: bytesOf(h.publicKey),
        nonce: bytesOf(h.nonce),
        audience: h.audience,
        proof: bytesOf(h.proof),
        expires: h.expires,
      };
    }
    case M.AUTH: {
      const a = root.auth;
      return { kind: 'auth', proof: bytesOf(a.proof), expires: a.expires };
    }
    case M.HAVE: {
      const h = root.have;
      return { kind: 'have', doc: docOf(h), version: versionOf(h), stateDigest: h.stateDigest };
    }
    case M.CHANGES: {
      const c = root.changes;
      const list = c.changes;
      if (list.length > LIMITS.maxBatchChanges) {
        throw new WireError('tooLarge', `a batch of ${list.length} changes`);
      }
      if (c.encrypted) throw new WireError('malformed', 'an encrypted batch (not supported)');
      const changes = [];
      for (let i = 0; i < list.length; ++i) changes.push(bytesOf(list.get(i)));
      const routes = c.routes;
      if (routes.length !== 0 && routes.length !== changes.length) {
        throw new WireError('malformed', 'a batch whose routes do not match its changes');
      }
      return {
        kind: 'changes', doc: docOf(c), changes, path: pathOf(c.path),
        remaining: Number(c.remaining),
      };
    }
    case M.ACK: {
      const a = root.ack;
      return { kind: 'ack', doc: docOf(a), version: versionOf(a) };
    }
    case M.PRESENCE: {
      const p = root.presence;
      const payload = bytesOf(p.payload);
      if (payload.length > LIMITS.maxPresenceBytes) {
        throw new WireError('tooLarge', `presence of ${payload.length} bytes`);
      }
      return { kind: 'presence', doc: docOf(p), node: nodeHex(p.node), payload, path: pathOf(p.path) };
    }
    case M.ERROR: {
      const e = root.error;
      return {
        kind: 'error', code: errorCodeNames[e.code] ?? `code ${e.code}`, message: e.message,
        doc: e.doc, fatal: e.fatal,
      };
    }
    case M.SNAPSHOT_CHUNK:
      return { kind: 'snapshotChunk', doc: docOf(root.snapshotChunk) };
    case M.SEAL:
      return { kind: 'seal' };
    default:
      throw new WireError('malformed', `a message of unknown kind ${root.which()}`);
  }
}

/**
 * Decodes one frame. Throws a WireError (code 'malformed' or 'tooLarge', and a message saying
 * what was wrong) for anything that is not a valid message within the limits; never anything else.
 * @param {Uint8Array|ArrayBuffer} frame
 * @returns {object} {kind, ...fields}
 */
export function decode(frame) {
  const bytes = frame instanceof Uint8Array ? frame : new Uint8Array(frame);
  if (bytes.length > LIMITS.maxFrameBytes) {
    throw new WireError('tooLarge', `a frame of ${bytes.length} bytes (at most ${LIMITS.maxFrameBytes})`);
  }
  if (bytes.length < 8 || bytes.length % 8 !== 0) {
    throw new WireError('malformed', `a frame of ${bytes.length} bytes is not a Cap'n Proto message`);
  }
  // The segment table, checked before capnp-es reads it (it would allocate per claimed segment):
  // at most 512 segments (as the C++ reader), and sizes that add up to the frame exactly.
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const segments = view.getUint32(0, true) + 1;
  if (segments > 512) throw new WireError('malformed', `a frame claiming ${segments} segments`);
  const tableBytes = 8 * Math.ceil((1 + segments) / 2);
  if (tableBytes > bytes.length) throw new WireError('malformed', 'a frame shorter than its segment table');
  let total = tableBytes;
  for (let i = 0; i < segments; ++i) total += 8 * view.getUint32(4 + 4 * i, true);
  if (total !== bytes.length) {
    throw new WireError('malformed', `a frame of ${bytes.length} bytes whose segments add up to ${total}`);
  }
  try {
    return decodeUnchecked(bytes);
  } catch (e) {
    if (e instanceof WireError) throw e;
    throw new WireError('malformed', `the frame is not a Message of this schema: ${e.message}`);
  }
}
