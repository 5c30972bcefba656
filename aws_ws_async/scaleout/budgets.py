"""Which rate budget a post takes permits from: the settings made into budgets.

Shard workers always take permits (:func:`cluster_budgets`, installed around each page);
``asend_message`` and the other in-process senders only when ``rate_budget_in_send`` is on
(:func:`send_budgets`, installed as the default by the app). One budget per account label and
Region: API Gateway throttles an account's calls per Region together, whatever the API.
Budgets are cached per event loop (their lock and Redis client belong to one loop).
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import re
import weakref

from django.core.exceptions import ImproperlyConfigured

from aws_ws_async.conf import get_settings
from aws_ws_async.delivery.budget import RateBudget

logger = logging.getLogger(__name__)
_REGION_RE = re.compile(r"\.execute-api\.([a-z0-9-]+)\.amazonaws\.com")
_CACHE: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[str, str | None, float], RateBudget]
]
_CACHE = weakref.WeakKeyDictionary()


def region_of(endpoint_url: str) -> str:
    """The Region in an AWS ``@connections`` URL, else the configured one (custom domains)."""
    found = _REGION_RE.search(endpoint_url)
    if found:
        return found.group(1)
    return get_settings().region_name or "local"


def _limits_installed() -> bool:
    return importlib.util.find_spec("limits") is not None


def cluster_budgets(endpoint_url: str) -> RateBudget | None:
    """The shared budget of ``endpoint_url``'s account and Region, from the settings.

    None (no budget, as before it existed) only when ``limits`` is not installed and no Redis
    is configured; a configured Redis without the ``redis`` extra is a configuration error.
    """
    settings = get_settings()
    if not _limits_installed():
        if settings.rate_budget_redis_url:
            raise ImproperlyConfigured(
                "rate_budget_redis_url needs the redis extra: pip install 'aws-ws-async[redis]'"
            )
        logger.warning("no rate budget: install 'aws-ws-async[redis]' (or [tasks]) for one")
        return None
    key = f"{settings.rate_budget_account}:{region_of(endpoint_url)}"
    url, rate = settings.rate_budget_redis_url, float(settings.rate_budget_per_second)
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # an engine built outside a loop: its own budget (Redis still shared)
        return RateBudget(key, rate, redis_url=url)
    budgets = _CACHE.setdefault(loop, {})
    budget = budgets.get((key, url, rate))
    if budget is None:
        budget = budgets[(key, url, rate)] = RateBudget(key, rate, redis_url=url)
    return budget


def send_budgets(endpoint_url: str) -> RateBudget | None:
    """In-process senders: the cluster budget only when ``rate_budget_in_send`` is on."""
    if not get_settings().rate_budget_in_send:
        return None
    return cluster_budgets(endpoint_url)
