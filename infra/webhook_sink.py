"""A local webhook receiver for demos: prints each delivery and whether its Standard
Webhooks signature verifies against the subscription's secret (read from Redis).

    python -m infra.webhook_sink [--host 127.0.0.1] [--port 5700]
"""

from __future__ import annotations

import argparse
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from chalicelib.adapters.redis_client import connect
from chalicelib.adapters.redis_subscriptions import RedisSubscriptions


def verdict(body: bytes, headers: dict[str, str]) -> str:
    try:
        payload = json.loads(body)
        subscription = RedisSubscriptions(connect()).get(int(payload["student_id"]), int(payload["class_id"]))
    except (ValueError, KeyError, TypeError):
        return "unreadable payload"
    if subscription is None or not subscription.secret:
        return "no subscription secret to check against"
    try:
        Webhook(subscription.secret).verify(body, headers)
    except WebhookVerificationError as error:
        return f"signature INVALID ({error})"
    return "signature valid"


class Sink(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            message = json.loads(body).get("message")
        except ValueError:
            message = None
        print(f"webhook {headers.get('webhook-id')} {self.path} | {message} | {verdict(body, headers)}", flush=True)
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


def main() -> None:
    parser = argparse.ArgumentParser(description="Local webhook receiver that verifies signatures.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5700)
    args = parser.parse_args()
    server = ThreadingHTTPServer((args.host, args.port), Sink)
    print(f"webhook sink listening on http://{args.host}:{args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
