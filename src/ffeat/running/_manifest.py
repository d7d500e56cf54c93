"""The manifest of a sharded run: what it computes, and which shards are finished.

Shard ``i`` covers inputs ``[i * S, (i + 1) * S)`` of the input stream (folders
listed in sorted order, so the boundaries are the same on every run). The
manifest records the configuration (everything the output depends on) and, for
every finished shard, a fingerprint of its inputs (count, SHA-256 of the names,
SHA-256 of each file's size and modification time, first and last name) next to
what the output side wrote (with the SHA-256 of the bytes written). A rerun
skips the finished shards whose inputs are unchanged and refuses, with a message
saying what differs, to continue an output made with another configuration or
other inputs. A manifest is checked entry by entry when read (types, keys,
ranges, shard files confined to their folder): a damaged or edited one is
refused with a message naming what is wrong. The file is JSON, rewritten
atomically after every shard, and holds no times, so an interrupted-then-resumed
run leaves the same manifest as an uninterrupted one.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable
from pathlib import Path

from ..reading._sources import Item
from ..reading.loading import open_regular
from ._atomic import atomic_write

__all__ = ["Manifest", "ResumeError", "read_record", "shard_fingerprint"]

FORMAT = "ffeat-shards"
FORMAT_VERSION = 1
#: Largest manifest read (about 400 bytes a shard: far more shards than any run has).
MAX_BYTES = 64 << 20
#: What every shard entry holds: the fingerprint of its inputs and its counts.
_ENTRY = {"index": int, "inputs": int, "names_sha256": str, "files_sha256": str,
          "first": str, "last": str, "rows": int, "errors": int}
#: What the output side of each kind records about a shard it wrote.
_WRITTEN = {"features": {"file": str, "bytes": int, "sha256": str},
            "predictions": {"end": int, "sha256": str}}
_SHA256 = re.compile(r"[0-9a-f]{64}")


class ResumeError(ValueError):
    """An existing output that this run cannot continue; the message says why."""


def _file_state(item: Item) -> bytes:
    """Size and modification time of a file input (its content changes them), a
    placeholder for an in-memory image or a file that cannot be looked at."""
    if not isinstance(item.obj, (str, os.PathLike)):
        return b"-\n"
    try:
        st = os.stat(item.obj)
    except (OSError, ValueError) as exc:  # dangling link, loop, NUL in the name
        return f"? {type(exc).__name__}\n".encode()
    return f"{st.st_size} {st.st_mtime_ns}\n".encode()


def shard_fingerprint(items: list[Item]) -> dict:
    """What identifies a shard's inputs: count, SHA-256 of the names, SHA-256 of each
    file's size and modification time (``mtime_ns``), first and last name."""
    names, files = hashlib.sha256(), hashlib.sha256()
    for item in items:
        names.update(item.name.encode("utf-8", "surrogateescape") + b"\n")
        files.update(_file_state(item))
    return {"inputs": len(items), "names_sha256": names.hexdigest(),
            "files_sha256": files.hexdigest(), "first": items[0].name,
            "last": items[-1].name}


def _confined(name: object) -> bool:
    """Whether ``name`` is a plain file name: no folder part, not ``.``/``..``, not absolute."""
    return (isinstance(name, str) and name not in ("", ".", "..") and "\0" not in name
            and not any(sep in name for sep in ("/", "\\", os.sep))
            and not os.path.isabs(name))


def _entry_problem(entry: object, kind: str) -> str | None:
    """What is wrong with one shard entry of a ``kind`` manifest, or None."""
    if not isinstance(entry, dict):
        return f"a shard entry is {type(entry).__name__}, not an object"
    fields = {**_ENTRY, **_WRITTEN[kind]}
    where = f"shard {entry.get('index')!r}"
    if set(entry) != set(fields):
        missing, extra = sorted(set(fields) - set(entry)), sorted(set(entry) - set(fields))
        return f"{where} lacks {missing} or has unknown keys {extra}"
    for key, kind_of in fields.items():
        value = entry[key]
        if not isinstance(value, kind_of) or isinstance(value, bool):
            return f"{where}: {key} is {value!r}, not {kind_of.__name__}"
        if kind_of is int and value < (1 if key in ("inputs", "end") else 0):
            return f"{where}: {key} is {value}, out of range"
        if key.endswith("sha256") and not _SHA256.fullmatch(value):
            return f"{where}: {key} is not a SHA-256 digest"
    if entry["rows"] + entry["errors"] != entry["inputs"]:
        return f"{where}: rows + errors differ from inputs"
    if "file" in entry and not _confined(entry["file"]):
        return (f"{where}: file {entry['file']!r} is not a plain file name inside the "
                "folder")
    return None


def read_record(path: Path, kind: str) -> dict:
    """The manifest of ``kind`` shards at ``path``, checked; its ``shards`` by index.

    Raises
    ------
    ResumeError
        When the file cannot be read, is not such a manifest, or any entry is
        malformed (the message names the manifest and what is wrong).
    """
    def refuse(what: str) -> ResumeError:
        return ResumeError(f"{path}: {what}; delete the output to start over")

    try:
        with open_regular(path) as fh:  # a FIFO at its name is refused, not waited on
            text = fh.read(MAX_BYTES + 1)
        saved = json.loads(text) if len(text) <= MAX_BYTES else None
    except (OSError, ValueError, RecursionError) as exc:  # RecursionError: [[[[...
        raise refuse(f"cannot read the manifest ({type(exc).__name__}: {exc})") from None
    if len(text) > MAX_BYTES:
        raise refuse(f"the manifest is larger than {MAX_BYTES:,} bytes")
    if not isinstance(saved, dict) or (saved.get("format"), saved.get("format_version"),
                                       saved.get("kind")) != (FORMAT, FORMAT_VERSION, kind):
        raise ResumeError(f"{path}: not a manifest of ffeat {kind} shards (format "
                          f"{FORMAT} {FORMAT_VERSION}); choose another output")
    if not isinstance(saved.get("config"), dict) or not isinstance(saved.get("shards"), list) \
            or not isinstance(saved.get("complete"), bool):
        raise refuse("the manifest lacks its config, shards or complete flag")
    shards = {}
    for entry in saved["shards"]:
        problem = _entry_problem(entry, kind)
        if problem is None and entry["index"] in shards:
            problem = f"shard {entry['index']} is listed twice"
        if problem:
            raise refuse(f"malformed manifest: {problem}")
        shards[entry["index"]] = entry
    return {**saved, "shards": shards}


class Manifest:
    """The JSON record of a sharded output at ``path``.

    Parameters
    ----------
    path : Path
        Where the manifest lives.
    kind : str
        What the shards hold (``"features"`` or ``"predictions"``).
    config : dict
        Everything the output depends on besides the inputs (JSON-ready).
    shards : dict, optional
        Finished shards by index, as read from an existing manifest.
    """

    def __init__(self, path: Path, kind: str, config: dict,
                 shards: dict[int, dict] | None = None) -> None:
        self.path = path
        self.kind = kind
        self.config = config
        self.shards = shards or {}

    @classmethod
    def open(cls, path: Path, kind: str, config: dict) -> Manifest:
        """The manifest at ``path`` if there is one, checked against ``config``; else a new one.

        Raises
        ------
        ResumeError
            When the file is not a manifest of ``kind`` or records another configuration.
        """
        if not os.path.lexists(path):
            manifest = cls(path, kind, config)
            manifest._write(complete=False)  # the output is ours from now on
            return manifest
        saved = read_record(path, kind)
        old, shards = saved["config"], saved["shards"]
        differ = [f"{key}: {old.get(key)!r} there, {config.get(key)!r} now"
                  for key in sorted(set(old) | set(config)) if old.get(key) != config.get(key)]
        if differ:
            raise ResumeError(f"{path}: the output was made with another configuration "
                              f"({'; '.join(differ)}); use a new output, or delete this one "
                              "to start over")
        return cls(path, kind, config, shards)

    def done(self, index: int, fingerprint: dict, present: Callable[[dict], bool]) -> bool:
        """Whether shard ``index`` is finished for these inputs and its output is ``present``.

        Raises
        ------
        ResumeError
            When the shard was finished for other inputs.
        """
        entry = self.shards.get(index)
        if entry is None:
            return False
        if entry["names_sha256"] == fingerprint["names_sha256"] \
                and entry["files_sha256"] != fingerprint["files_sha256"]:
            raise ResumeError(
                f"{self.path}: a file among the inputs of shard {index} ({entry['first']} "
                f"to {entry['last']}) changed since the shard was written (other size or "
                "modification time); use a new output, or delete this one to start over")
        if any(entry[key] != value for key, value in fingerprint.items()):
            raise ResumeError(
                f"{self.path}: the inputs changed since shard {index} was written (it held "
                f"{entry['inputs']} inputs from {entry['first']} to {entry['last']}, now "
                f"{fingerprint['inputs']} from {fingerprint['first']} to "
                f"{fingerprint['last']}); use a new output, or delete this one to start over")
        return present(entry)

    def record(self, index: int, fingerprint: dict, written: dict) -> None:
        """Note shard ``index`` as finished and rewrite the file."""
        self.shards[index] = {"index": index, **fingerprint, **written}
        self._write(complete=False)

    def finish(self, n_shards: int) -> dict:
        """Mark the output complete after ``n_shards`` shards; returns the totals.

        Raises
        ------
        ResumeError
            When the manifest holds shards beyond the inputs of this run.
        """
        if set(self.shards) != set(range(n_shards)):
            extra = sorted(set(self.shards) - set(range(n_shards)))
            raise ResumeError(f"{self.path}: the inputs changed: shards {extra} were written "
                              f"by an earlier run, this one has {n_shards}; use a new "
                              "output, or delete this one to start over")
        return self._write(complete=True)

    def _write(self, complete: bool) -> dict:
        shards = [self.shards[i] for i in sorted(self.shards)]
        totals = {key: sum(s[key] for s in shards) for key in ("inputs", "rows", "errors")}
        record = {"format": FORMAT, "format_version": FORMAT_VERSION, "kind": self.kind,
                  "config": self.config, "complete": complete, "totals": totals}
        if complete:
            names = hashlib.sha256("".join(s["names_sha256"] for s in shards).encode())
            record["inputs_sha256"] = names.hexdigest()
        record["shards"] = shards
        text = json.dumps(record, indent=1) + "\n"
        atomic_write(self.path, lambda fh: fh.write(text.encode()))
        return totals
