"""scanguard: a supervised, crash-safe scan-job runtime for media libraries, built on pykka actors."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scanguard.aio import (
        AsyncRuntime,
    )
    from scanguard.config import (
        Config,
        DatabaseConfig,
        HttpConfig,
        LogConfig,
        SafeguardConfig,
        ScanConfig,
        WatchConfig,
        WebhookConfig,
        WebhookDeliveryConfig,
        load_config,
    )
    from scanguard.errors import (
        BadRequest,
        ConfigError,
        Conflict,
        EmergencyCleanupDisabled,
        FatalProcessorError,
        Fenced,
        Forbidden,
        IllegalTransition,
        InvalidScope,
        LibraryBusy,
        LibraryExists,
        LibraryRootUnavailable,
        NotFound,
        OperationFailed,
        OperationTimeout,
        PathNotAllowed,
        RuntimeStopped,
        ScanguardError,
        StoreUnavailable,
        Unauthorized,
        WatchLimit,
        WorkersUnavailable,
    )
    from scanguard.processing.context import (
        FileContext,
        Processor,
    )
    from scanguard.records import (
        TRIGGERS,
        DeletedJob,
        Event,
        Job,
        Library,
        LibraryWatch,
        MediaFile,
        Page,
        RemovedLibrary,
    )
    from scanguard.runtime import (
        Runtime,
    )

# what host code uses, and where it lives: imported when first used, so that a worker process (or a
# command that needs little) does not pay for the whole runtime
_EXPORTS: dict[str, str] = {
    "AsyncRuntime": "scanguard.aio",
    "BadRequest": "scanguard.errors",
    "Config": "scanguard.config",
    "ConfigError": "scanguard.errors",
    "Conflict": "scanguard.errors",
    "DatabaseConfig": "scanguard.config",
    "DeletedJob": "scanguard.records",
    "EmergencyCleanupDisabled": "scanguard.errors",
    "Event": "scanguard.records",
    "FatalProcessorError": "scanguard.errors",
    "Fenced": "scanguard.errors",
    "FileContext": "scanguard.processing.context",
    "Forbidden": "scanguard.errors",
    "HttpConfig": "scanguard.config",
    "IllegalTransition": "scanguard.errors",
    "InvalidScope": "scanguard.errors",
    "Job": "scanguard.records",
    "Library": "scanguard.records",
    "LibraryWatch": "scanguard.records",
    "LibraryBusy": "scanguard.errors",
    "LibraryExists": "scanguard.errors",
    "LibraryRootUnavailable": "scanguard.errors",
    "LogConfig": "scanguard.config",
    "MediaFile": "scanguard.records",
    "NotFound": "scanguard.errors",
    "OperationFailed": "scanguard.errors",
    "OperationTimeout": "scanguard.errors",
    "Page": "scanguard.records",
    "PathNotAllowed": "scanguard.errors",
    "Processor": "scanguard.processing.context",
    "RemovedLibrary": "scanguard.records",
    "Runtime": "scanguard.runtime",
    "RuntimeStopped": "scanguard.errors",
    "SafeguardConfig": "scanguard.config",
    "TRIGGERS": "scanguard.records",
    "ScanConfig": "scanguard.config",
    "ScanguardError": "scanguard.errors",
    "StoreUnavailable": "scanguard.errors",
    "Unauthorized": "scanguard.errors",
    "WatchConfig": "scanguard.config",
    "WatchLimit": "scanguard.errors",
    "WebhookConfig": "scanguard.config",
    "WebhookDeliveryConfig": "scanguard.config",
    "WorkersUnavailable": "scanguard.errors",
    "load_config": "scanguard.config",
}

__all__ = [
    "TRIGGERS",
    "AsyncRuntime",
    "BadRequest",
    "Config",
    "ConfigError",
    "Conflict",
    "DatabaseConfig",
    "DeletedJob",
    "EmergencyCleanupDisabled",
    "Event",
    "FatalProcessorError",
    "Fenced",
    "FileContext",
    "Forbidden",
    "HttpConfig",
    "IllegalTransition",
    "InvalidScope",
    "Job",
    "Library",
    "LibraryBusy",
    "LibraryExists",
    "LibraryRootUnavailable",
    "LibraryWatch",
    "LogConfig",
    "MediaFile",
    "NotFound",
    "OperationFailed",
    "OperationTimeout",
    "Page",
    "PathNotAllowed",
    "Processor",
    "RemovedLibrary",
    "Runtime",
    "RuntimeStopped",
    "SafeguardConfig",
    "ScanConfig",
    "ScanguardError",
    "StoreUnavailable",
    "Unauthorized",
    "WatchConfig",
    "WatchLimit",
    "WebhookConfig",
    "WebhookDeliveryConfig",
    "WorkersUnavailable",
    "load_config",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'scanguard' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
