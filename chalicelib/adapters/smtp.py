"""SMTP: one connection per batch of messages."""

from __future__ import annotations

import smtplib
from collections.abc import Callable
from email.message import EmailMessage

from chalicelib.domain.delivery import Outcome, Result


class SmtpSender:
    def __init__(self, host: str, port: int, timeout: float = 10) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout

    def send_batch(
        self, messages: list[EmailMessage], on_delivered: Callable[[list[int]], None] | None = None
    ) -> list[Result]:
        """One result per message; `on_delivered([index])` as soon as a message is accepted."""
        if not messages:
            return []
        try:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        except (OSError, smtplib.SMTPException) as error:
            return [Result(Outcome.RETRY, f"SMTP connection failed: {error}")] * len(messages)
        results: list[Result] = []
        try:
            for index, message in enumerate(messages):
                results.append(self._send(smtp, message))
                if on_delivered is not None and results[-1].outcome is Outcome.DELIVERED:
                    on_delivered([index])
                if results[-1].outcome is Outcome.RETRY and not _alive(smtp):
                    # The connection broke: the rest of the batch is retried, not failed.
                    results.extend([Result(Outcome.RETRY, "SMTP connection lost")] * (len(messages) - len(results)))
                    break
        finally:
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                smtp.close()
        return results

    @staticmethod
    def _send(smtp: smtplib.SMTP, message: EmailMessage) -> Result:
        try:
            refused = smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as error:
            return _by_code(min(code for code, _ in error.recipients.values()), "recipient refused")
        except smtplib.SMTPResponseException as error:
            return _by_code(error.smtp_code, error.smtp_error.decode(errors="replace"))
        except (OSError, smtplib.SMTPException) as error:
            return Result(Outcome.RETRY, f"SMTP error: {error}")
        if refused:
            return Result(Outcome.FAILED, f"recipient refused: {refused}")
        return Result(Outcome.DELIVERED)


def _by_code(code: int, text: str) -> Result:
    # 4xx replies are temporary; 5xx are permanent.
    outcome = Outcome.RETRY if 400 <= code < 500 else Outcome.FAILED
    return Result(outcome, f"SMTP {code}: {text}")


def _alive(smtp: smtplib.SMTP) -> bool:
    try:
        return smtp.noop()[0] == 250
    except (OSError, smtplib.SMTPException):
        return False
