"""Webhook delivery: one actor per webhook, fed from the events table (the outbox), POSTing through a Sender."""

from __future__ import annotations

import concurrent.futures
import contextlib
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pykka
import structlog

from scanguard.actors.events import Subscribe, Unsubscribe
from scanguard.actors.liveness import Answering
from scanguard.actors.ticking import Tick, Ticker
from scanguard.config import Config, WebhookConfig
from scanguard.errors import ScanguardError
from scanguard.metrics import Metrics
from scanguard.records import Event
from scanguard.store.reads import WebhookPending
from scanguard.store.seam import Store
from scanguard.webhooks.records import Lease, Pending, Position
from scanguard.webhooks.sender import Outcome, Sender
from scanguard.webhooks.signing import body_of, headers_for

log = structlog.get_logger("scanguard.webhooks")
ALERT = "alert.webhook_failing"


@dataclass(frozen=True, slots=True)
class Settled:
    """A delivery ended on the loop: its outcome (None when it broke unexpectedly: tried again later)."""

    pending: Pending
    outcome: Outcome | None


@dataclass(frozen=True, slots=True)
class AttemptFailed:
    """One attempt of the delivery in flight did not get a 2xx."""

    event_id: int
    attempt: int
    error: str


@dataclass(frozen=True, slots=True)
class DeliveryParts:
    """What every delivery actor works with: settings, the writer and reader stores, the sender, metrics."""

    config: Config
    store: Store
    sender: Sender
    metrics: Metrics


class WebhookDelivery(Answering):
    """Owns one webhook's delivery: its lease on the cursor, the events read ahead, the one in flight.

    The cursor moves only after a 2xx (or after the last attempt, recorded as dead), one event at a time,
    so deliveries are at least once and in order; the POST and its retries run on the Sender's loop,
    so this actor's mailbox stays free for ticks, outcomes and stop.
    """

    def __init__(self, hook: WebhookConfig, parts: DeliveryParts) -> None:
        super().__init__()
        self.hook = hook
        self.key = hook.key
        self.parts = parts
        cfg = parts.config
        self._renew_every = cfg.safeguards.lease_ttl / 3
        self._batch = cfg.webhook_delivery.batch_size
        self._lease: Lease | None = None
        self._renewed = 0.0
        self._position: Position = (0, 0)
        self._ahead: deque[Pending] = deque()
        self._inflight: concurrent.futures.Future[Outcome] | None = None
        self._ticker = Ticker(self.actor_ref, cfg.webhook_delivery.poll_interval, f"webhook-{self.key[:40]}")

    def on_start(self) -> None:
        self._ticker.start()
        self.actor_ref.tell(Tick())

    def on_stop(self) -> None:
        self._ticker.stop()
        if self._inflight is not None:
            self._inflight.cancel()  # not acknowledged: the cursor stays, the event is sent again later
            self._inflight = None
        if self._lease is not None:
            with contextlib.suppress(ScanguardError, pykka.Timeout, pykka.ActorDeadError):
                self.parts.store.release_webhook(self.key, self._lease.token)
            log.info("webhook.released", webhook=self.key, cursor=self._position[1])

    def on_receive(self, message: Any) -> Any:
        match message:
            case Tick():
                return self._guarded(self._poll)
            case Settled(pending, outcome):
                return self._guarded(lambda: self._settle(pending, outcome))
            case AttemptFailed(event_id, attempt, error):
                return self._guarded(lambda: self._attempt_failed(event_id, attempt, error))
        return super().on_receive(message)

    def _guarded(self, step: Callable[[], None]) -> None:
        try:
            step()
        except (ScanguardError, pykka.Timeout, pykka.ActorDeadError) as exc:
            # the store is unreachable or slow: start again from the database's cursor on a later tick
            log.warning("webhook.store_failed", webhook=self.key, error=str(exc))
            self._forget()
        except Exception:  # the actor boundary: one bad step must not end this webhook's deliveries
            log.exception("webhook.step_failed", webhook=self.key)
            self._forget()

    def _forget(self) -> None:
        self._lease = None
        self._ahead.clear()
        if self._inflight is not None:
            self._inflight.cancel()
            self._inflight = None

    def _hold(self) -> bool:
        """Take or renew the lease (every lease_ttl/3); a new lease starts from the database's cursor."""
        now = time.monotonic()
        if self._lease is not None and now - self._renewed < self._renew_every:
            return True
        lease: Lease | None = self.parts.store.claim_webhook(self.key)
        if lease is None:
            if self._lease is not None:
                log.warning("webhook.lease_lost", webhook=self.key)
                self._forget()
            return False
        if self._lease is None or lease.token != self._lease.token:
            self._forget()
            self._position = lease.position
            log.info("webhook.claimed", webhook=self.key, token=lease.token, cursor=lease.position[1])
        self._lease, self._renewed = lease, now
        return True

    def _poll(self) -> None:
        if not self._hold() or self._inflight is not None:
            return
        if not self._ahead:
            self._ahead.extend(
                self.parts.store.read(WebhookPending(self._position, self.hook.kinds, self._batch))
            )
        while self._ahead and self._lease is not None:
            pending = self._ahead[0]
            if not self._about_itself(pending.event):
                self._send(pending)
                return
            # its own failure alerts would fail the same way, forever: the cursor moves past them
            if not self.parts.store.webhook_skipped(self.key, self._lease.token, pending.position):
                self._fenced(pending.event.id)
                return
            self._ahead.popleft()
            self._position = pending.position

    def _about_itself(self, event: Event) -> bool:
        return event.kind == ALERT and event.data.get("webhook") == self.key

    def _send(self, pending: Pending) -> None:
        ref, event = self.actor_ref, pending.event
        body = body_of(event)

        def failed(attempt: int, error: str) -> None:  # on the sender's loop
            with contextlib.suppress(pykka.ActorDeadError):
                ref.tell(AttemptFailed(event.id, attempt, error))

        def done(future: concurrent.futures.Future[Outcome]) -> None:  # on the sender's loop
            if future.cancelled():
                return
            try:
                outcome: Outcome | None = future.result()
            except Exception as exc:  # noqa: BLE001 - reported to the actor, which tries again later
                log.error("webhook.delivery_broke", webhook=self.key, event_id=event.id, error=repr(exc))
                outcome = None
            with contextlib.suppress(pykka.ActorDeadError):
                ref.tell(Settled(pending, outcome))

        self._inflight = self.parts.sender.deliver(
            self.hook.url, body, headers_for(event, body, self.hook.secret), failed
        )
        self._inflight.add_done_callback(done)

    def _attempt_failed(self, event_id: int, attempt: int, error: str) -> None:
        self.parts.metrics.webhook_deliveries.labels(self.key, "failed").inc()
        log.warning(
            "webhook.attempt_failed", webhook=self.key, event_id=event_id, attempt=attempt, error=error
        )
        if self._lease is not None and not self.parts.store.webhook_attempt_failed(
            self.key, self._lease.token, error
        ):
            self._fenced(event_id)

    def _settle(self, pending: Pending, outcome: Outcome | None) -> None:
        self._inflight = None
        if self._lease is None or not self._ahead or self._ahead[0] != pending:
            return  # the lease was lost meanwhile: whoever holds it now delivers from the cursor
        if outcome is None:
            return  # tried again on the next tick
        event, store, token = pending.event, self.parts.store, self._lease.token
        if outcome.delivered:
            self.parts.metrics.webhook_deliveries.labels(self.key, "delivered").inc()
            log.info(
                "webhook.delivered",
                webhook=self.key,
                event_id=event.id,
                event_kind=event.kind,
                attempts=outcome.attempts,
                status=outcome.status,
            )
            moved = store.webhook_delivered(self.key, token, pending.position)
        else:
            self.parts.metrics.webhook_deliveries.labels(self.key, "dead").inc()
            self.parts.metrics.alerts.labels("webhook_failing").inc()
            log.error(
                "webhook.dead",
                webhook=self.key,
                event_id=event.id,
                event_kind=event.kind,
                attempts=outcome.attempts,
                error=outcome.error,
            )
            moved = store.webhook_dead(pending, self.key, token, outcome.attempts, outcome.error or "failed")
        if not moved:
            self._fenced(event.id)
            return
        self._ahead.popleft()
        self._position = pending.position
        self._renewed = time.monotonic()
        self.actor_ref.tell(Tick())  # the next event at once, not at the next poll

    def _fenced(self, event_id: int) -> None:
        log.warning("webhook.fenced", webhook=self.key, event_id=event_id)
        self._forget()


class Deliveries:
    """Owns one runtime's webhook delivery actors and the Sender they share; nudged by the event bus."""

    def __init__(
        self, refs: dict[str, pykka.ActorRef[Any]], sender: Sender, bus: pykka.ActorRef[Any]
    ) -> None:
        self._refs = refs
        self._sender = sender
        self._bus = bus
        self._subscription: int | None = None

    @classmethod
    def start(cls, parts: DeliveryParts, bus: pykka.ActorRef[Any]) -> Deliveries:
        """Create each webhook's cursor (at the newest event when new), then start its actor. The sender is
        theirs from here: a start that fails half-way stops what it started and closes the sender."""
        cfg = parts.config
        deliveries = cls({}, parts.sender, bus)
        refs, hooks = deliveries._refs, cfg.webhooks

        def nudge(event: Event) -> None:  # on the bus's thread: wake the actors this event is for
            for hook in hooks:
                if hook.wants(event.kind):
                    with contextlib.suppress(pykka.ActorDeadError):
                        refs[hook.key].tell(Tick())

        try:
            for hook in hooks:
                parts.store.ensure_webhook(hook.key)
            parts.sender.start()
            for hook in hooks:
                refs[hook.key] = WebhookDelivery.start(hook, parts)
            subscription: int = bus.ask(
                Subscribe(nudge), block=True, timeout=cfg.safeguards.operation_timeout
            )
        except BaseException:
            deliveries.stop(cfg.safeguards.force_kill_timeout)
            raise
        deliveries._subscription = subscription
        log.info("webhook.started", webhooks=list(refs))
        return deliveries

    def refs(self) -> dict[str, pykka.ActorRef[Any]]:
        return dict(self._refs)

    def stop(self, timeout: float) -> None:
        """Stop every actor (each releases its lease), then cancel what is in flight and close the sender."""
        if self._subscription is not None and self._bus.is_alive():
            with contextlib.suppress(pykka.ActorDeadError, pykka.Timeout):
                self._bus.ask(Unsubscribe(self._subscription), timeout=timeout)
        for key, ref in self._refs.items():
            if ref.is_alive():
                try:
                    ref.stop(block=True, timeout=timeout)
                except pykka.Timeout:
                    log.error("webhook.stop_timeout", webhook=key)
        self._sender.close(timeout)
