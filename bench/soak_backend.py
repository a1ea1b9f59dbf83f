#!/usr/bin/env python3
"""soak_backend.py -- the misbehaving backends for bench/soak.sh (asyncio, stdlib only).

Listens on 127.0.0.1 (port from --port, 0 = any) and prints one line "PORT <n>" on stdout
once it is listening. Paths (GET, keep-alive unless the behaviour breaks the connection):

  /a?id=I, /b, /c  the three good backends, answering as nginx does in the soak
                 ({"a":1,"id":"I"}, {"b":[1,2,3]}, {"c":"merged"}); used when nginx is missing
  /hang          reads, never answers; the connection ends when the peer closes it
  /broken?k=N    behaviour N mod 6: reset in the head, reset in the body, close after the
                 head, non-JSON body, bad chunk size, Content-Length longer than the body

Runs until SIGTERM/SIGINT.
"""

import argparse
import asyncio
import signal
import socket
import struct
import sys

GOOD = {
    b"/b": b'{"b":[1,2,3]}',
    b"/c": b'{"c":"merged"}',
}


def reply(status, body, extra=b""):
    return (b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n"
            % (status, len(body), extra) + body)


class Conn(asyncio.Protocol):
    def connection_made(self, transport):
        self.t = transport
        self.buf = b""
        self.hanging = False

    def data_received(self, data):
        if self.hanging:
            return
        self.buf += data
        while b"\r\n\r\n" in self.buf:
            head, self.buf = self.buf.split(b"\r\n\r\n", 1)
            line = head.split(b"\r\n", 1)[0]
            parts = line.split(b" ")
            target = parts[1] if len(parts) > 1 else b"/"
            path, _, query = target.partition(b"?")
            if not self.answer(path, query):
                return

    def abort(self):
        sock = self.t.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        self.t.abort()

    def answer(self, path, query) -> bool:
        """Serve one request; False when the connection is done (closed or hanging)."""
        if path == b"/a":
            ident = b""
            for kv in query.split(b"&"):
                if kv.startswith(b"id="):
                    ident = kv[3:]
            self.t.write(reply(200, b'{"a":1,"id":"%s"}' % ident))
            return True
        if path in GOOD:
            self.t.write(reply(200, GOOD[path]))
            return True
        if path == b"/hang":
            self.hanging = True
            return False
        if path == b"/broken":
            k = 0
            for kv in query.split(b"&"):
                if kv.startswith(b"k="):
                    try:
                        k = int(kv[2:])
                    except ValueError:
                        pass
            kind = k % 6
            if kind == 0:
                self.t.write(b"HTTP/1.1 200 OK\r\nContent-Ty")
                self.abort()
            elif kind == 1:
                self.t.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{\"a\":\"xxxxxx")
                self.abort()
            elif kind == 2:
                self.t.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
                self.t.close()
            elif kind == 3:
                self.t.write(reply(200, b"this is <not> json {"))
                return True
            elif kind == 4:
                self.t.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n")
                self.t.close()
            else:
                self.t.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"a\":1}")
                self.t.close()
            return False
        self.t.write(reply(404, b'{"error":"no such path"}'))
        return True

    def connection_lost(self, exc):
        pass


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Conn, "127.0.0.1", args.port, backlog=4096,
                                      reuse_address=True)
    print("PORT %d" % server.sockets[0].getsockname()[1], flush=True)
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    await stop
    server.close()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
