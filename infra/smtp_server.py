"""The local SMTP server (aiosmtpd): prints every message it receives.

python -m infra.smtp_server [--host 127.0.0.1] [--port 8025]
"""

from __future__ import annotations

import argparse
import signal
import threading
from email import message_from_bytes, policy

from aiosmtpd.controller import Controller


class PrintingHandler:
    async def handle_DATA(self, server, session, envelope) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        body = message.get_body(preferencelist=("plain",))
        print(
            f"mail to {', '.join(envelope.rcpt_tos)} | {message['Subject']} | "
            f"{body.get_content().strip() if body else ''} | {message['Message-ID']}",
            flush=True,
        )
        return "250 Message accepted for delivery"


def main() -> None:
    parser = argparse.ArgumentParser(description="Local SMTP server that prints what it receives.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025)
    args = parser.parse_args()
    controller = Controller(PrintingHandler(), hostname=args.host, port=args.port)
    controller.start()
    print(f"smtp listening on {args.host}:{args.port}", flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    stopped.wait()
    controller.stop()


if __name__ == "__main__":
    main()
