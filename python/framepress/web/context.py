"""What every request of the console shares: settings, database, broker, credential, samplers."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Optional

from framepress.config import Settings
from framepress.service.db import Database
from framepress.web.auth import Auth
from framepress.web.queries import DepthSampler
from framepress.webhooks import Subscriptions


@dataclass
class Console:
    settings: Settings
    db: Database
    broker: Any
    auth: Auth
    webhooks: Subscriptions
    sampler: Optional[DepthSampler] = None
    _s3: Any = None
    _depth_cache: tuple[float, Any] = (0.0, None)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def s3_client(self) -> Any:
        with self._lock:
            if self._s3 is None:
                from framepress.service.storage.s3 import S3Storage
                self._s3 = S3Storage().client
            return self._s3

    def queue_depth(self, max_age_s: float = 2.0) -> Optional[dict[str, Any]]:
        """The broker's count, asked at most every `max_age_s` s (pages poll it)."""
        from framepress.web.queue_depth import depth
        at, value = self._depth_cache
        if time.monotonic() - at > max_age_s:
            value = depth(self.settings, self.broker)
            self._depth_cache = (time.monotonic(), value)
        return value


__all__ = ["Console"]
