"""The durable deletion journal: an SQLite database beside the model file."""

import json
import sqlite3
import threading
import time
import uuid
from datetime import datetime, timezone

from skforget.base import GUARANTEES

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS deletions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id TEXT UNIQUE,
    record_ids TEXT NOT NULL,
    received_at REAL NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'applied', 'refused')),
    rows TEXT,
    model_version INTEGER,
    guarantee TEXT,
    applied_at REAL,
    note TEXT,
    persisted_at REAL
);
CREATE TABLE IF NOT EXISTS forgotten (
    record_key TEXT PRIMARY KEY,
    seq INTEGER NOT NULL REFERENCES deletions (seq)
);
"""

_COLUMNS = ("seq", "request_id", "record_ids", "received_at", "status", "rows",
            "model_version", "guarantee", "applied_at", "note", "persisted_at")


def _iso(t):
    return None if t is None else datetime.fromtimestamp(t, timezone.utc).isoformat()


def record_key(record_id):
    """The journal's text key for a record id: ``17`` and ``"17"`` differ."""
    return json.dumps(record_id)


class Journal:
    """Write-ahead log of deletion requests, one row per request.

    A request is appended as ``pending`` and committed (``synchronous=FULL``
    in WAL mode: on disk when :meth:`append` returns) before the model is
    touched; once the served model has forgotten it, it is marked ``applied``
    with the version it produced (or ``refused`` with the reason, if the
    estimator refused it); once the model file holds that version (or a later
    one), ``persisted_at`` is set. ``forgotten`` lists the ids of applied
    requests, so a repeated request can be answered with the receipt that
    forgot them.

    Every method may be called from any thread; calls are serialised.

    Parameters
    ----------
    path : str or path-like
        The SQLite database file; created if absent.
    """

    def __init__(self, path):
        self.path = str(path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        # no checkpoint inside a commit (it would land on some deletion's
        # receipt); the service calls checkpoint() from its background writer
        self._db.execute("PRAGMA wal_autocheckpoint=0")
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._db.execute(statement)
            self._db.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('journal_id', ?)",
                (uuid.uuid4().hex,),
            )
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(deletions)")}
            if "persisted_at" not in columns:  # a journal written before background saves
                self._db.execute("ALTER TABLE deletions ADD COLUMN persisted_at REAL")
        self.journal_id = self._db.execute(
            "SELECT value FROM meta WHERE key = 'journal_id'"
        ).fetchone()[0]
        # a second connection for the commits that need not wait for the disk
        # (no pragma switching per call; calls stay serialised by _lock)
        self._relaxed_db = sqlite3.connect(self.path, check_same_thread=False,
                                           isolation_level=None)
        self._relaxed_db.execute("PRAGMA synchronous=NORMAL")
        self._relaxed_db.execute("PRAGMA foreign_keys=ON")
        self._relaxed_db.execute("PRAGMA wal_autocheckpoint=0")
        # and one for checkpoints, which run beside the others (WAL mode)
        self._checkpoint_lock = threading.Lock()
        self._checkpoint_db = sqlite3.connect(self.path, check_same_thread=False,
                                              isolation_level=None)

    def close(self):
        with self._checkpoint_lock:
            self._checkpoint_db.close()
        with self._lock:
            self._relaxed_db.close()
            self._db.close()  # the last connection: SQLite checkpoints the log

    def checkpoint(self):
        """Copy the write-ahead log into the database, as far as readers allow.

        Passive: it waits for no one, and the other methods may run
        meanwhile. Returns the log's size and the pages copied (in pages).
        """
        with self._checkpoint_lock:
            _, log, copied = self._checkpoint_db.execute(
                "PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return log, copied

    # ------------------------------------------------------------ writes
    def append(self, record_ids, request_id=None):
        """Journal a request durably; return its entry (a dict of its columns)."""
        entry = dict.fromkeys(_COLUMNS)
        entry.update(request_id=request_id, record_ids=json.dumps(list(record_ids)),
                     received_at=time.time(), status="pending")
        with self._lock, self._db:
            entry["seq"] = self._db.execute(
                "INSERT INTO deletions (request_id, record_ids, received_at, status) "
                "VALUES (?, ?, ?, 'pending')",
                (entry["request_id"], entry["record_ids"], entry["received_at"]),
            ).lastrowid
        return entry

    def mark_applied(self, seq, rows, model_version, guarantee, forgotten_ids, note=None,
                     applied_at=None):
        """Record that request ``seq`` produced ``model_version``.

        Committed without waiting for the disk (``synchronous=NORMAL``): the
        next :meth:`append` or :meth:`sync` makes it durable. If a power cut
        loses it first, the entry is still journaled, as pending, and is
        applied again on restart (see the service). Marking an entry again
        (a replay) keeps its first ``applied_at``.
        """
        applied_at = time.time() if applied_at is None else applied_at
        db = self._relaxed_db
        with self._lock, db:
            db.execute("BEGIN IMMEDIATE")
            db.execute(
                "UPDATE deletions SET status = 'applied', rows = ?, model_version = ?, "
                "guarantee = ?, applied_at = COALESCE(applied_at, ?), note = ? WHERE seq = ?",
                (json.dumps([int(r) for r in rows]), model_version, guarantee, applied_at,
                 note, seq),
            )
            db.executemany(
                "INSERT OR REPLACE INTO forgotten (record_key, seq) VALUES (?, ?)",
                [(record_key(rid), seq) for rid in forgotten_ids],
            )

    def mark_persisted(self, through):
        """Record that the model file includes every applied entry up to ``through``.

        Relaxed like :meth:`mark_applied`: the model file itself says which
        entry it includes, and the service marks again on start.
        """
        db = self._relaxed_db
        with self._lock, db:
            db.execute(
                "UPDATE deletions SET persisted_at = ? WHERE seq <= ? AND status = 'applied' "
                "AND persisted_at IS NULL",
                (time.time(), through),
            )

    def sync(self):
        """Make every commit so far durable (one write with ``synchronous=FULL``).

        In WAL mode a synchronous commit flushes the log, and with it every
        earlier relaxed commit.
        """
        with self._lock, self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('synced_at', ?)",
                (repr(time.time()),),
            )

    def mark_refused(self, seq, reason):
        """Record that the estimator refused request ``seq`` (nothing changed)."""
        with self._lock, self._db:
            self._db.execute(
                "UPDATE deletions SET status = 'refused', applied_at = ?, note = ? "
                "WHERE seq = ?",
                (time.time(), reason, seq),
            )

    # ------------------------------------------------------------- reads
    def _rows(self, where="", params=()):
        with self._lock:
            cur = self._db.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM deletions {where}", params
            )
            return [dict(zip(_COLUMNS, row)) for row in cur.fetchall()]

    def after(self, seq):
        """Requests journaled after ``seq`` (any status), oldest first."""
        return self._rows("WHERE seq > ? ORDER BY seq", (seq,))

    def pending(self, through):
        """Requests still pending up to and including ``through``, oldest first."""
        return self._rows("WHERE seq <= ? AND status = 'pending' ORDER BY seq", (through,))

    def get(self, seq):
        rows = self._rows("WHERE seq = ?", (seq,))
        return rows[0] if rows else None

    def by_request_id(self, request_id):
        rows = self._rows("WHERE request_id = ?", (request_id,))
        return rows[0] if rows else None

    def last_seq(self):
        with self._lock:
            # sqlite_sequence remembers the largest sequence ever handed out
            row = self._db.execute(
                "SELECT seq FROM sqlite_sequence WHERE name = 'deletions'"
            ).fetchone()
            return row[0] if row else 0

    def forgotten_by(self, record_ids):
        """For each id forgotten already, the sequence number that forgot it."""
        keys = {record_key(rid): rid for rid in record_ids}
        if not keys:
            return {}
        with self._lock:
            found = {}
            items = list(keys)
            for start in range(0, len(items), 500):  # SQLite's parameter limit
                chunk = items[start : start + 500]
                cur = self._db.execute(
                    "SELECT record_key, seq FROM forgotten WHERE record_key IN "
                    f"({', '.join('?' * len(chunk))})",
                    chunk,
                )
                found.update({keys[k]: seq for k, seq in cur.fetchall()})
        return found

    def receipts(self, after=0, limit=100):
        """Decided requests (applied or refused) after ``after``, oldest first."""
        return [
            receipt(e) for e in self._rows(
                "WHERE seq > ? AND status != 'pending' ORDER BY seq LIMIT ?", (after, limit)
            )
        ]

    def count(self, status):
        with self._lock:
            return self._db.execute(
                "SELECT COUNT(*) FROM deletions WHERE status = ?", (status,)
            ).fetchone()[0]


def receipt(entry):
    """The public form of a journal entry."""
    out = {
        "receipt": entry["seq"],
        "request_id": entry["request_id"],
        "status": entry["status"],
        "record_ids": json.loads(entry["record_ids"]),
        "rows": json.loads(entry["rows"]) if entry["rows"] else [],
        "model_version": entry["model_version"],
        "guarantee": entry["guarantee"],
        "guarantee_text": GUARANTEES.get(entry["guarantee"]),
        "received_at": _iso(entry["received_at"]),
        "applied_at": _iso(entry["applied_at"]),
        "persisted": entry["persisted_at"] is not None,
        "persisted_at": _iso(entry["persisted_at"]),
    }
    if entry["note"]:
        out["note"] = entry["note"]
    return out
