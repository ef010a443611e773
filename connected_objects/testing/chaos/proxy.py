"""A TCP proxy in front of a database server that cuts, stalls and refuses connections on demand.

:class:`DatabaseProxy` listens on a free loopback port, in a thread, and pipes
bytes both ways between each client and the server it fronts. Point the
processes under test at it (:meth:`DatabaseProxy.url` rewrites a SQLAlchemy
URL's host and port) and keep your own checks on the server itself. Then:

- :meth:`~DatabaseProxy.cut` drops every open connection at once (a failover,
  a restarted server, a NAT timing out): the client sees its socket closed
  in the middle of whatever it was doing;
- :meth:`~DatabaseProxy.outage` refuses every new connection, and cuts every
  open one, for a while (a database restart);
- :meth:`~DatabaseProxy.chaos` cuts at random every few hundred milliseconds
  (sometimes one connection, sometimes all) and sometimes stalls the traffic,
  seeded and with a cap, until :meth:`~DatabaseProxy.calm`.

Everything it did is counted (:attr:`~DatabaseProxy.cuts`,
:attr:`~DatabaseProxy.stalls`, :attr:`~DatabaseProxy.refused`). It only ever
listens on, and connects to, the addresses it is given (127.0.0.1 in tests).

Example: an echo server behind the proxy; a cut closes the client's socket::

    >>> import socket, threading
    >>> from connected_objects.testing.chaos.proxy import DatabaseProxy
    >>> server = socket.create_server(("127.0.0.1", 0))
    >>> def echo():
    ...     conn, _ = server.accept()
    ...     with conn:
    ...         while data := conn.recv(100):
    ...             conn.sendall(data)
    >>> threading.Thread(target=echo, daemon=True).start()
    >>> with DatabaseProxy("127.0.0.1", server.getsockname()[1]) as proxy:
    ...     client = socket.create_connection(("127.0.0.1", proxy.port))
    ...     client.sendall(b"ping")
    ...     answer = client.recv(100)
    ...     dropped = proxy.cut()
    ...     after = client.recv(100)  # b"": the proxy closed it
    >>> answer, after, dropped, proxy.cuts
    (b'ping', b'', 1, 1)
    >>> client.close(); server.close()
"""

from __future__ import annotations

import contextlib
import random
import socket
import threading
import time
from types import TracebackType

from sqlalchemy.engine import URL

__all__ = ["DatabaseProxy"]

_CHUNK = 65536


class _Pair:
    """One client connection and its connection to the server."""

    def __init__(self, client: socket.socket, server: socket.socket) -> None:
        self.client, self.server = client, server
        self.closed = False
        self._lock = threading.Lock()

    def close(self) -> bool:
        """Close both ends (the peer sees a closed socket); True if this call closed them."""
        with self._lock:
            if self.closed:
                return False
            self.closed = True
        for sock in (self.client, self.server):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        return True


class DatabaseProxy:
    """Pipes TCP from a loopback port to ``host:port``; cuts, stalls and refuses on demand.

    :param host: the database server's address.
    :param port: the database server's port.
    :param listen: the address to listen on (a free port is picked).
    :param seed: for a repeatable :meth:`chaos`.
    """

    def __init__(self, host: str, port: int, *, listen: str = "127.0.0.1", seed: int | None = None) -> None:
        self.target = (host, port)
        self._listener = socket.create_server((listen, 0))
        self._listener.settimeout(0.2)  # accept() wakes up to see stop(): closing a socket does not wake it
        self.host, self.port = listen, int(self._listener.getsockname()[1])
        self._rng = random.Random(seed)
        self._pairs: set[_Pair] = set()
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._calm = threading.Event()
        self._calm.set()
        self._refuse_until = 0.0
        self._stall_until = 0.0
        self._threads: list[threading.Thread] = []
        #: connections dropped by :meth:`cut` (one per connection), refused during an :meth:`outage`,
        #: stalls begun by :meth:`chaos`, and connections accepted in all
        self.cuts = 0
        self.refused = 0
        self.stalls = 0
        self.accepted = 0

    def __repr__(self) -> str:
        return f"DatabaseProxy(port={self.port}, target={self.target[0]}:{self.target[1]}, cuts={self.cuts})"

    # -- life ------------------------------------------------------------------------------

    def start(self) -> DatabaseProxy:
        """Start accepting connections (in a daemon thread)."""
        self._spawn(self._accept, "db-proxy accept")
        return self

    def stop(self) -> None:
        """Stop chaos, stop accepting and close every connection."""
        self.calm()
        self._stopped.set()
        self._listener.close()
        with self._lock:
            pairs = list(self._pairs)
            self._pairs.clear()
        for pair in pairs:
            pair.close()
        for thread in self._threads:
            thread.join(5)

    def __enter__(self) -> DatabaseProxy:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    def url(self, url: URL) -> URL:
        """``url`` with its host and port replaced by the proxy's."""
        return url.set(host=self.host, port=self.port)

    # -- faults ----------------------------------------------------------------------------

    def cut(self, share: float = 1.0) -> int:
        """Drop the open connections (each with probability ``share``); how many were dropped."""
        with self._lock:
            pairs = [p for p in self._pairs if share >= 1.0 or self._rng.random() < share]
            self._pairs.difference_update(pairs)
        dropped = sum(1 for pair in pairs if pair.close())
        self.cuts += dropped
        return dropped

    def outage(self, seconds: float) -> None:
        """From now on for ``seconds``: every open connection is cut and every new one refused."""
        self._refuse_until = time.monotonic() + seconds
        self.cut()

    @property
    def in_outage(self) -> bool:
        """True while an :meth:`outage` lasts."""
        return time.monotonic() < self._refuse_until

    def chaos(
        self,
        *,
        every: tuple[float, float] = (0.2, 0.6),
        cut_all: float = 0.1,
        share: float = 0.3,
        stall: float = 0.05,
        stall_for: tuple[float, float] = (0.1, 0.5),
        limit: int | None = None,
    ) -> None:
        """Until :meth:`calm`: every ``every`` seconds (drawn uniformly), cut or stall.

        :param cut_all: probability that a tick cuts every connection (else each with ``share``).
        :param stall: probability that a tick stalls all traffic instead, for ``stall_for`` seconds.
        :param limit: stop after this many ticks (None: until :meth:`calm` or :meth:`stop`).
        """
        if not self._calm.is_set():
            return
        self._calm.clear()

        def run() -> None:
            ticks = 0
            while not self._stopped.is_set() and (limit is None or ticks < limit):
                # the fault's own schedule, not a synchronisation: calm() or stop() end it at once
                if self._calm.wait(self._rng.uniform(*every)):
                    return
                ticks += 1
                if self._rng.random() < stall:
                    self.stalls += 1
                    self._stall_until = time.monotonic() + self._rng.uniform(*stall_for)
                else:
                    self.cut(1.0 if self._rng.random() < cut_all else share)

        self._spawn(run, "db-proxy chaos")

    def calm(self) -> None:
        """End :meth:`chaos` (an outage runs its course)."""
        self._calm.set()
        self._stall_until = 0.0

    # -- piping ----------------------------------------------------------------------------

    def _spawn(self, target: object, name: str, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)  # type: ignore[arg-type]
        self._threads = [t for t in self._threads if t.is_alive()]
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # stopped
            client.settimeout(None)
            if self.in_outage:
                self.refused += 1
                client.close()
                continue
            try:
                server = socket.create_connection(self.target, timeout=5)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            pair = _Pair(client, server)
            with self._lock:
                self._pairs.add(pair)
            self.accepted += 1
            self._spawn(self._pipe, "db-proxy up", pair, client, server)
            self._spawn(self._pipe, "db-proxy down", pair, server, client)

    def _pipe(self, pair: _Pair, source: socket.socket, sink: socket.socket) -> None:
        try:
            while not pair.closed:
                data = source.recv(_CHUNK)
                if not data:
                    break
                hold = self._stall_until - time.monotonic()
                if hold > 0:  # a stalled network: the bytes arrive late
                    self._stopped.wait(hold)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._pairs.discard(pair)
            pair.close()
