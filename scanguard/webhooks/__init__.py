"""Webhooks: events from the outbox POSTed, signed, to the receivers of `[[webhooks]]` (DESIGN §10)."""

from scanguard.webhooks.signing import SIGNATURE_HEADER, sign, verify

__all__ = ["SIGNATURE_HEADER", "sign", "verify"]
