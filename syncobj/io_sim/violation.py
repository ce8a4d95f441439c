"""What a simulated run reports when something that must hold did not."""

from __future__ import annotations

import attrs


@attrs.frozen(slots=True)
class Violation:
    """One broken rule: which one, when (virtual seconds), on which node, and what was seen."""

    invariant: str
    time: float
    node: str | None
    detail: str

    def describe(self) -> str:
        where = f" on {self.node}" if self.node else ""
        return f"{self.invariant} violated at t={self.time:.6f}{where}: {self.detail}"

    def to_json(self) -> dict:
        return {"invariant": self.invariant, "time": self.time, "node": self.node, "detail": self.detail}


class InvariantViolation(Exception):
    """Stops a run: raised by a checker (or the world itself) when a rule is broken."""

    def __init__(self, violation: Violation) -> None:
        self.violation = violation
        super().__init__(violation.describe())


class ProcessFailure(Exception):
    """A process handler raised something other than `SimCrash`: a bug in the process (or kernel)."""

    def __init__(self, node: str, time: float, error: BaseException) -> None:
        self.node = node
        self.time = time
        self.error = error
        super().__init__(f"process on {node} raised {type(error).__name__}: {error} (t={time:.6f})")
