"""The instance's token signing keys: the first one, rotation, and the list.

Rotation makes a new current key; the current one becomes previous and keeps verifying
(and stays in the JWKS) so tokens it signed live out their lifetime; previous keys that
stopped signing more than the longest token lifetime ago are retired and leave the JWKS.
Each change is audited and announced to every node in its transaction (the ``signing``
invalidation notice): every node signs with the new key, and publishes it, within the
notice's delivery.

Signing keys belong to the instance, not to an organization: their audit events form a
chain of their own, under ``INSTANCE`` (checked by ``keyplane audit verify`` with the
others, listed by no organization's audit log).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Final

from keyplane.domain.errors import Conflict
from keyplane.domain.oauth import TOKEN_LIFETIME_MAX, SigningKey
from keyplane.domain.ports import Clock, Keyring, Store
from keyplane.domain.scopes import ScopeSet
from keyplane.services.common import Principal, record

log = logging.getLogger(__name__)

INSTANCE: Final = "instance"
_OPERATOR: Final = "system"


@dataclass(frozen=True, slots=True)
class Rotation:
    current: SigningKey
    previous: str | None
    retired: list[str]


class SigningKeyService:
    def __init__(self, store: Store, keyring: Keyring, clock: Clock) -> None:
        self._store = store
        self._keyring = keyring
        self._clock = clock

    def ensure(self) -> None:
        """A current signing key, made at first start when there is none. Several nodes
        starting at once on PostgreSQL race on the one-current index: one inserts, the
        others' inserts conflict and they use the winner's."""
        with self._store.read() as tx:
            if any(key.state == "current" for key in tx.signing_keys.live()):
                return
        now = self._clock()
        key = self._keyring.new_key(now)
        try:
            with self._store.transaction() as tx:
                tx.signing_keys.insert(key)
                tx.invalidations.signing_keys()
        except Conflict:
            pass  # another node made it first
        else:
            # Not an audit event: no one acted, and an instance chain in every database
            # from its first start would be noise; rotations, which someone does, are.
            log.info("made the first token signing key %s", key.kid)
        self._keyring.invalidate()

    def rotate(self, actor_name: str = "keyplane signing-keys rotate") -> Rotation:
        now = self._clock()
        key = self._keyring.new_key(now)
        with self._store.transaction() as tx:
            previous = tx.signing_keys.demote_current(now)
            retired = tx.signing_keys.retire_previous(now - TOKEN_LIFETIME_MAX)
            tx.signing_keys.insert(key)
            record(
                tx,
                _actor(actor_name),
                now,
                "signing_key.rotate",
                "signing_key",
                key.kid,
                algorithm=key.algorithm,
                previous=previous,
                retired=retired,
            )
            tx.invalidations.signing_keys()
        self._keyring.invalidate()
        return Rotation(key, previous, retired)

    def list(self) -> list[SigningKey]:
        with self._store.read() as tx:
            return tx.signing_keys.all()


def _actor(name: str) -> Principal:
    return Principal(INSTANCE, _OPERATOR, ScopeSet.of(()), actor_name=name)
