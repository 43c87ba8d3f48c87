"""KVConfigManager: namespace -> key -> value, optionally kept in a JSON file.

The file has Java's kvConfig.json shape (KVConfigSerializeWrapper), so a Java name server's
file can be used as is::

    {"configTable":{"ORDER_TOPIC_CONFIG":{"TopicA":"broker-a:4;broker-b:4"}}}

It is rewritten (temp file + rename) after every change; KV changes are rare admin actions.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from ...protocol import fastjson

log = logging.getLogger(__name__)

# NamesrvUtil.NAMESPACE_ORDER_TOPIC_CONFIG: per-topic orderTopicConf strings.
NAMESPACE_ORDER_TOPIC_CONFIG = "ORDER_TOPIC_CONFIG"


class KVConfigManager:
    def __init__(self, path: Path | None = None) -> None:
        self._path = path
        self._table: dict[str, dict[str, str]] = {}

    def load(self) -> None:
        """Read the file if there is one; a corrupt file is logged and left alone."""
        if self._path is None or not self._path.exists():
            return
        try:
            obj = fastjson.loads(self._path.read_bytes())
            table = obj.get("configTable") or {}
            self._table = {str(ns): {str(k): str(v) for k, v in kv.items()}
                           for ns, kv in table.items()}
        except (OSError, ValueError, AttributeError) as exc:
            log.error("cannot read KV config %s, starting empty: %s", self._path, exc)
            return
        log.info("loaded KV config from %s: %d namespaces", self._path, len(self._table))

    def put(self, namespace: str, key: str, value: str) -> None:
        old = self._table.setdefault(namespace, {}).get(key)
        self._table[namespace][key] = value
        log.info("KV config %s/%s: %r -> %r", namespace, key, old, value)
        self._persist()

    def get(self, namespace: str, key: str) -> str | None:
        return self._table.get(namespace, {}).get(key)

    def delete(self, namespace: str, key: str) -> None:
        kv = self._table.get(namespace)
        if kv is None or kv.pop(key, None) is None:
            return
        # An emptied namespace stays, as in Java: its list is then {"table":{}}, not "not found".
        log.info("KV config %s/%s deleted", namespace, key)
        self._persist()

    def namespace(self, namespace: str) -> dict[str, str] | None:
        """A copy of one namespace's table, or None when it does not exist."""
        kv = self._table.get(namespace)
        return dict(kv) if kv is not None else None

    def _persist(self) -> None:
        if self._path is None:
            return
        data = json.dumps({"configTable": self._table}, indent=1, sort_keys=True).encode()
        tmp = self._path.with_name(self._path.name + ".tmp")
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self._path)
        except OSError as exc:  # the in-memory table stays right; the file catches up next time
            log.error("cannot write KV config %s: %s", self._path, exc)
