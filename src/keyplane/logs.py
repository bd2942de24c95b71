"""Logging set-up, with a filter that masks anything shaped like a keyplane key.

Keys never reach a log call on purpose; this is the second line of defence for the call
that nobody meant to write (an exception message quoting a request body, say).
"""

from __future__ import annotations

import logging
import re
import sys

_KEY = re.compile(r"kp_(live|test)_[0-9A-Za-z]{34}([0-9A-Za-z]{4})")


def redact(text: str) -> str:
    return _KEY.sub(lambda m: f"kp_{m[1]}_…{m[2]}", text)


class RedactKeys(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_info, record.exc_text = None, redact(text)
        return True


def setup_logging(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactKeys())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    disable_access_log()


def disable_access_log() -> None:
    """uvicorn's access log writes the full URL, query string included: a key someone put
    in a URL would land in the log even though keyplane refuses the request. It stays off."""
    logging.getLogger("uvicorn.access").disabled = True
