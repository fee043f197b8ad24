"""`chalice local`, with Nagle's algorithm off on its connections and a longer accept queue.

    python -m infra.chalice_local --stage local --host 127.0.0.1 --port 8000

Exactly the `chalice local` command, except that:
- each accepted socket sets TCP_NODELAY. Its handler writes a response's headers and body
  in two sends; with Nagle on, the body waits for the client's delayed ACK, about 40 ms on
  Linux loopback, so every response with a body took 40 ms whatever the application did
  (bench/results/conditional_get.md);
- the listening socket queues up to 128 connections, not socketserver's 5. With 5, when
  more clients connect at once than the busy server accepts, the extra connections are
  dropped and their requests fail without an answer (httpx ReadError: 13 requests failed
  so when bench/load.py's 24 clients first connected together).
"""

from __future__ import annotations

import sys

from chalice.cli import main as chalice_main
from chalice.local import ChaliceRequestHandler, ThreadedHTTPServer

ACCEPT_QUEUE = 128


def main() -> None:
    ChaliceRequestHandler.disable_nagle_algorithm = True
    ThreadedHTTPServer.request_queue_size = ACCEPT_QUEUE
    sys.argv = ["chalice", "local", *sys.argv[1:]]
    sys.exit(chalice_main())


if __name__ == "__main__":
    main()
