"""``tinyq --log-format json``: one JSON object per log line, for log shippers (Loki, ELK,
CloudWatch) that would otherwise have to parse the text format with a regular expression."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

# The attributes every LogRecord has; anything else on a record came from ``extra=`` (the
# worker's job fields: job_id, task, queue, attempt, outcome, duration) and is kept. The
# outcome is a word of _outcomes.OUTCOMES, the vocabulary of the metrics too.
STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """A record as one line of JSON: time (UTC, ISO 8601), level, logger, message, process,
    thread, the record's extras, and a failure's traceback as one string field (its newlines
    escaped, so a line is still a record)."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": self.utc_time(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
            "thread": record.threadName,
        }
        for key, value in vars(record).items():
            if key not in STANDARD and not key.startswith("_"):
                data[key] = value
        if record.exc_info:
            data["traceback"] = self.formatException(record.exc_info)
        elif record.exc_text:
            data["traceback"] = record.exc_text
        if record.stack_info:
            data["stack"] = self.formatStack(record.stack_info)
        # default=str: an extra that JSON cannot hold is written as its text, never dropped
        # with the whole line.
        return json.dumps(data, default=str, ensure_ascii=False)

    @staticmethod
    def utc_time(created: float) -> str:
        seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
        return f"{seconds}.{int(created % 1 * 1000):03d}Z"
