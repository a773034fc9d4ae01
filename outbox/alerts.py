"""Notification handlers: staff alerts (the outbox's own topics `alert.email`, `alert.slack`)
and a generic e-mail handler that apps register for their own topics (the guest e-mails of
reservations, C8).

Each is an outbox event with its own bounded retries and explicit timeouts (E5: SMTP uses
EMAIL_TIMEOUT, Slack SLACK_TIMEOUT_SECONDS). A dead notification is logged and sent to Sentry;
it never raises another alert and never touches a reservation."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import requests
import sentry_sdk
from django.conf import settings
from django.core.mail import send_mail

from outbox.handlers import TopicHandler, Verdict
from outbox.models import OutboxEvent

logger = logging.getLogger("reserve.alerts")


class _Notification(TopicHandler):
    def apply(self, event: OutboxEvent, result: str | None, held: None) -> Verdict:
        return Verdict.retry(result) if result else Verdict.delivered()

    def on_dead(self, event: OutboxEvent, error: str) -> None:
        logger.error("notification gave up", extra={"event_id": str(event.id), "topic": event.topic, "error": error})
        sentry_sdk.capture_message(f"{event.topic} could not be delivered: {error}", level="error")


class AlertEmailHandler(_Notification):
    def perform(self, event: OutboxEvent) -> str | None:
        recipients = list(settings.ALERT_EMAILS)
        if not recipients:
            return None
        try:
            send_mail(f"[Reserve & Charge] {event.payload['subject']}", event.payload["body"],
                      settings.DEFAULT_FROM_EMAIL, recipients)
        except OSError as exc:  # smtplib errors, refused connections and timeouts all are
            return f"email: {type(exc).__name__}: {exc}"[:500]
        return None


@dataclass(frozen=True)
class EmailContent:
    to: str
    subject: str
    text: str
    html: str | None = None


class EmailMessageHandler(_Notification):
    """Sends one e-mail. By default the payload holds it: `to`, `subject`, `body` (plain text)
    and, optionally, `html`; an app that renders its messages at send time overrides `content`
    (an exception there is a failed attempt: retried, then dead-lettered)."""

    def content(self, event: OutboxEvent) -> EmailContent | None:
        """The message to send, or None when there is nothing to send any more."""
        payload = event.payload
        return EmailContent(to=payload["to"], subject=payload["subject"], text=payload["body"],
                            html=payload.get("html") or None)

    def perform(self, event: OutboxEvent) -> str | None:
        content = self.content(event)
        if content is None:
            return None
        try:
            send_mail(content.subject, content.text, settings.DEFAULT_FROM_EMAIL, [content.to],
                      html_message=content.html)
        except OSError as exc:  # refused, timed out, or an SMTP error (smtplib's are OSErrors)
            return f"email: {type(exc).__name__}: {exc}"[:500]
        return None


class AlertSlackHandler(_Notification):
    def perform(self, event: OutboxEvent) -> str | None:
        url = settings.SLACK_WEBHOOK_URL
        if not url:
            return None
        text = f"*{event.payload['subject']}*\n{event.payload['body']}"
        try:
            response = requests.post(url, json={"text": text}, timeout=settings.SLACK_TIMEOUT_SECONDS)
        except requests.RequestException as exc:
            return f"slack: {type(exc).__name__}"
        if response.status_code >= 300:
            return f"slack: HTTP {response.status_code}"
        return None
