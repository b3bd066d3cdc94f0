"""Move the lessons' records from the "sha256" source hash to "sha256-v2", once.

The old scheme hashed the Colab install block of a notebook's first cell too, so pinning
the install line to a release (tools/colab_install.py) would have made every record stale
although no line a lesson runs had changed. The new scheme (``vizlib.records.source_hash``)
ignores what is indented under ``if "google.colab" in sys.modules:``.

A record moves only if it was fresh under the old scheme: its recorded hash equals the old
hash of its lesson's current source, computed here. Then its ``source_hash`` becomes the new
hash and ``source_hash_migrated_from`` keeps the old one, for the audit. A record that was
already stale stays as it is (re-run the lesson). Run it before rewriting any install line::

    .venv/bin/python tools/rehash_records.py [--dry-run]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vizlib import records  # noqa: E402

OLD_SCHEME = "sha256"


def old_source_hash(notebook: Path) -> str:
    """The "sha256" scheme: every cell's type and normalised source, the install block included."""
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    digest = hashlib.sha256()
    for cell in nb["cells"]:
        text = records._normalise(cell.get("source", ""))
        if not text:
            continue
        digest.update(str(cell.get("cell_type", "")).encode() + b"\0")
        digest.update(text.encode("utf-8") + b"\0")
    return OLD_SCHEME + ":" + digest.hexdigest()


def rehash(root: Path, dry_run: bool = False) -> list[tuple[str, str]]:
    """``(lesson, what happened)`` for every record under ``root/lessons/results``."""
    done = []
    for path in sorted((root / records.RESULTS).glob("*.json")):
        record = json.loads(path.read_text(encoding="utf-8"))
        recorded = str(record.get("source_hash", ""))
        source = records.lesson_source(record["lesson"], root)
        if not recorded.startswith(OLD_SCHEME + ":"):
            done.append((record["lesson"], f"left: already {recorded.split(':')[0]}"))
            continue
        if old_source_hash(source) != recorded:
            done.append((record["lesson"], "left: stale under the old scheme (re-run it)"))
            continue
        record["source_hash"] = records.source_hash(source)
        record["source_hash_migrated_from"] = recorded
        if not dry_run:
            path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        done.append((record["lesson"], f"moved to {records.HASH_SCHEME}"))
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="say what would move, write nothing")
    args = parser.parse_args(argv)
    for lesson, what in rehash(ROOT, args.dry_run):
        print(f"{lesson}: {what}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
