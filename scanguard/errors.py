"""The one exception tree of scanguard: each error knows its HTTP status and a stable code."""

from __future__ import annotations

from typing import Any, ClassVar


class ScanguardError(Exception):
    """Something went wrong in scanguard."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal"

    def __init__(self, message: str | None = None, **details: Any) -> None:
        self.message = message or (self.__doc__ or self.code).strip()
        self.details: dict[str, Any] = details
        super().__init__(self.message)

    def to_dict(self) -> dict[str, Any]:
        """The JSON error body: one shape for every error."""
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class ConfigError(ScanguardError):
    """The configuration is invalid."""

    status = 500
    code = "config_invalid"


class BadRequest(ScanguardError):
    """The request is malformed."""

    status = 400
    code = "bad_request"


class InvalidScope(BadRequest):
    """A scan's scope must lie inside its library's root."""

    code = "invalid_scope"

    def __init__(self, path: object, reason: str) -> None:
        shown = str(path)[:200]
        super().__init__(f"scope path {shown!r} {reason}", path=shown, reason=reason)


class Unauthorized(ScanguardError):
    """A valid bearer token is required."""

    status = 401
    code = "unauthorized"


class Forbidden(ScanguardError):
    """This operation is not allowed here."""

    status = 403
    code = "forbidden"


class PathNotAllowed(Forbidden):
    """The path is outside the allowed roots."""

    code = "path_not_allowed"


class EmergencyCleanupDisabled(Forbidden):
    """Emergency cleanup is disabled by configuration."""

    code = "emergency_cleanup_disabled"


class NotFound(ScanguardError):
    """No such object."""

    status = 404
    code = "not_found"

    def __init__(self, kind: str, ident: object) -> None:
        super().__init__(f"{kind} {ident} not found", kind=kind, id=ident)


class Conflict(ScanguardError):
    """The operation conflicts with the current state."""

    status = 409
    code = "conflict"


class LibraryBusy(Conflict):
    """Another scan holds this library."""

    code = "library_busy"

    def __init__(self, library_id: int, job_id: int | None, owner: str | None = None) -> None:
        self.library_id = library_id
        self.job_id = job_id
        held = f"job {job_id}" if job_id is not None else f"instance {owner}"
        super().__init__(
            f"library {library_id} is busy: {held} is active",
            library_id=library_id,
            job_id=job_id,
            owner=owner,
        )


class IllegalTransition(Conflict):
    """This job cannot make that transition from its current status."""

    code = "illegal_transition"

    def __init__(self, job_id: int, status: str, action: str) -> None:
        self.job_id = job_id
        self.job_status = status
        self.action = action
        super().__init__(
            f"cannot {action} job {job_id}: it is {status}", job_id=job_id, status=status, action=action
        )


class LibraryExists(Conflict):
    """A library with this path already exists."""

    code = "library_exists"

    def __init__(self, path: str, library_id: int | None = None) -> None:
        super().__init__(f"a library already exists at {path}", path=path, library_id=library_id)


class LibraryRootUnavailable(Conflict):
    """The library's root folder is missing or unreadable."""

    code = "root_unavailable"

    def __init__(self, library_id: int, path: str, reason: str) -> None:
        super().__init__(
            f"library {library_id} root {path} is unavailable: {reason}",
            library_id=library_id,
            path=path,
            reason=reason,
        )


class Fenced(Conflict):
    """This writer's fencing token is stale: another owner has taken over."""

    code = "fenced"

    def __init__(self, job_id: int, token: int) -> None:
        self.job_id = job_id
        self.token = token
        super().__init__(f"job {job_id}: token {token} is stale; nothing was written", job_id=job_id)


class OperationFailed(ScanguardError):
    """A safeguarded operation failed and was rolled back."""

    status = 500
    code = "operation_failed"

    def __init__(
        self, operation: str, step: str, cause: BaseException | str, *, rolled_back: bool = True
    ) -> None:
        """`cause`: a description safe to show a client (fixed words), or the exception, named by its type
        only — its text may hold SQL, parameters or paths, and stays in the log and in `__cause__`."""
        self.operation = operation
        self.step = step
        self.rolled_back = rolled_back
        outcome = "was rolled back" if rolled_back else "had already committed; the state was reconciled"
        reason = cause if isinstance(cause, str) else type(cause).__name__
        super().__init__(
            f"{operation} failed at step '{step}' and {outcome}: {reason}",
            operation=operation,
            step=step,
            rolled_back=rolled_back,
        )


class OperationTimeout(ScanguardError):
    """A safeguarded operation did not finish within the operation timeout."""

    status = 503
    code = "operation_timeout"

    def __init__(self, operation: str, seconds: float) -> None:
        super().__init__(
            f"{operation} did not finish within {seconds:g}s", operation=operation, timeout=seconds
        )


class StoreUnavailable(ScanguardError):
    """The database is unreachable or busy beyond its retries."""

    status = 503
    code = "store_unavailable"


class WorkersUnavailable(ScanguardError):
    """The worker processes of the per-file work broke down; the scan is restarted from its checkpoint."""

    status = 503
    code = "workers_unavailable"


class WalkFailed(ScanguardError):
    """The walk process of a scan failed or died; the scan is restarted from its checkpoint."""

    status = 503
    code = "walk_failed"


class UnknownOperation(ScanguardError):
    """No such control operation."""

    status = 500
    code = "unknown_operation"

    def __init__(self, operation: object) -> None:
        super().__init__(f"no such control operation: {operation!r}", operation=str(operation))


class RuntimeStopped(ScanguardError):
    """The runtime is not running."""

    status = 503
    code = "runtime_stopped"


class FatalProcessorError(ScanguardError):
    """A host processor says the whole scan must stop (not just this file): the supervisor restarts it."""

    code = "processor_fatal"


class WatchLimit(ScanguardError):
    """No more inotify watches: raise fs.inotify.max_user_watches (or [watch] max_watches)."""

    status = 503
    code = "watch_limit"
