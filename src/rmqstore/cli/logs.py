"""Logging of the `rmqstore` command: level, destination (stderr or a file) and format (text,
or one JSON object per line for a log shipper)."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

LEVELS = ("debug", "info", "warning", "error")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """{"time": ISO-8601 with ms and offset, "level", "logger", "message"[, "exception"]}."""

    def format(self, record: logging.LogRecord) -> str:
        t = time.localtime(record.created)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{int(record.msecs):03d}" + \
            time.strftime("%z", t)
        out = {"time": stamp, "level": record.levelname, "logger": record.name,
               "message": record.getMessage()}
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def setup_logging(level: str, file: Path | None, fmt: str) -> None:
    """Replace the root logger's handlers with one: ``file`` (appended to) or stderr."""
    handler: logging.Handler = (logging.FileHandler(file, encoding="utf-8") if file
                                else logging.StreamHandler())
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
