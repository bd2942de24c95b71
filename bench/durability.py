"""What SQLite's ``synchronous=FULL`` costs on key creation, against ``NORMAL``.

Run: ``.venv/bin/python bench/durability.py [--keys 300] [--rounds 3]``

keyplane commits with FULL: in WAL mode every commit then syncs the WAL, so a key whose
secret reached its client survives a power loss. NORMAL syncs only at checkpoints. This
creates ``--keys`` keys one by one through KeyService (one transaction each: the key row and
its audit event) on a fresh SQLite file per mode, alternating the modes for ``--rounds``
rounds so that both see the same machine load, and prints each round's figures, the medians
and the FULL/NORMAL ratio. The result depends on the disk (and its cache flush); run it on
the storage keyplane will use.

It is a benchmark, not a test: it reports, it never fails on a figure. No key is printed.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from keyplane.domain.scopes import ScopeSet
from keyplane.domain.tokens import KeyHasher
from keyplane.services.common import Principal
from keyplane.services.keys import KeyService, NewKey
from keyplane.services.orgs import OrgService
from keyplane.storage.engine import make_engine, migrate
from keyplane.storage.store import SqlStore

MODES = ("NORMAL", "FULL")


def _now() -> datetime:
    return datetime.now(UTC)


def create_keys(directory: Path, synchronous: str, count: int) -> float:
    """Seconds to create ``count`` keys, one transaction each, on a new database."""
    engine = make_engine(f"sqlite:///{directory / f'{synchronous}.db'}", synchronous=synchronous)
    try:
        migrate(engine)
        store = SqlStore(engine)
        keys = KeyService(store, KeyHasher(b"bench-durability-" + b"x" * 32), _now)
        made = OrgService(store, keys, _now).create("Bench", "bench@example.com")
        # The owner's key acts, with its full scopes, as over the API.
        owner = Principal(made.org.id, made.key_id, ScopeSet.full())
        keys.create(owner, NewKey(name="warm-up"))
        started = time.perf_counter()
        for n in range(count):
            keys.create(owner, NewKey(name=f"key {n}", scopes=("apps:read",)))
        return time.perf_counter() - started
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=300, help="keys created per mode and round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per mode")
    args = parser.parse_args()

    per_key: dict[str, list[float]] = {mode: [] for mode in MODES}
    with tempfile.TemporaryDirectory(prefix="keyplane-durability-") as tmp:
        for round_ in range(args.rounds):
            for mode in MODES if round_ % 2 == 0 else reversed(MODES):
                directory = Path(tmp) / f"{round_}"
                directory.mkdir(exist_ok=True)
                seconds = create_keys(directory, mode, args.keys)
                per_key[mode].append(seconds / args.keys * 1000)
                print(
                    f"round {round_ + 1}  synchronous={mode:<6}  {args.keys} keys in "
                    f"{seconds:6.2f} s  {per_key[mode][-1]:6.2f} ms/key  "
                    f"{args.keys / seconds:7.1f} keys/s"
                )
    normal = statistics.median(per_key["NORMAL"])
    full = statistics.median(per_key["FULL"])
    print(f"median  NORMAL {normal:.2f} ms/key  FULL {full:.2f} ms/key")
    print(f"FULL / NORMAL = {full / normal:.2f}x per created key")


if __name__ == "__main__":
    main()
