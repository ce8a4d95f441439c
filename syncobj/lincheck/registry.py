"""Every model the checker knows by name, for the command line and for callers that pick by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import battery_models
from .models import Model, ModelInputError, cas_register, kv

__all__ = ["MODELS", "get_model"]

MODELS: dict[str, Callable[..., Model]] = {
    "cas-register": cas_register,
    "kv": kv,
    "counter": battery_models.counter,
    "dict": battery_models.dict_model,
    "list": battery_models.list_model,
    "set": battery_models.set_model,
    "queue": battery_models.queue,
    "priority-queue": battery_models.priority_queue,
    "lock-manager": battery_models.lock_manager,
}
"""Model factories by name; parameters (``maxsize``, ``auto_unlock_time``) go to the factory."""


def get_model(name: str, **params: Any) -> Model:
    """The model called ``name``, built with ``params``; a clear error for an unknown name."""
    factory = MODELS.get(name)
    if factory is None:
        raise ModelInputError(f"no model named {name!r}; known models: {', '.join(MODELS)}")
    try:
        return factory(**params)
    except TypeError as exc:
        raise ModelInputError(f"model {name!r} does not take parameters {sorted(params)}: {exc}") from None
