"""The manifest of a sharded run: what it computes, and which shards are finished.

Shard ``i`` covers inputs ``[i * S, (i + 1) * S)`` of the input stream (folders
listed in sorted order, so the boundaries are the same on every run). The
manifest records the configuration (everything the output depends on) and, for
every finished shard, a fingerprint of its inputs (count, SHA-256 of the names,
first and last name) next to what the output side wrote. A rerun skips the
finished shards whose inputs are unchanged and refuses, with a message saying
what differs, to continue an output made with another configuration or other
inputs. The file is JSON, rewritten atomically after every shard, and holds no
times, so an interrupted-then-resumed run leaves the same manifest as an
uninterrupted one.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

from ._atomic import atomic_write
from ._sources import Item

__all__ = ["Manifest", "ResumeError", "shard_fingerprint"]

FORMAT = "ffeat-shards"
FORMAT_VERSION = 1


class ResumeError(ValueError):
    """An existing output that this run cannot continue; the message says why."""


def shard_fingerprint(items: list[Item]) -> dict:
    """What identifies a shard's inputs: count, SHA-256 of the names, first and last."""
    digest = hashlib.sha256()
    for item in items:
        digest.update(item.name.encode("utf-8", "surrogateescape") + b"\n")
    return {"inputs": len(items), "names_sha256": digest.hexdigest(),
            "first": items[0].name, "last": items[-1].name}


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
        if not path.exists():
            manifest = cls(path, kind, config)
            manifest._write(complete=False)  # the output is ours from now on
            return manifest
        try:
            saved = json.loads(path.read_text())
            ours = (saved["format"], saved["format_version"], saved["kind"]) \
                == (FORMAT, FORMAT_VERSION, kind)
            old, shards = dict(saved["config"]), {s["index"]: s for s in saved["shards"]}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ResumeError(f"{path}: cannot read the manifest ({type(exc).__name__}: "
                              f"{exc}); delete the output to start over") from None
        if not ours:
            raise ResumeError(f"{path}: not a manifest of ffeat {kind} shards (format "
                              f"{FORMAT} {FORMAT_VERSION}); choose another output")
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
