"""SecAgg+ (Bell et al. 2020) as sans-IO coordinator and participant state machines.

A round sums uint32 vectors modulo 2^32 without the coordinator seeing any one of them
(docs/fl.md). Four stages, each closed by its deadline or when everyone expected answered:

1. advertise keys   participants send two X25519 public keys; survivors U1.
2. share keys       the coordinator lays a random Harary graph over U1 and sends each its
                    neighbours' keys; each participant Shamir-shares its self-mask seed
                    b_u and its mask secret key among its neighbours, one AEAD ciphertext
                    per neighbour (ChaCha20-Poly1305, associated data binding round id,
                    sender and receiver); survivors U2.
3. masked input     the coordinator forwards each participant the ciphertexts addressed to
                    it; y_u = x_u + PRG(b_u) + sum_v +-PRG(s_uv) over neighbours v in U2
                    (+ when u < v); survivors U3.
4. unmask           the coordinator tells each participant which neighbours survived; it
                    reveals, per neighbour, the share of b_u if u survived or of the mask
                    key if u dropped -- never both -- and the coordinator rebuilds them,
                    removes survivors' self-masks and dropped participants' pairwise masks.

3b. consistency check (malicious model; on when identities are known: a ``directory`` at
                    the coordinator, ``identity`` + ``directory`` at a participant): the
                    coordinator sends every member of U3 the whole list; each signs (round,
                    threshold, min_survivors, list) with its identity key; the coordinator
                    returns the signatures, and a participant reveals shares only when at
                    least ``min_survivors`` members of its list signed exactly the list it
                    signed -- a coordinator telling participants different survivor sets
                    is caught before any share is revealed.

The round aborts, revealing nothing but uniformly masked vectors, when a stage closes with
fewer than ``min_survivors`` participants or a needed secret has fewer than ``threshold``
shares. Transport: ``Coordinator.receive(sender, bytes, now)`` and
``Participant.receive(bytes, now)``; ``data_to_send()`` drains what to send; ``tick(now)``
fires deadlines. Senders are authenticated by the transport (the node's sessions).
Given a ``directory`` of participants' Ed25519 identity keys, each participant signs its
round keys and checks its neighbours' signatures, so a coordinator cannot substitute keys
of its own (the PKI assumption of SecAgg's active-adversary model); without one, the
coordinator is trusted to relay keys faithfully.
"""
from __future__ import annotations

import enum
import hashlib
import os
import random
import secrets
import struct
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from betanet._native import secagg as native
from betanet.errors import (AuthenticationError, BetanetError, ExpiredError, InvalidArgumentError,
                            MalformedError, NotFoundError, ProtocolError, ReplayError,
                            StateError, UncorrectableError)
from betanet.fl import messages as m
from betanet.fl import shamir
from betanet.fl.graph import SecAggParams, harary_neighbours

__all__ = ["Stage", "Coordinator", "Participant", "share_key", "SHARE_LABEL"]

SHARE_LABEL = b"betanet/secagg/v1/share"
ADVERTISE_LABEL = b"betanet/secagg/v1/advertise"
CHECK_LABEL = b"betanet/secagg/v1/consistency"
RandomBytes = Callable[[int], bytes]


class Stage(enum.Enum):
    ADVERTISE = "advertise"
    SHARE = "share"
    MASKED = "masked"
    CHECK = "check"
    UNMASK = "unmask"
    DONE = "done"
    ABORTED = "aborted"


def _sign(u: int, v: int) -> int:
    """How u applies the pairwise mask it shares with v."""
    return 1 if u < v else -1


def _x25519_public(sk: bytes) -> bytes:
    return X25519PrivateKey.from_private_bytes(sk).public_key().public_bytes_raw()


def share_key(cipher_sk: bytes, own_pk: bytes, peer_pk: bytes) -> bytes:
    """The AEAD key two participants share: BLAKE2b-256 keyed by their X25519 secret over
    the label and both public keys in byte order."""
    try:
        shared = X25519PrivateKey.from_private_bytes(cipher_sk).exchange(
            X25519PublicKey.from_public_bytes(peer_pk))
    except ValueError as exc:       # low-order point: all-zero shared secret
        raise MalformedError(f"bad X25519 public key: {exc}") from None
    lo, hi = sorted([own_pk, peer_pk])
    return hashlib.blake2b(SHARE_LABEL + lo + hi, digest_size=32, key=shared).digest()


def _advertised(round_id: int, sender: int, cipher_pk: bytes, mask_pk: bytes) -> bytes:
    """What a participant's identity key signs: its two round keys, bound to round and id."""
    return ADVERTISE_LABEL + struct.pack("<QI", round_id, sender) + cipher_pk + mask_pk


def _check_advertised(directory: Mapping[int, bytes], round_id: int, sender: int,
                      cipher_pk: bytes, mask_pk: bytes, signature: bytes) -> None:
    if sender not in directory:
        raise AuthenticationError(f"{sender} has no identity key in the directory")
    try:
        Ed25519PublicKey.from_public_bytes(directory[sender]).verify(
            signature, _advertised(round_id, sender, cipher_pk, mask_pk))
    except (InvalidSignature, ValueError):
        raise AuthenticationError(f"round keys of {sender} are not signed by its identity") from None


def _check_statement(round_id: int, threshold: int, min_survivors: int,
                     survivors: Iterable[int]) -> bytes:
    """What a participant signs in the consistency check: the survivor list (sorted) with
    the round's parameters, so two different views are two different statements."""
    ids = sorted(survivors)
    return (CHECK_LABEL + struct.pack("<QIII", round_id, threshold, min_survivors, len(ids))
            + b"".join(struct.pack("<I", i) for i in ids))


def _verify_sig(directory: Mapping[int, bytes], signer: int, signature: bytes, data: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(directory[signer]).verify(signature, data)
        return True
    except (InvalidSignature, ValueError, KeyError):
        return False


def _share_ad(round_id: int, sender: int, receiver: int) -> bytes:
    return SHARE_LABEL + struct.pack("<QII", round_id, sender, receiver)


def _unmask_parallel(total: np.ndarray, round_id: int, self_seeds: list[bytes],
                     pair_seeds: list[bytes], pair_signs: list[int], workers: int) -> None:
    """Subtract the masks from `total`, the vector cut into `workers` slices worked on by
    threads (the C calls release the GIL)."""
    def work(lo: int, hi: int) -> None:
        piece = total[lo:hi]
        native.mask_add_many(piece, self_seeds, [-1] * len(self_seeds), native.PURPOSE_SELF,
                             round_id, offset=lo)
        native.mask_add_many(piece, pair_seeds, pair_signs, native.PURPOSE_PAIRWISE,
                             round_id, offset=lo)

    n = total.size
    workers = max(1, min(workers, n // 65536 or 1))
    if workers == 1:
        return work(0, n)
    cuts = [n * i // workers // 16 * 16 for i in range(workers)] + [n]
    with ThreadPoolExecutor(workers) as pool:
        for f in [pool.submit(work, lo, hi) for lo, hi in zip(cuts, cuts[1:])]:
            f.result()


def _share_nonce(sender: int, receiver: int) -> bytes:
    # one key per pair and round, one message per direction: (sender, receiver) is unique
    return struct.pack("<II", sender, receiver) + bytes(4)


# ---- participant ---------------------------------------------------------------------

class Participant:
    """One client's side of a round. ``vector`` is its (already quantised) uint32 input."""

    def __init__(self, my_id: int, round_id: int, vector: np.ndarray, *, timeout: float = 60.0,
                 now: float = 0.0, random_bytes: RandomBytes = secrets.token_bytes,
                 identity: Ed25519PrivateKey | None = None,
                 directory: Mapping[int, bytes] | None = None) -> None:
        if not 0 < my_id < 2**32:
            raise InvalidArgumentError("participant ids are 1..2^32-1")
        self.id = my_id
        self.round_id = round_id
        self._x = np.ascontiguousarray(vector, dtype=np.uint32).copy()
        self._rand = random_bytes
        self._timeout = timeout
        self._deadline = now + timeout
        self._out: list[bytes] = []
        self.stage = Stage.ADVERTISE
        self.abort_reason = ""
        self._params: m.Setup | None = None
        self._cipher_sk = random_bytes(32)
        self._mask_sk = random_bytes(32)
        self._self_seed = random_bytes(32)
        self._neighbours: dict[int, tuple[bytes, bytes]] = {}   # id -> (cipher_pk, mask_pk)
        self._held: dict[int, tuple[bytes, bytes]] = {}          # sender -> (b share, sk share)
        self._seen: set[int] = set()
        self._identity = identity
        self._directory = directory
        # with identities on both sides, shares are revealed only after the consistency check
        self._check = identity is not None and directory is not None
        self._checked: tuple[int, ...] = ()

    # -- plumbing --
    def data_to_send(self) -> list[bytes]:
        out, self._out = self._out, []
        return out

    def _send(self, msg: m.Message, now: float) -> None:
        self._out.append(m.encode(msg))
        self._deadline = now + self._timeout

    def tick(self, now: float) -> None:
        if self.stage not in (Stage.DONE, Stage.ABORTED) and now >= self._deadline:
            self._abort("coordinator silent past the deadline")

    def _abort(self, reason: str) -> None:
        self.stage = Stage.ABORTED
        self.abort_reason = reason
        self._wipe()

    def _wipe(self) -> None:
        self._cipher_sk = self._mask_sk = self._self_seed = b""
        self._held.clear()
        self._x[:] = 0

    # -- protocol --
    def receive(self, data: bytes, now: float) -> None:
        msg = m.decode(data)
        if msg.round_id != self.round_id:
            raise ReplayError(f"message of round {msg.round_id} in round {self.round_id}")
        if isinstance(msg, m.Abort):
            if self.stage not in (Stage.DONE, Stage.ABORTED):
                self._abort(f"coordinator: {msg.reason}")
            return
        if msg.TYPE in self._seen:
            raise ReplayError(f"second {type(msg).__name__} in one round")
        if self.stage in (Stage.DONE, Stage.ABORTED):
            raise StateError(f"round is {self.stage.value}")
        self._seen.add(msg.TYPE)
        try:
            if isinstance(msg, m.Setup):
                self._on_setup(msg, now)
            elif isinstance(msg, m.Keys):
                self._on_keys(msg, now)
            elif isinstance(msg, m.Forward):
                self._on_forward(msg, now)
            elif isinstance(msg, m.Survivors):
                self._on_survivors(msg, now)
            elif isinstance(msg, m.CheckList):
                self._on_check_list(msg, now)
            elif isinstance(msg, m.CheckSigs):
                self._on_check_sigs(msg, now)
            else:
                raise ProtocolError(f"a participant does not accept {type(msg).__name__}")
        except BetanetError as exc:
            # a coordinator that breaks the protocol (bad keys, tampered or duplicated
            # shares, lies about survivors) gets nothing more from us
            self._abort(str(exc))
            raise

    def _expect(self, stage: Stage, msg: m.Message) -> None:
        if self.stage is not stage:
            raise ProtocolError(f"{type(msg).__name__} during stage {self.stage.value}")

    def _on_setup(self, msg: m.Setup, now: float) -> None:
        self._expect(Stage.ADVERTISE, msg)
        if msg.dim != self._x.size:
            raise ProtocolError(f"round wants {msg.dim} words, our input has {self._x.size}")
        if msg.threshold < 1 or msg.min_survivors < 2:
            raise ProtocolError("unsafe round parameters")
        self._params = msg
        cpk, mpk = _x25519_public(self._cipher_sk), _x25519_public(self._mask_sk)
        sig = (self._identity.sign(_advertised(self.round_id, self.id, cpk, mpk))
               if self._identity is not None else bytes(64))
        self._send(m.Advertise(self.round_id, cpk, mpk, sig), now)
        self.stage = Stage.SHARE

    def _on_keys(self, msg: m.Keys, now: float) -> None:
        self._expect(Stage.SHARE, msg)
        assert self._params is not None
        ids = [i for i, _, _, _ in msg.neighbours]
        if len(set(ids)) != len(ids) or self.id in ids or any(i == 0 for i in ids):
            raise ProtocolError("bad neighbour list")
        t = self._params.threshold
        if len(ids) < t:
            raise ProtocolError(f"{len(ids)} neighbours cannot hold a {t}-of-n sharing")
        if 2 * t <= len(ids):
            # else a coordinator telling half the neighbours "u dropped" and the other half
            # "u survived" collects t shares of both of u's secrets
            raise ProtocolError(f"threshold {t} is not above half of {len(ids)} neighbours")
        if self._directory is not None:     # a coordinator cannot substitute its own keys
            for i, c, k, sig in msg.neighbours:
                _check_advertised(self._directory, self.round_id, i, c, k, sig)
        self._neighbours = {i: (c, k) for i, c, k, _ in msg.neighbours}
        b_shares = shamir.split(self._self_seed, self._params.threshold, ids, self._rand)
        k_shares = shamir.split(self._mask_sk, self._params.threshold, ids, self._rand)
        own_pk = _x25519_public(self._cipher_sk)
        cts = []
        for v in ids:
            key = share_key(self._cipher_sk, own_pk, self._neighbours[v][0])
            ct = ChaCha20Poly1305(key).encrypt(_share_nonce(self.id, v), b_shares[v] + k_shares[v],
                                               _share_ad(self.round_id, self.id, v))
            cts.append((v, ct))
        self._send(m.Shares(self.round_id, tuple(cts)), now)
        self.stage = Stage.MASKED

    def _on_forward(self, msg: m.Forward, now: float) -> None:
        self._expect(Stage.MASKED, msg)
        own_pk = _x25519_public(self._cipher_sk)
        for u, ct in msg.ciphertexts:
            if u not in self._neighbours:
                raise ProtocolError(f"share from {u}, not a neighbour")
            if u in self._held:
                raise ReplayError(f"second share from {u}")
            key = share_key(self._cipher_sk, own_pk, self._neighbours[u][0])
            try:
                pt = ChaCha20Poly1305(key).decrypt(_share_nonce(u, self.id), ct,
                                                   _share_ad(self.round_id, u, self.id))
            except InvalidTag:
                raise AuthenticationError(f"share from {u} fails authentication") from None
            self._held[u] = (pt[:33], pt[33:])
        y = self._x.copy()
        native.mask_add(y, self._self_seed, native.PURPOSE_SELF, self.round_id)
        for v in self._held:        # neighbours that shared (U2): our pairwise masks
            seed = native.pair_seed(self._mask_sk, self._neighbours[v][1])
            native.mask_add(y, seed, native.PURPOSE_PAIRWISE, self.round_id, sign=_sign(self.id, v))
        self._send(m.Masked(self.round_id, y), now)
        self._x[:] = 0              # the plain input is not needed any more
        self.stage = Stage.UNMASK

    def _on_survivors(self, msg: m.Survivors, now: float) -> None:
        self._expect(Stage.UNMASK, msg)
        if self._check:
            raise ProtocolError("coordinator skipped the consistency check: refusing to unmask")
        self._reveal(set(msg.neighbours), msg.total, now)

    def _on_check_list(self, msg: m.CheckList, now: float) -> None:
        self._expect(Stage.UNMASK, msg)
        assert self._params is not None and self._identity is not None
        ids = msg.survivors
        if list(ids) != sorted(set(ids)) or self.id not in ids:
            raise ProtocolError("survivor list is not sorted, has duplicates or omits us")
        if len(ids) < self._params.min_survivors:
            raise ProtocolError(f"{len(ids)} survivors < {self._params.min_survivors}: refusing to unmask")
        self._checked = ids
        statement = _check_statement(self.round_id, self._params.threshold,
                                     self._params.min_survivors, ids)
        self._send(m.CheckSig(self.round_id, self._identity.sign(statement)), now)
        self.stage = Stage.CHECK

    def _on_check_sigs(self, msg: m.CheckSigs, now: float) -> None:
        self._expect(Stage.CHECK, msg)
        assert self._params is not None and self._directory is not None
        statement = _check_statement(self.round_id, self._params.threshold,
                                     self._params.min_survivors, self._checked)
        members = set(self._checked)
        signers = {i for i, sig in msg.signatures
                   if i in members and _verify_sig(self._directory, i, sig, statement)}
        if len(signers) < self._params.min_survivors:
            raise AuthenticationError(
                f"consistency check failed: {len(signers)} of {len(msg.signatures)} signatures are "
                f"valid for our survivor list, {self._params.min_survivors} needed")
        self._reveal(members & set(self._neighbours), len(self._checked), now)

    def _reveal(self, alive: set[int], total: int, now: float) -> None:
        assert self._params is not None
        if total < self._params.min_survivors:
            raise ProtocolError(f"{total} survivors < {self._params.min_survivors}: refusing to unmask")
        if not alive <= set(self._held):
            raise ProtocolError("survivor list names participants that never shared")
        out = []
        for u, (b_share, k_share) in sorted(self._held.items()):
            # exactly one of u's secrets, decided by whether u's masked input arrived
            out.append((u, m.KIND_SELF_SEED, b_share) if u in alive else (u, m.KIND_MASK_KEY, k_share))
        self._send(m.Unmask(self.round_id, tuple(out)), now)
        self.stage = Stage.DONE
        self._wipe()


# ---- coordinator ---------------------------------------------------------------------

class Coordinator:
    """The server's side of a round over invited participant ids. ``workers`` threads
    share the final unmasking (default: up to 4, one per CPU)."""

    def __init__(self, round_id: int, participants: Iterable[int], params: SecAggParams, *,
                 stage_timeout: float = 60.0, now: float = 0.0,
                 random_bytes: RandomBytes = secrets.token_bytes,
                 workers: int | None = None, directory: Mapping[int, bytes] | None = None) -> None:
        self.round_id = round_id
        self._directory = directory
        self._check = directory is not None           # consistency check (module docstring, 3b)
        self._check_sigs: dict[int, bytes] = {}
        self._unmask_from: set[int] = set()           # who is asked to reveal shares
        self._workers = workers or min(4, os.cpu_count() or 1)
        self.params = params
        self.invited = sorted(set(participants))
        if len(self.invited) < params.min_survivors:
            raise InvalidArgumentError(f"{len(self.invited)} participants < min_survivors {params.min_survivors}")
        if any(not 0 < i < 2**32 for i in self.invited):
            raise InvalidArgumentError("participant ids are 1..2^32-1")
        self._timeout = stage_timeout
        self._rng = random.Random(int.from_bytes(random_bytes(32), "big"))
        self._out: list[tuple[int, bytes]] = []
        self.stage = Stage.ADVERTISE
        self.abort_reason = ""
        self.result: np.ndarray | None = None
        self.survivors: list[int] = []
        self._keys: dict[int, tuple[bytes, bytes]] = {}
        self._signatures: dict[int, bytes] = {}
        self._graph: dict[int, list[int]] = {}
        self._inbox: dict[int, dict[int, bytes]] = {}            # recipient -> sender -> ct
        self._shared: set[int] = set()
        self._masked: set[int] = set()                          # U3 so far
        self._sum = np.zeros(params.dim, dtype=np.uint32)        # their masked inputs, summed on arrival
        self._unmasked: dict[int, m.Unmask] = {}
        self._deadline = now + stage_timeout
        for p in self.invited:
            self._out.append((p, m.encode(m.Setup(round_id, params.threshold, params.min_survivors,
                                                  params.dim))))

    def data_to_send(self) -> list[tuple[int, bytes]]:
        out, self._out = self._out, []
        return out

    @property
    def finished(self) -> bool:
        return self.stage in (Stage.DONE, Stage.ABORTED)

    def _abort(self, reason: str, notify: Iterable[int]) -> None:
        self.stage = Stage.ABORTED
        self.abort_reason = reason
        self._sum[:] = 0
        self._unmasked.clear()
        self._inbox.clear()
        for p in sorted(set(notify)):
            self._out.append((p, m.encode(m.Abort(self.round_id, reason))))

    def _expected(self) -> set[int]:
        return {Stage.ADVERTISE: set(self.invited), Stage.SHARE: set(self._keys),
                Stage.MASKED: self._shared, Stage.CHECK: self._masked,
                Stage.UNMASK: self._unmask_from}.get(self.stage, set())

    def _answered(self) -> set[int]:
        return {Stage.ADVERTISE: set(self._keys), Stage.SHARE: self._shared,
                Stage.MASKED: self._masked, Stage.CHECK: set(self._check_sigs),
                Stage.UNMASK: set(self._unmasked)}.get(self.stage, set())

    # -- input --
    def receive(self, sender: int, data: bytes, now: float) -> None:
        if sender not in self.invited:
            raise NotFoundError(f"{sender} is not a participant of round {self.round_id}")
        msg = m.decode(data)
        if msg.round_id != self.round_id:
            raise ReplayError(f"message of round {msg.round_id} in round {self.round_id}")
        if self.finished:
            raise StateError(f"round is {self.stage.value}")
        want = {Stage.ADVERTISE: m.Advertise, Stage.SHARE: m.Shares, Stage.MASKED: m.Masked,
                Stage.CHECK: m.CheckSig, Stage.UNMASK: m.Unmask}[self.stage]
        if not isinstance(msg, want):
            if isinstance(msg, (m.Advertise, m.Shares, m.Masked, m.CheckSig, m.Unmask)):
                raise ExpiredError(f"{type(msg).__name__} after its stage closed")
            raise ProtocolError(f"coordinator does not accept {type(msg).__name__}")
        if sender not in self._expected():
            raise ProtocolError(f"{sender} dropped out of this round earlier")
        if sender in self._answered():
            raise ReplayError(f"second {type(msg).__name__} from {sender}")
        if isinstance(msg, m.Advertise):
            if self._directory is not None:
                _check_advertised(self._directory, self.round_id, sender, msg.cipher_pk,
                                  msg.mask_pk, msg.signature)
            self._keys[sender] = (msg.cipher_pk, msg.mask_pk)
            self._signatures[sender] = msg.signature
        elif isinstance(msg, m.Shares):
            targets = [v for v, _ in msg.ciphertexts]
            if sorted(targets) != self._graph[sender]:
                raise ProtocolError(f"{sender} must send one share to each neighbour")
            for v, ct in msg.ciphertexts:
                self._inbox.setdefault(v, {})[sender] = ct
            self._shared.add(sender)
        elif isinstance(msg, m.Masked):
            if msg.vector.size != self.params.dim:
                raise ProtocolError(f"masked input of {msg.vector.size} words, want {self.params.dim}")
            native.vec_add(self._sum, msg.vector)
            self._masked.add(sender)
        elif isinstance(msg, m.CheckSig):
            assert self._directory is not None
            if not _verify_sig(self._directory, sender, msg.signature, self._statement()):
                raise AuthenticationError(f"consistency signature of {sender} does not verify")
            self._check_sigs[sender] = msg.signature
        else:
            self._check_unmask(sender, msg)
            self._unmasked[sender] = msg
        if self._expected() <= self._answered():
            self._advance(now)

    def _check_unmask(self, sender: int, msg: m.Unmask) -> None:
        owners = [u for u, _, _ in msg.shares]
        if len(set(owners)) != len(owners):
            raise ReplayError(f"{sender} sent two shares of one participant")
        for u, kind, _ in msg.shares:
            if u not in self._shared or sender not in self._graph.get(u, ()):
                raise ProtocolError(f"{sender} holds no share of {u}")
            if kind != (m.KIND_SELF_SEED if u in self._masked else m.KIND_MASK_KEY):
                raise ProtocolError(f"{sender} revealed the wrong secret of {u}")

    def _statement(self) -> bytes:
        return _check_statement(self.round_id, self.params.threshold, self.params.min_survivors,
                                self._masked)

    def tick(self, now: float) -> None:
        if not self.finished and now >= self._deadline:
            self._advance(now)

    # -- stage transitions --
    def _advance(self, now: float) -> None:
        self._deadline = now + self._timeout
        p = self.params
        if self.stage is Stage.ADVERTISE:
            u1 = sorted(self._keys)
            if len(u1) < p.min_survivors:
                return self._abort(f"{len(u1)} advertised keys < {p.min_survivors}", u1)
            self._graph = harary_neighbours(u1, p.degree, self._rng)
            if min(len(v) for v in self._graph.values()) < p.threshold:
                return self._abort("too few participants for the sharing threshold", u1)
            for u in u1:
                nb = tuple((v, *self._keys[v], self._signatures[v]) for v in self._graph[u])
                self._out.append((u, m.encode(m.Keys(self.round_id, nb))))
            self.stage = Stage.SHARE
        elif self.stage is Stage.SHARE:
            u2 = self._shared
            if len(u2) < p.min_survivors:
                return self._abort(f"{len(u2)} shared keys < {p.min_survivors}", self._keys)
            for v in sorted(u2):
                cts = tuple((u, ct) for u, ct in sorted(self._inbox.get(v, {}).items()) if u in u2)
                self._out.append((v, m.encode(m.Forward(self.round_id, cts))))
            self._inbox.clear()
            self.stage = Stage.MASKED
        elif self.stage is Stage.MASKED:
            u3 = sorted(self._masked)
            if len(u3) < p.min_survivors:
                return self._abort(f"{len(u3)} masked inputs < {p.min_survivors}", self._shared)
            if self._check:
                for v in u3:
                    self._out.append((v, m.encode(m.CheckList(self.round_id, tuple(u3)))))
                self.stage = Stage.CHECK
                return
            for v in u3:
                alive = tuple(u for u in self._graph[v] if u in self._masked)
                self._out.append((v, m.encode(m.Survivors(self.round_id, len(u3), alive))))
            self._unmask_from = set(u3)
            self.stage = Stage.UNMASK
        elif self.stage is Stage.CHECK:
            signers = sorted(self._check_sigs)
            if len(signers) < p.min_survivors:
                return self._abort(f"{len(signers)} consistency signatures < {p.min_survivors}",
                                   self._masked)
            sigs = tuple(sorted(self._check_sigs.items()))
            for v in signers:
                self._out.append((v, m.encode(m.CheckSigs(self.round_id, sigs))))
            self._unmask_from = set(signers)
            self.stage = Stage.UNMASK
        elif self.stage is Stage.UNMASK:
            self._finish()

    def _collect(self) -> tuple[dict[int, dict[int, bytes]], dict[int, dict[int, bytes]]]:
        seeds: dict[int, dict[int, bytes]] = {}
        keys: dict[int, dict[int, bytes]] = {}
        for holder, msg in self._unmasked.items():
            for u, kind, y in msg.shares:
                (seeds if kind == m.KIND_SELF_SEED else keys).setdefault(u, {})[holder] = y
        return seeds, keys

    def _finish(self) -> None:
        p = self.params
        survivors = sorted(self._masked)
        dropped = sorted(self._shared - set(self._masked))
        seed_shares, key_shares = self._collect()
        try:
            self_seeds = {u: shamir.combine(seed_shares.get(u, {}), p.threshold) for u in survivors}
            mask_keys = {u: shamir.combine(key_shares.get(u, {}), p.threshold) for u in dropped}
        except (UncorrectableError, MalformedError) as exc:
            return self._abort(f"cannot unmask: {exc}", survivors)
        for u, sk in mask_keys.items():
            if _x25519_public(sk) != self._keys[u][1]:
                return self._abort(f"shares of {u}'s mask key are wrong", survivors)
        total, self._sum = self._sum, np.zeros(0, dtype=np.uint32)
        # survivors' self-masks, and every pairwise mask a survivor v shared with a dropped
        # u (v added _sign(v, u) * PRG(s_uv)): all taken out in one blocked pass
        self_seeds_list = [self_seeds[u] for u in survivors]
        pair_seeds, pair_signs = [], []
        for u, sk in mask_keys.items():
            for v in self._graph[u]:
                if v in self._masked:
                    pair_seeds.append(native.pair_seed(sk, self._keys[v][1]))
                    pair_signs.append(-_sign(v, u))
        _unmask_parallel(total, self.round_id, self_seeds_list, pair_seeds, pair_signs, self._workers)
        self.result = total
        self.survivors = survivors
        self.stage = Stage.DONE
        self._unmasked.clear()
