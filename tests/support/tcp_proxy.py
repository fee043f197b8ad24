"""A TCP proxy on a fixed loopback port that a test can take down and bring back,
to make a backing service unreachable (refused connections, cut live ones) on demand."""

from __future__ import annotations

import contextlib
import socket
import threading

from tests.support.processes import free_port

_CHUNK = 65536


class TcpProxy:
    def __init__(self, upstream: tuple[str, int], port: int | None = None, host: str = "127.0.0.1") -> None:
        self.upstream = upstream
        self.host = host
        self.port = port or free_port()
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._accepting: threading.Thread | None = None
        self._live: set[socket.socket] = set()
        self.connections = 0

    @property
    def running(self) -> bool:
        return self._listener is not None

    def start(self) -> TcpProxy:
        """Listen again on the same port; idempotent."""
        with self._lock:
            if self._listener is not None:
                return self
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((self.host, self.port))
            listener.listen(64)
            self._listener = listener
            self._accepting = threading.Thread(target=self._accept, args=(listener,), daemon=True)
            self._accepting.start()
        return self

    def stop(self) -> None:
        """Refuse new connections and cut every live one, as a broker outage would."""
        with self._lock:
            listener, self._listener = self._listener, None
            live, self._live = self._live, set()
            accepting, self._accepting = self._accepting, None
        if listener is not None:
            # shutdown() wakes the thread blocked in accept(); close() alone may not.
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        for sock in live:
            _close(sock)
        if accepting is not None:
            accepting.join(timeout=5)

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=5)
                server.settimeout(None)
            except OSError:
                _close(client)
                continue
            with self._lock:
                if self._listener is not listener:
                    _close(client)
                    _close(server)
                    return
                self._live.update((client, server))
                self.connections += 1
            for source, target in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(source, target), daemon=True).start()

    def _pipe(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while chunk := source.recv(_CHUNK):
                target.sendall(chunk)
        except OSError:
            pass
        finally:
            # One side is done: end both, and forget them.
            with self._lock:
                self._live.discard(source)
                self._live.discard(target)
            _close(source)
            _close(target)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
