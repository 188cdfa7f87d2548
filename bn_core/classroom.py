"""Live class answers: a bounded, in-memory store that no page can see into uninvited.

A teacher opens a class and gets a short code; students join with the code and
send their check-yourself answers, anonymously. Only the session that opened the
class (it holds the teacher token) can read the answers, and only as counts per
question. Nothing is written to disk and there are no names or accounts.

Bounds, so a server in a classroom can never grow without limit:

* at most ``MAX_CLASSES`` open classes (the oldest expired ones are dropped first),
* at most ``MAX_ANSWERS`` answers per question (one per student; a new answer from
  the same student replaces the old one),
* a class expires ``TTL_S`` seconds after it was opened.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["MAX_ANSWERS", "MAX_CLASSES", "TTL_S", "ClassError", "ClassStore"]

MAX_CLASSES = 50  # open classes per server process
MAX_ANSWERS = 200  # answers kept per question: a large lecture hall
TTL_S = 3 * 3600  # a class lasts one teaching session (3 h)
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: read aloud and typed on phones
CODE_LENGTH = 5


class ClassError(ValueError):
    """A wrong, expired or full class; the message is meant for the user."""


@dataclass
class _Class:
    teacher: str  # the token of the session that opened the class
    opened: float  # clock time
    students: set[str] = field(default_factory=set)
    answers: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)  # (page, q) -> {student: answer}


class ClassStore:
    """Every open class of one server process. Thread-safe: sessions run on their own threads."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._classes: dict[str, _Class] = {}

    def _expire(self) -> None:
        now = self._clock()
        for code in [c for c, k in self._classes.items() if now - k.opened >= TTL_S]:
            del self._classes[code]

    def _get(self, code: str) -> _Class:
        self._expire()
        found = self._classes.get(code.strip().upper())
        if found is None:
            raise ClassError(f"There is no open class with the code {code.strip()[:12]!r}: it is wrong or has expired.")
        return found

    def open_class(self, teacher: str) -> str:
        """A new class for the session ``teacher``; returns its code."""
        with self._lock:
            self._expire()
            if len(self._classes) >= MAX_CLASSES:
                raise ClassError(f"This server already has {MAX_CLASSES} open classes; try again later.")
            code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
            while code in self._classes:
                code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
            self._classes[code] = _Class(teacher=teacher, opened=self._clock())
            return code

    def join(self, code: str, student: str) -> str:
        """Join a class; returns its normalized code or raises :class:`ClassError`."""
        with self._lock:
            self._get(code).students.add(student)
            return code.strip().upper()

    def submit(self, code: str, student: str, page: str, question: str, answer: str) -> None:
        """Record a student's answer (replacing their earlier one); raises when the class is gone or full."""
        with self._lock:
            room = self._get(code)
            box = room.answers.setdefault((page, question), {})
            if student not in box and len(box) >= MAX_ANSWERS:
                raise ClassError(f"This question already has {MAX_ANSWERS} answers; yours was not counted.")
            box[student] = str(answer)[:64]

    def answers(self, code: str, teacher: str, page: str, question: str) -> list[str]:
        """The answers to one question, for the teacher only (in no particular order, without who gave them)."""
        with self._lock:
            room = self._get(code)
            if room.teacher != teacher:
                raise ClassError("Only the teacher who opened this class can see its answers.")
            return sorted(room.answers.get((page, question), {}).values())

    def size(self, code: str) -> int:
        """How many students have joined."""
        with self._lock:
            return len(self._get(code).students)

    def open_count(self) -> int:
        with self._lock:
            self._expire()
            return len(self._classes)
