"""A minimal WebSocket client (RFC 6455) for the process tests: it sends frames exactly as a test
holds them (recorded bytes from a device of another release, say) and returns what the relay
answers, with nothing of the SDK in between. Binary and close frames only; no TLS."""

import base64
import hashlib
import os
import socket
import struct

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
BINARY, CLOSE = 0x2, 0x8


class WebSocket:
    def __init__(self, host, port, target="/", timeout=20):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        key = base64.b64encode(os.urandom(16))
        request = (b"GET " + target.encode() + b" HTTP/1.1\r\nHost: " +
                   ("%s:%d" % (host, port)).encode() + b"\r\nUpgrade: websocket\r\n"
                   b"Connection: Upgrade\r\nSec-WebSocket-Key: " + key +
                   b"\r\nSec-WebSocket-Version: 13\r\n\r\n")
        self.sock.sendall(request)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("closed during the WebSocket handshake: %r" % head)
            head += chunk
        head, self.buffer = head.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        if " 101 " not in lines[0] + " ":
            raise ConnectionError("no WebSocket upgrade: %r" % lines[0])
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest()).decode()
        if not any(l.lower() == "sec-websocket-accept: " + accept.lower() for l in lines):
            raise ConnectionError("a wrong Sec-WebSocket-Accept: %r" % lines)

    def send(self, payload, opcode=BINARY):
        """One masked frame with FIN set (a client's frames are masked)."""
        n = len(payload)
        if n < 126:
            header = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 65536:
            header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        mask = os.urandom(4)
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(header + mask + body)

    def _read(self, n):
        while len(self.buffer) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the connection ended inside a frame")
            self.buffer += chunk
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out

    def receive(self):
        """The next frame as (opcode, payload); (None, b"") when the connection ends between
        frames. Fragmented messages are not expected from the relay and are refused."""
        if not self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None, b""
            self.buffer = chunk
        b0, b1 = self._read(2)
        if not b0 & 0x80:
            raise ConnectionError("a fragmented frame")
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._read(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._read(8))[0]
        mask = self._read(4) if b1 & 0x80 else None
        payload = self._read(n)
        if mask:
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        return b0 & 0x0F, payload

    def close(self):
        self.sock.close()
