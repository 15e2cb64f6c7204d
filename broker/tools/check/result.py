"""One result of `broker check`: OK, WARN or FAIL, what was checked, and why."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Status = Literal["OK", "WARN", "FAIL"]
_RANK = {"OK": 0, "WARN": 1, "FAIL": 2}


@dataclass(frozen=True)
class CheckResult:
    status: Status
    name: str  # what was checked, e.g. "key broker.signing"
    detail: str

    def line(self) -> str:
        return f"{self.status:<4}  {self.name}: {self.detail}"


def worst(results: list[CheckResult]) -> Status:
    return max((r.status for r in results), key=_RANK.__getitem__, default="OK")


def count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


def reason(exc: Exception) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
