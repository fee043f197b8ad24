"""`chalice local`, with Nagle's algorithm off, a longer accept queue, and the gateway's own
answers in the API's error shape.

    python -m infra.chalice_local --stage local --host 127.0.0.1 --port 8000

Exactly the `chalice local` command, except that:
- each accepted socket sets TCP_NODELAY. Its handler writes a response's headers and body
  in two sends; with Nagle on, the body waits for the client's delayed ACK, about 40 ms on
  Linux loopback, so every response with a body took 40 ms whatever the application did
  (bench/results/conditional_get.md);
- the listening socket queues up to 128 connections, not socketserver's 5. With 5, when
  more clients connect at once than the busy server accepts, the extra connections are
  dropped and their requests fail without an answer (httpx ReadError: 13 requests failed
  so when bench/load.py's 24 clients first connected together);
- what the local gateway answers by itself (no route, no Authorization header) is the
  answer of chalicelib.api.gateway_errors, as the deployed API's gateway responses are,
  instead of API Gateway's defaults (403 "Missing Authentication Token", or with an
  Authorization header a message that quotes the header back).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from chalice.cli import main as chalice_main
from chalice.local import ChaliceRequestHandler, LocalGateway, LocalGatewayException, ThreadedHTTPServer

from chalicelib.api.gateway_errors import GATEWAY_ERRORS
from chalicelib.api.http import error_body

ACCEPT_QUEUE = 128
# The local gateway's errors (status, x-amzn-ErrorType) by API Gateway response type.
LOCAL_KINDS = {
    (403, "UnauthorizedException"): "MISSING_AUTHENTICATION_TOKEN",
    (401, "UnauthorizedException"): "UNAUTHORIZED",
    (403, "AccessDeniedException"): "ACCESS_DENIED",
}


def in_the_apis_error_shape(error: LocalGatewayException) -> LocalGatewayException:
    kind = LOCAL_KINDS.get((error.CODE, error.headers.get("x-amzn-ErrorType", "")))
    answer = GATEWAY_ERRORS[kind or ("DEFAULT_5XX" if error.CODE >= 500 else "DEFAULT_4XX")]
    body = error_body(answer.code, answer.message or "The gateway refused the request")
    error.CODE = answer.status or error.CODE
    error.headers = {**error.headers, **answer.headers, "Content-Type": "application/json"}
    error.body = json.dumps(body).encode()
    return error


def _answer_in_the_apis_shape(handle_request: Any) -> Any:
    def handle(self: LocalGateway, *args: Any, **kwargs: Any) -> Any:
        try:
            return handle_request(self, *args, **kwargs)
        except LocalGatewayException as error:
            raise in_the_apis_error_shape(error) from None

    return handle


def main() -> None:
    ChaliceRequestHandler.disable_nagle_algorithm = True
    ThreadedHTTPServer.request_queue_size = ACCEPT_QUEUE
    LocalGateway.handle_request = _answer_in_the_apis_shape(LocalGateway.handle_request)
    sys.argv = ["chalice", "local", *sys.argv[1:]]
    sys.exit(chalice_main())


if __name__ == "__main__":
    main()
