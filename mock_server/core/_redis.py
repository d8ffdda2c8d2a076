"""The store shared by several mock replicas, on several machines: one Redis (or Valkey) server.

Every key of one mock lives under its prefix (`PREFIX:...`), so several independent mocks can
share one server and a reset touches its own keys only. What the mock promises across
processes holds across replicas, with what Redis gives:

- one version key, `PREFIX:ver`, bumped inside the same script or MULTI as every change. What a
  replica read is kept under the version it read it at. A journalled request is decided on what
  the replica kept, with no round trip first, and its journal entry (or its delete, or its
  consume) is a script that first checks that the version is still the one decided on; when it
  moved, nothing is written (`StaleRead`) and the engine decides again after one MGET of the
  version and the control generation. So a change made anywhere is seen by the next request
  everywhere, and a GET on unchanged state costs one round trip. A request that is not
  journalled asks for the version first (`control()`), as every request does once a second;
- one success of N concurrent deletes: the check and the delete (or the tombstone) are one Lua
  script; a scenario armed for N is taken N times by one script too;
- the journal is a bounded list written (LPUSH + LTRIM, in one script) before the answer leaves;
- a prefix that has no state (a Redis restarted empty) is filled again from the seed the store
  read when it opened, once, whoever gets there first.

Redis down or unreachable: every call raises `StoreUnavailable` within the socket timeouts (1 s
by default), and the next call tries again, so the mock recovers by itself. The `redis` client is
imported when a store is made, never when `mock_server.core` is.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

from ._spec import encode_json
from ._state import AccountData, StateData
from ._store import (
    DEFAULT_JOURNAL_LIMIT,
    AccountInfo,
    Armed,
    ArmedKind,
    Control,
    StaleRead,
    StoreUnavailable,
    filter_journal,
    standing_armed,
    template_agent,
    unlisted_account,
)

__all__ = ["DEFAULT_PREFIX", "SCHEMES", "RedisStore", "redis_url_parts"]

T = TypeVar("T")

DEFAULT_PREFIX = "kaleyra-mock"
# The URL schemes of a Redis (or Valkey) server: valkey:// is an alias of redis://, valkeys:// of rediss://.
SCHEMES = ("redis", "rediss", "valkey", "valkeys")
_CACHE_LIMIT = 4096  # look-ups kept under one version; more, and the cache starts over
_MISSING: Any = object()
_HEARTBEAT_S = 1.0  # how often a replica says it is alive
_SEEN_S = 10.0  # a replica is listed in health while its last heartbeat is this recent
_FORGET_S = 60.0
_MUTATE_TRIES = 1000

EXTRA_HINT = "pip install 'kaleyra-rcs-harness[redis]'"

# A listed account: HEXISTS accounts; then the row delete. Else the template must have the agent
# (a set kept beside the default account), and the tombstone is new. Either way the version moves,
# and the new version is the answer (0: nothing deleted). ARGV[4], when given, is the version an
# optimistic request decided on: -1, and nothing done, when the state has moved on since.
_DELETE = """
if ARGV[4] ~= '' and redis.call('GET', KEYS[5]) ~= ARGV[4] then return -1 end
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  if redis.call('HDEL', KEYS[2], ARGV[2]) == 1 then return redis.call('INCR', KEYS[5]) end
  return 0
end
if redis.call('SISMEMBER', KEYS[3], ARGV[3]) == 0 then return 0 end
if redis.call('SADD', KEYS[4], ARGV[2]) == 1 then return redis.call('INCR', KEYS[5]) end
return 0
"""

# One use of an armed item with a count: taken only while some is left; the last one disarms it.
# The answer as _DELETE's (the new version, 0, or -1 for an optimistic request on an old state).
_CONSUME = """
if ARGV[2] ~= '' and redis.call('GET', KEYS[4]) ~= ARGV[2] then return -1 end
local left = tonumber(redis.call('HGET', KEYS[2], ARGV[1]))
if not left or left <= 0 then return 0 end
if left <= 1 then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
else
  redis.call('HINCRBY', KEYS[2], ARGV[1], -1)
end
redis.call('INCR', KEYS[3])
return redis.call('INCR', KEYS[4])
"""

# What a testers look-up needs, in one reply: listed?, the listed agent's testers, a tombstone?
_TESTERS = """
-- (false, not nil, for a missing agent: a nil would end the Lua table there)
return {redis.call('HEXISTS', KEYS[1], ARGV[1]), redis.call('HGET', KEYS[2], ARGV[2]) or false,
        redis.call('SISMEMBER', KEYS[3], ARGV[2])}
"""

# Disarm every item of a kind (ARGV[2] == '') or one id; the count of those removed.
_DISARM = """
local removed = 0
if ARGV[2] ~= '' then
  local doc = redis.call('HGET', KEYS[1], ARGV[2])
  if doc and cjson.decode(doc)['kind'] == ARGV[1] then
    redis.call('HDEL', KEYS[1], ARGV[2]); redis.call('HDEL', KEYS[2], ARGV[2]); removed = 1
  end
else
  local all = redis.call('HGETALL', KEYS[1])
  for i = 1, #all, 2 do
    if cjson.decode(all[i + 1])['kind'] == ARGV[1] then
      redis.call('HDEL', KEYS[1], all[i]); redis.call('HDEL', KEYS[2], all[i]); removed = removed + 1
    end
  end
end
if removed > 0 then redis.call('INCR', KEYS[3]); redis.call('INCR', KEYS[4]) end
return removed
"""

# The entry's id is the journal's own counter; the list keeps the newest ARGV[2] entries. ARGV[3]:
# as _DELETE's ARGV[4], the end of an optimistic request (-1: not journalled, decide again).
_RECORD = """
if ARGV[3] ~= '' and redis.call('GET', KEYS[3]) ~= ARGV[3] then return -1 end
local id = redis.call('INCR', KEYS[2])
redis.call('LPUSH', KEYS[1], id .. ' ' .. ARGV[1])
redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[2]) - 1)
return id
"""


def redis_url_parts(url: str, prefix: str | None = None) -> tuple[str, str]:
    """The URL the client connects to (without `?prefix=`), and the key prefix: `prefix` when
    given, else the URL's `?prefix=NAME`, else `kaleyra-mock`. ValueError for a bad URL."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES or not parts.hostname:
        raise ValueError("a Redis store is redis://HOST:PORT/DB (or rediss://, valkey://)")
    try:
        parts.port  # noqa: B018 - a port that is no number raises here
    except ValueError:
        raise ValueError("the Redis URL's port is not a number from 0 to 65535") from None
    path = parts.path.strip("/")
    if path and not path.isdigit():
        raise ValueError("the Redis URL's path is a database number: redis://HOST:PORT/0")
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - {"prefix"})
    if unknown:
        raise ValueError(f"the Redis URL takes only ?prefix=NAME (not {', '.join(unknown)})")
    named = query.get("prefix", [None])[-1]
    chosen = prefix if prefix is not None else (named or DEFAULT_PREFIX)
    if not chosen or any(c.isspace() for c in chosen):
        raise ValueError("a store prefix is a non-empty name without spaces")
    scheme = {"valkey": "redis", "valkeys": "rediss"}.get(parts.scheme, parts.scheme)
    return parts._replace(scheme=scheme, query="").geturl(), chosen


def shown_url(url: str) -> str:
    """A Redis URL as health and the banner show it: never a user or password."""
    parts = urlsplit(url)
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


def _field(*parts: str) -> str:
    """A hash field or set member naming (pod, sid[, agent]): JSON, so no SID can collide."""
    return json.dumps(parts, ensure_ascii=False, separators=(",", ":"))


class RedisStore:
    kind = "redis"

    def __init__(
        self,
        url: str,
        journal_limit: int = DEFAULT_JOURNAL_LIMIT,
        *,
        prefix: str | None = None,
        seed: StateData | None = None,
        replica: str | None = None,
        timeout: float = 1.0,
    ) -> None:
        """Connects (lazily: the first call reaches the server). A `seed` fills a prefix that has
        none yet. `replica` names this process in health (host:port; the pid is added)."""
        try:
            import redis
            from redis.backoff import NoBackoff
            from redis.retry import Retry
        except ModuleNotFoundError as exc:
            raise ModuleNotFoundError(f"the Redis store needs the redis client: {EXTRA_HINT}") from exc
        # Any error of the server or the link (refused, timed out, a reply that is no Redis reply, a
        # server that refuses writes): the store is unavailable. WatchError is handled where it arises.
        self._redis_errors: tuple[type[BaseException], ...] = (redis.RedisError,)
        self._connection_error = redis.ConnectionError
        self._no_script = redis.exceptions.NoScriptError
        self._no_retry = Retry(NoBackoff(), 0)  # the hot path's connections: _call retries itself
        self._watch_error = redis.WatchError
        client_url, self.prefix = redis_url_parts(url, prefix)
        self.url = shown_url(client_url)
        self.journal_limit = journal_limit
        # One retry, on a connection found closed (a Redis restarted since it was opened): the
        # command never reached the new server. A timeout is never retried.
        self._client: Any = redis.Redis.from_url(
            client_url,
            socket_connect_timeout=timeout,
            socket_timeout=timeout,
            retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
            health_check_interval=0,
            decode_responses=False,
        )
        p = self.prefix
        self._k = {
            name: f"{p}:{name}"
            for name in (
                "ver",  # every change
                "gen",  # what Control holds: armed items, the template, magic agents
                "meta",  # default_account, magic_agents, seed, standing_faults
                "accounts",  # (pod, sid) -> {rcs_enabled, key_hashes}
                "agents",  # (pod, sid, agent) -> testers of a listed account
                "deleted",  # tombstones of the any-SID template: (pod, sid, agent)
                "template",  # the template's agent numbers
                "keys",  # (pod, key hash) -> the first listed SID with it
                "armed",  # id -> the armed item
                "remaining",  # id -> uses left (items with a count only)
                "armed_id",
                "journal",
                "journal_id",
                "positions",  # replay: key -> next position
                "replicas",  # replica id -> last heartbeat (a sorted set, by time)
            )
        }
        self._state_keys = [self._k[n] for n in ("accounts", "agents", "deleted", "template", "keys")]
        self._delete = _Script(_DELETE)
        self._consume = _Script(_CONSUME)
        self._disarm = self._client.register_script(_DISARM)
        self._record = _Script(_RECORD)
        self._testers = _Script(_TESTERS)
        self._links = threading.local()  # this thread's own connection, for the hot path
        self.replica = f"{replica or socket.gethostname()}:{os.getpid()}"
        self._local = threading.local()  # the version this thread's request saw
        self._reads: tuple[int, dict[tuple[str, ...], Any]] = (-1, {})  # (version, look-ups)
        self._control: Control | None = None  # the last one read, reused while `gen` holds
        self._beat = 0.0
        self._refill: tuple[bytes, list[dict[str, Any]]] | None = None  # the seed and standing faults, once read
        self.error: str | None = None  # why the last call failed, until one succeeds
        if seed is not None:
            with self._guard():
                if not self.is_initialized():
                    self.set_seed(seed)
                    self.load(seed)

    # -- failures ---------------------------------------------------------------------

    @contextmanager
    def _guard(self, writes: bool = False) -> Iterator[None]:
        """Redis errors of the connection kind become StoreUnavailable, naming the server. After
        a write (done or not) nothing this process kept is used again: the next read asks Redis."""
        try:
            yield
        except self._redis_errors as exc:
            self.error = f"{type(exc).__name__}: {exc}"[:300]
            raise StoreUnavailable(f"Redis at {self.url} (prefix {self.prefix}): {self.error}") from None
        except BaseException:
            self._local.pending = None
            raise
        finally:
            if writes:
                self._reads = (-1, {})
                self._control = None

    # -- the hot path's own connection ------------------------------------------------------

    # redis-py's command machinery (pool, retry, response callbacks) cost about 100 µs a command on
    # this 2-core machine against 54 µs for the same MGET sent on a connection directly: the calls
    # every request makes (the version, the journal, a delete, a consume) go on this thread's own.

    def _link(self) -> Any:
        conn = getattr(self._links, "conn", None)
        if conn is None or getattr(self._links, "pid", None) != os.getpid():
            pool = self._client.connection_pool
            conn = pool.connection_class(**{**pool.connection_kwargs, "retry": self._no_retry})
            self._links.conn, self._links.pid = conn, os.getpid()
        return conn

    def _call(self, *args: Any) -> Any:
        """One command on this thread's connection. A connection found closed (Redis restarted) is
        opened again once: the command never reached the new server. A timeout is never retried."""
        conn = self._link()
        for attempt in (1, 2):
            try:
                conn.send_command(*args, check_health=False)
                return conn.read_response()
            except self._connection_error:
                conn.disconnect()
                if attempt == 2:
                    raise
            except BaseException:
                conn.disconnect()  # a timeout, an interrupt: what the server sends later is not ours
                raise
        raise AssertionError("unreachable")

    def _run(self, script: _Script, keys: list[str], args: list[Any]) -> Any:
        try:
            return self._call("EVALSHA", script.sha, len(keys), *keys, *args)
        except self._no_script:  # a Redis restarted since: the script again, by its text
            return self._call("EVAL", script.text, len(keys), *keys, *args)

    def close(self) -> None:
        conn = getattr(self._links, "conn", None)
        if conn is not None:
            conn.disconnect()
        self._client.close()

    # -- set-up ---------------------------------------------------------------------------

    def is_initialized(self) -> bool:
        with self._guard():
            return bool(self._client.hexists(self._k["meta"], "seed"))

    def set_seed(self, seed: StateData) -> None:
        doc = json.dumps(seed.to_document())
        with self._guard():
            self._client.hset(self._k["meta"], "seed", doc)
        self._refill = None

    def _kept_refill(self) -> tuple[bytes, list[dict[str, Any]]] | None:
        """The seed and the standing faults, read once: what fills a prefix found empty."""
        if self._refill is None:
            seed, standing = self._client.hmget(self._k["meta"], ["seed", "standing_faults"])
            if seed is None:
                return None
            self._refill = (seed, json.loads(standing) if standing else [])
        return self._refill

    def _fill_again(self) -> None:
        """The prefix has no version: Redis lost it (a restart without persistence, a FLUSHDB).
        Back to the seed, as after a reset, by whoever gets there first (WATCH on the version)."""
        refill = self._refill
        if refill is None:
            return  # never seeded: nothing to go back to (every request answers 401, as a new file)
        seed_doc, standing = refill
        rows = _state_rows(StateData.from_document(json.loads(seed_doc), None))
        with self._client.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(self._k["ver"])
                if pipe.exists(self._k["ver"]):
                    return
                pipe.multi()
                pipe.hset(self._k["meta"], mapping={"seed": seed_doc, "standing_faults": json.dumps(standing)})
                self._queue_state(pipe, rows)
                self._queue_standing(pipe, standing, int(self._client.incrby(self._k["armed_id"], len(standing))))
                pipe.execute()
            except self._watch_error:
                return  # another replica filled it

    # -- the hot path -----------------------------------------------------------------------

    def _keep(self, key: tuple[str, ...], value: Any) -> None:
        """Kept only under the version this thread's request began with, and only while that is
        still the newest one seen: nothing read before a change is kept after it."""
        version, reads = self._reads
        if version != getattr(self._local, "seen", None):
            return
        if len(reads) >= _CACHE_LIMIT:
            self._reads = (version, {})
            return
        reads[key] = value

    def control(self, *, optimistic: bool = False) -> Control:
        """One MGET of the version and the generation (beside a heartbeat once a second). Optimistic:
        no round trip while this process keeps a state and its Control, and the version it rests
        on is what this request's writes and journal entry check (`StaleRead` when it moved)."""
        local = self._local
        local.pending = None
        if optimistic:
            version = self._reads[0]
            kept = self._control
            if version >= 0 and kept is not None and time.monotonic() - self._beat < _HEARTBEAT_S:
                local.seen = local.pending = version
                return kept
        with self._guard():
            now = time.monotonic()
            if now - self._beat >= _HEARTBEAT_S:
                self._beat = now
                wall = time.time()
                pipe = self._client.pipeline(transaction=False)
                pipe.mget(self._k["ver"], self._k["gen"])
                pipe.zadd(self._k["replicas"], {self.replica: wall})
                pipe.zremrangebyscore(self._k["replicas"], "-inf", wall - _FORGET_S)
                if self._refill is None:
                    pipe.hmget(self._k["meta"], ["seed", "standing_faults"])
                got = pipe.execute()
                ver, gen = got[0]
                if self._refill is None and got[3][0] is not None:
                    seed, standing = got[3]
                    self._refill = (seed, json.loads(standing) if standing else [])
            else:
                ver, gen = self._call("MGET", self._k["ver"], self._k["gen"])
            if ver is None and self._kept_refill() is not None:
                self._fill_again()
                self._control = None
                ver, gen = self._call("MGET", self._k["ver"], self._k["gen"])
            self.error = None
            version = int(ver or 0)
            self._local.seen = version
            if self._reads[0] != version:
                self._reads = (version, {})
            kept = self._control
            if kept is not None and kept.generation == int(gen or 0):
                return kept
            control = self._read_control()
            if self._control is None or control.generation >= self._control.generation:
                self._control = control  # never an older one over a newer (two threads reading at once)
            return control

    def _read_control(self) -> Control:
        pipe = self._client.pipeline(transaction=True)
        pipe.get(self._k["gen"])
        pipe.hmget(self._k["meta"], ["default_account", "magic_agents"])
        pipe.hgetall(self._k["armed"])
        pipe.hgetall(self._k["remaining"])
        gen, (default, magic), armed_docs, remaining = pipe.execute()
        armed = sorted(
            (_armed_from_doc(int(i), json.loads(doc), remaining.get(i)) for i, doc in armed_docs.items()),
            key=lambda a: a.id,
        )
        default_doc = json.loads(default) if default else None
        return Control(
            generation=int(gen or 0),
            magic_agents=json.loads(magic) if magic else {},
            default_account=None if default_doc is None else AccountData.from_document(default_doc),
            scenarios=tuple(a for a in armed if a.kind == "scenario"),
            faults=tuple(a for a in armed if a.kind == "fault"),
        )

    def _kept_control(self) -> Control:
        return self._control if self._control is not None else self.control()

    def account(self, pod: str, sid: str) -> AccountInfo | None:
        kept = self._reads[1].get(("account", pod, sid), _MISSING)
        if kept is _MISSING:
            with self._guard():
                raw = self._call("HGET", self._k["accounts"], _field(pod, sid))
            if raw is not None:
                doc = json.loads(raw)
                kept = AccountInfo(sid, True, bool(doc["rcs_enabled"]), frozenset(doc["key_hashes"]))
            else:
                kept = unlisted_account(sid, self._kept_control().default_account)
            self._keep(("account", pod, sid), kept)
        return kept  # type: ignore[no-any-return]

    def account_for_key(self, pod: str, key_hash: str) -> str | None:
        kept = self._reads[1].get(("key", pod, key_hash), _MISSING)
        if kept is _MISSING:
            with self._guard():
                raw = self._call("HGET", self._k["keys"], _field(pod, key_hash))
            kept = None if raw is None else raw.decode()
            self._keep(("key", pod, key_hash), kept)
        return kept  # type: ignore[no-any-return]

    def testers(self, pod: str, sid: str, agent: str) -> list[dict[str, Any]] | None:
        return self._read_testers(pod, sid, agent)

    def testers_body(self, pod: str, sid: str, agent: str) -> bytes | None:
        kept = self._reads[1].get(("body", pod, sid, agent), _MISSING)
        if kept is _MISSING:
            found = self._read_testers(pod, sid, agent)
            kept = None if found is None else encode_json(found)
            self._keep(("body", pod, sid, agent), kept)
        return kept  # type: ignore[no-any-return]

    def _read_testers(self, pod: str, sid: str, agent: str) -> list[dict[str, Any]] | None:
        k = self._k
        with self._guard():
            listed, testers, deleted = self._run(
                self._testers, [k["accounts"], k["agents"], k["deleted"]], [_field(pod, sid), _field(pod, sid, agent)]
            )
        if listed:
            return None if testers is None else list(json.loads(testers))
        found = template_agent(self._kept_control().default_account, agent)
        if found is None or deleted:
            return None
        return [dict(t) for t in found]

    def _pending(self) -> str:
        pending = getattr(self._local, "pending", None)
        return "" if pending is None else str(pending)

    def _settled(self, answer: int) -> bool:
        """A write script's answer: the new version (done), 0 (nothing to do) or -1 (stale). A write
        done on the checked version settles the request there (it came after the request did): what
        follows is never checked again, so a decision that wrote is never made twice."""
        if answer == -1:
            self._local.pending = None
            raise StaleRead
        if answer > 0:
            self._local.pending = None
        return answer > 0

    def delete_agent(self, pod: str, sid: str, agent: str) -> bool:
        k = self._k
        pending = self._pending()
        done = -2  # not known: what was kept is dropped
        try:
            with self._guard():
                done = int(
                    self._run(
                        self._delete,
                        [k["accounts"], k["agents"], k["template"], k["deleted"], k["ver"]],
                        [_field(pod, sid), _field(pod, sid, agent), agent, pending],
                    )
                )
        finally:
            if done > 0:
                # Checked: the state went from the version decided on to this one by this delete
                # alone, which changes nothing Control holds, so the next request may go on from
                # here (with no look-up kept). Unchecked: the next request asks first.
                self._reads = (done, {}) if pending else (-1, {})
            elif done == -2:
                self._reads = (-1, {})
        return self._settled(done)

    def consume(self, armed: Armed) -> bool:
        k = self._k
        if armed.remaining is None:  # still armed? a snapshot may predate a disarm (a read: checked at the end)
            with self._guard():
                return bool(self._call("HEXISTS", k["armed"], str(armed.id)))
        with self._guard(writes=True):
            answer = self._run(
                self._consume, [k["armed"], k["remaining"], k["gen"], k["ver"]], [armed.id, self._pending()]
            )
        return self._settled(int(answer))

    def next_position(self, key: str) -> int:
        with self._guard():
            return int(self._client.hincrby(self._k["positions"], key, 1)) - 1

    def record(self, entry: dict[str, Any], *, checked: bool = False) -> None:
        doc = json.dumps(entry, separators=(",", ":"))
        pending = self._pending() if checked else ""
        self._local.pending = None
        k = self._k
        with self._guard():
            answer = self._run(
                self._record, [k["journal"], k["journal_id"], k["ver"]], [doc, self.journal_limit, pending]
            )
        if int(answer) == -1:
            raise StaleRead

    # -- the control plane ---------------------------------------------------------------------

    def arm(self, armed: Armed) -> Armed:
        with self._guard(writes=True):
            stored = replace(armed, id=int(self._client.incr(self._k["armed_id"])), params=dict(armed.params))
            pipe = self._client.pipeline(transaction=True)
            self._queue_arm(pipe, stored)
            self._queue_bump(pipe)
            pipe.execute()
        return stored

    def _queue_arm(self, pipe: Any, armed: Armed) -> None:
        pipe.hset(self._k["armed"], str(armed.id), json.dumps(_armed_doc(armed)))
        if armed.remaining is not None:
            pipe.hset(self._k["remaining"], str(armed.id), armed.remaining)

    def disarm(self, kind: ArmedKind, armed_id: int | None) -> int:
        k = self._k
        with self._guard(writes=True):
            removed = self._disarm(
                keys=[k["armed"], k["remaining"], k["gen"], k["ver"]],
                args=[kind, "" if armed_id is None else str(armed_id)],
            )
        return int(removed)

    def set_standing_faults(self, faults: Sequence[Armed]) -> None:
        doc = [{"name": f.name, "params": dict(f.params)} for f in standing_armed(faults)]
        with self._guard(writes=True):
            first = int(self._client.incrby(self._k["armed_id"], len(doc)))
            pipe = self._client.pipeline(transaction=True)
            pipe.hset(self._k["meta"], "standing_faults", json.dumps(doc))
            self._queue_standing(pipe, doc, first)
            pipe.execute()
        self._refill = None

    def _queue_standing(self, pipe: Any, standing: list[dict[str, Any]], last_id: int) -> None:
        """Arms the standing faults with the ids last_id-n+1 .. last_id (taken before the MULTI)."""
        for n, fault in enumerate(standing):
            armed = Armed(last_id - len(standing) + 1 + n, "fault", fault["name"], None, params=fault["params"])
            self._queue_arm(pipe, armed)
        self._queue_bump(pipe)

    def _queue_bump(self, pipe: Any) -> None:
        """The generation and the version move. A prefix that has none starts them at the time in
        ms: a version never comes back (after a Redis restart) to a number some replica keeps reads under."""
        start = int(time.time() * 1000)
        for name in ("gen", "ver"):
            pipe.set(self._k[name], start, nx=True)
            pipe.incr(self._k[name])

    def journal(
        self, *, pod: str | None, operation: str | None, status: int | None, limit: int
    ) -> list[dict[str, Any]]:
        with self._guard():
            raw = self._client.lrange(self._k["journal"], 0, self.journal_limit - 1)
        entries = []
        for item in reversed(raw):  # oldest first, as filter_journal takes them
            entry_id, _, doc = item.partition(b" ")
            entries.append({**json.loads(doc), "id": int(entry_id)})
        return filter_journal(entries, pod=pod, operation=operation, status=status, limit=limit)

    def clear_journal(self) -> None:
        with self._guard():
            self._client.delete(self._k["journal"])

    def dump(self) -> StateData:
        with self._guard():
            pipe = self._client.pipeline(transaction=True)
            self._queue_read_state(pipe)
            return _state_from(pipe.execute())

    def _queue_read_state(self, pipe: Any) -> None:
        pipe.hmget(self._k["meta"], ["default_account", "magic_agents"])
        pipe.hgetall(self._k["accounts"])
        pipe.hgetall(self._k["agents"])
        pipe.smembers(self._k["deleted"])

    def load(self, state: StateData) -> None:
        rows = _state_rows(state)  # encoded before the MULTI
        with self._guard(writes=True):
            pipe = self._client.pipeline(transaction=True)
            self._queue_state(pipe, rows)
            pipe.execute()

    def _queue_state(self, pipe: Any, rows: _StateRows) -> None:
        """The whole state replaced, in the caller's MULTI; the generation and version move."""
        pipe.delete(*self._state_keys)
        pipe.hset(self._k["meta"], mapping=rows.meta)
        for key, mapping in (("accounts", rows.accounts), ("agents", rows.agents), ("keys", rows.keys)):
            if mapping:
                pipe.hset(self._k[key], mapping=mapping)
        if rows.deleted:
            pipe.sadd(self._k["deleted"], *rows.deleted)
        if rows.template:
            pipe.sadd(self._k["template"], *rows.template)
        self._queue_bump(pipe)

    def mutate(self, fn: Callable[[StateData], T]) -> T:
        """Optimistic: read under WATCH of the version, change the draft, write in a MULTI; again
        when any change came between (every change moves the version)."""
        with self._guard(writes=True):
            for _ in range(_MUTATE_TRIES):
                with self._client.pipeline(transaction=True) as pipe:
                    try:
                        pipe.watch(self._k["ver"])
                        reader = pipe  # immediate mode after WATCH: each call answers now
                        draft = _state_from(
                            [
                                reader.hmget(self._k["meta"], ["default_account", "magic_agents"]),
                                reader.hgetall(self._k["accounts"]),
                                reader.hgetall(self._k["agents"]),
                                reader.smembers(self._k["deleted"]),
                            ]
                        )
                        result = fn(draft)
                        rows = _state_rows(draft)
                        pipe.multi()
                        self._queue_state(pipe, rows)
                        pipe.execute()
                        return result
                    except self._watch_error:
                        continue
            raise StoreUnavailable(f"Redis at {self.url}: the state kept changing during {_MUTATE_TRIES} tries")

    def reset(self) -> None:
        with self._guard(writes=True):
            self._refill = None  # the seed as Redis has it now: another replica may have set one since
            refill = self._kept_refill()
            seed = StateData() if refill is None else StateData.from_document(json.loads(refill[0]), None)
            standing = [] if refill is None else refill[1]
            rows = _state_rows(seed)
            first = int(self._client.incrby(self._k["armed_id"], len(standing)))
            pipe = self._client.pipeline(transaction=True)
            self._queue_state(pipe, rows)
            pipe.delete(self._k["armed"], self._k["remaining"], self._k["positions"], self._k["journal"])
            self._queue_standing(pipe, standing, first)
            pipe.execute()

    # -- health -----------------------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """The server (no password), the prefix, and the replicas that said they were alive
        within the last 10 s (host:port:pid, one per worker process)."""
        with self._guard():
            seen = self._client.zrangebyscore(self._k["replicas"], time.time() - _SEEN_S, "+inf", withscores=True)
        now = time.time()
        return {
            "url": self.url,
            "prefix": self.prefix,
            "replicas": [{"id": r.decode(), "seen_s_ago": round(max(0.0, now - t), 3)} for r, t in seen],
        }


class _Script:
    def __init__(self, text: str) -> None:
        self.text = text
        self.sha = hashlib.sha1(text.encode()).hexdigest()  # noqa: S324 - Redis names scripts by SHA-1


# -- rows ----------------------------------------------------------------------------------------


class _StateRows:
    """A state as the hashes and sets it is kept in, encoded and ready to write."""

    def __init__(self, state: StateData) -> None:
        default = state.default_account
        self.meta = {
            "default_account": json.dumps(None if default is None else default.to_document()),
            "magic_agents": json.dumps(state.magic_agents),
        }
        self.accounts = {
            _field(pod, sid): json.dumps({"rcs_enabled": acc.rcs_enabled, "key_hashes": sorted(acc.key_hashes)})
            for (pod, sid), acc in state.accounts.items()
        }
        self.agents = {
            _field(pod, sid, agent): json.dumps(testers)
            for (pod, sid), acc in state.accounts.items()
            for agent, testers in acc.agents.items()
        }
        keys: dict[str, str] = {}
        for (pod, sid), acc in sorted(state.accounts.items()):  # the first SID in order wins
            for key_hash in acc.key_hashes:
                keys.setdefault(_field(pod, key_hash), sid)
        self.keys = keys
        self.deleted = [_field(*t) for t in sorted(state.deleted_default)]
        self.template = sorted(default.agents) if default is not None else []


def _state_rows(state: StateData) -> _StateRows:
    return _StateRows(state)


def _state_from(got: list[Any]) -> StateData:
    (default, magic), accounts, agents, deleted = got
    default_doc = json.loads(default) if default else None
    state = StateData(
        default_account=None if default_doc is None else AccountData.from_document(default_doc),
        magic_agents=json.loads(magic) if magic else {},
    )
    for name, doc in accounts.items():
        pod, sid = json.loads(name)
        info = json.loads(doc)
        state.accounts[(pod, sid)] = AccountData(bool(info["rcs_enabled"]), frozenset(info["key_hashes"]), {})
    for name, testers in agents.items():
        pod, sid, agent = json.loads(name)
        account = state.accounts.get((pod, sid))
        if account is not None:
            account.agents[agent] = json.loads(testers)
    state.deleted_default = {_triple(json.loads(m)) for m in deleted}
    return state


def _triple(parts: list[str]) -> tuple[str, str, str]:
    pod, sid, agent = parts
    return (pod, sid, agent)


def _armed_doc(armed: Armed) -> dict[str, Any]:
    return {
        "kind": armed.kind,
        "name": armed.name,
        "limited": armed.remaining is not None,
        "pod": armed.pod,
        "sid": armed.sid,
        "operation": armed.operation,
        "agent_number": armed.agent_number,
        "params": dict(armed.params),
    }


def _armed_from_doc(armed_id: int, doc: dict[str, Any], remaining: bytes | None) -> Armed:
    left = None if not doc["limited"] else int(remaining or 0)
    return Armed(
        armed_id,
        doc["kind"],
        doc["name"],
        left,
        doc["pod"],
        doc["sid"],
        doc["operation"],
        doc["agent_number"],
        doc["params"],
    )
