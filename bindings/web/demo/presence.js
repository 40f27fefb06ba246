// The desktop demo's presence payloads (apps/desktop-demo/src/presence.cpp), so that the web demo
// and the Qt demo show each other's cursors: five lines of UTF-8,
//
//   weft-demo-presence/1
//   NAME            1 to 64 bytes, no control characters
//   #rrggbb         the peer's colour
//   CURSOR          the caret as a text anchor: "<16 hex node>.<seq>.L|R", "0.0.L|R" for the
//   ANCHOR          start of the text, "-" when absent; ANCHOR is the selection's other end
//
// Payloads come from other peers: decodePresence checks everything as DecodePresence does and
// returns null for anything else. Anchors here are weft.js's ({item: "<node>:<seq>", bias}).

const MAGIC = 'weft-demo-presence/1';
const MAX_NAME_BYTES = 64;
const MAX_PAYLOAD_BYTES = 1024;
const utf8 = new TextEncoder();

/** The desktop demo's ColorFor: a palette colour picked by the node ID (16 hex digits). */
const PALETTE = ['#e6194b', '#3cb44b', '#4363d8', '#f58231', '#911eb4', '#008080', '#9a6324', '#800000'];
export function colorFor(nodeHex) {
  const h = (BigInt('0x' + nodeHex) * 0x9E3779B97F4A7C15n) & 0xFFFFFFFFFFFFFFFFn;
  return PALETTE[Number((h >> 32n) % 8n)];
}

/** SanitizeName: control characters dropped, cut to 64 bytes on a character; "anonymous" if empty. */
export function sanitizeName(name) {
  let out = '';
  for (const ch of String(name)) {
    const c = ch.codePointAt(0);
    if (c < 0x20 || c === 0x7f) continue;
    if (utf8.encode(out + ch).length > MAX_NAME_BYTES) break;
    out += ch;
  }
  return out || 'anonymous';
}

function encodeAnchor(a) {
  if (!a) return '-';
  const [node, seq] = a.item.split(':');
  const start = /^0+$/.test(node);
  return `${start ? '0' : node}.${start ? 0 : seq}.${a.bias === 'right' ? 'R' : 'L'}`;
}

// undefined for malformed text; null for "-".
function decodeAnchor(s) {
  if (s === '-') return null;
  const m = /^([0-9a-f]{1,16})\.([0-9]{1,20})\.([LR])$/.exec(s);
  if (!m) return undefined;
  const seq = BigInt(m[2]);
  const bias = m[3] === 'R' ? 'right' : 'left';
  if (m[1] === '0') return seq === 0n ? { item: '0000000000000000:0', bias } : undefined;
  // A node ID of 0 other than "0", or seq 0 or past 64 bits, is not one the desktop demo reads.
  if (BigInt('0x' + m[1]) === 0n || seq === 0n || seq >= 1n << 64n) return undefined;
  return { item: `${m[1].padStart(16, '0')}:${seq}`, bias };
}

/**
 * @param {{name: string, color: string, cursor: ?{item: string, bias: string},
 *          anchor: ?{item: string, bias: string}}} p
 * @returns {Uint8Array}
 */
export function encodePresence({ name, color, cursor = null, anchor = null }) {
  const c = /^#[0-9a-fA-F]{6}$/.test(color ?? '') ? color : '#808080';
  return utf8.encode([MAGIC, sanitizeName(name), c, encodeAnchor(cursor), encodeAnchor(anchor)].join('\n'));
}

/** @param {Uint8Array} payload @returns {?{name, color, cursor, anchor}} null when malformed */
export function decodePresence(payload) {
  if (!(payload instanceof Uint8Array) || payload.length > MAX_PAYLOAD_BYTES) return null;
  let text;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(payload);
  } catch {
    return null;
  }
  const lines = text.split('\n');
  if (lines.length !== 5 || lines[0] !== MAGIC) return null;
  const [, name, color, cursorText, anchorText] = lines;
  if (!name || utf8.encode(name).length > MAX_NAME_BYTES || sanitizeName(name) !== name) return null;
  if (!/^#[0-9a-fA-F]{6}$/.test(color)) return null;
  const cursor = decodeAnchor(cursorText);
  const anchor = decodeAnchor(anchorText);
  if (cursor === undefined || anchor === undefined) return null;
  return { name, color, cursor, anchor };
}
