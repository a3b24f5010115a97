"""Liveness: the message every scanguard actor answers, so that the health checker can ping any mailbox."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pykka


@dataclass(frozen=True, slots=True)
class AreYouThere:
    """Answered True by any scanguard actor whose mailbox still turns."""


class Answering(pykka.ThreadingActor):
    """Owns the answer to AreYouThere: every scanguard actor derives from it."""

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, AreYouThere):
            return True
        return super().on_receive(message)
