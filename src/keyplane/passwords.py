"""Console passwords: argon2id (argon2-cffi, RFC 9106 low-memory profile defaults).

argon2 is meant to be expensive: ~0.2 s of CPU and 64 MiB per hash or check, on up to four
threads (its lanes). Anyone can post to the sign-in form, so a burst of sign-ins would take
every core from the event loop that answers verifications (measured before this: p99 from
1.5 ms to 3.7 s with 16 clients signing in, bench/signin.py). So the hashing runs on a
small pool of its own whose threads run at the lowest CPU priority (nice 19; on Linux a
thread's niceness is its own and the lanes argon2 starts inherit it): when verifications
want the CPU they get it, and sign-ins queue and take longer instead. The pool's size also
bounds the memory argon2 can take at once. Callers block on the result; they are already
off the event loop (sync handlers run in the threadpool).
"""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher as _Argon2
from argon2.exceptions import InvalidHashError, VerificationError

log = logging.getLogger(__name__)

LOWEST_PRIORITY = 19


def _lower_priority() -> None:
    tid = threading.get_native_id()
    try:
        os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        try:
            os.setpriority(os.PRIO_PROCESS, tid, LOWEST_PRIORITY)
        except (AttributeError, OSError):  # not Linux: priorities are per process there
            log.debug("cannot lower the priority of the password-hashing thread")


class Argon2Passwords:
    def __init__(self, workers: int | None = None) -> None:
        self._hasher = _Argon2()
        self._pool = ThreadPoolExecutor(
            max_workers=workers or max(1, os.cpu_count() or 1),
            thread_name_prefix="argon2",
            initializer=_lower_priority,
        )

    def hash(self, password: str) -> str:
        return self._pool.submit(self._hasher.hash, password).result()

    def verify(self, password_hash: str, password: str) -> bool:
        return self._pool.submit(self._check, password_hash, password).result()

    def _check(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
