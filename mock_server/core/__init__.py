"""The mock's pure core: no Flask, no werkzeug, no sockets.

Everything here can be driven from a unit test with plain values; `mock_server.web`
only turns HTTP into `ApiRequest` and `ApiResponse` back into HTTP.
"""

from ._calibrate import OBSERVED_SOURCE, PROBE_EXAMPLES, Calibration, Observed, calibrate, load_observations
from ._cassette import (
    CASSETTE_VERSION,
    DEFAULT_CASSETTE_LIMIT,
    HOP_BY_HOP,
    REQUEST_HEADERS,
    Cassette,
    CassetteError,
    Exchange,
    RecordedRequest,
    RecordedResponse,
    Violation,
    decoded_body,
    exchanges_of,
    mask,
    now_iso,
    read_cassette,
    recorded_headers,
)
from ._catalog import Scenario, scenario_table, scenarios
from ._control import CONTROL_SPEC_PATH, ControlError, ControlPlane
from ._engine import FAULT_KINDS, ApiRequest, ApiResponse, Engine, MockConfig, is_json_media_type, mock_error_body
from ._json import INVALID_JSON, MAX_DEPTH, strict_json, too_deep
from ._open import open_store, sqlite_url, store_path
from ._pods import PODS, Pod, pod_from_host, resolve_pod
from ._redis import RedisStore
from ._replay import REPLAY_SOURCE, Replayer, ReplayIndex, replay_response, upstream_path
from ._schema import Schema
from ._spec import SPEC_PATH, Example, Operation, Router, SpecIndex, encode_json, load_yaml
from ._sqlite import SqliteStore
from ._state import (
    AccountData,
    StateData,
    StateError,
    default_seed_document,
    hash_key,
    key_fingerprint,
    merge_seed,
    state_validator,
)
from ._store import (
    DEFAULT_JOURNAL_LIMIT,
    AccountInfo,
    Armed,
    Control,
    MemoryStore,
    StaleRead,
    Store,
    StoreUnavailable,
    journal_entry,
)
from ._verdict import Contracts, Judge, Verdict

__all__ = [
    "CASSETTE_VERSION",
    "CONTROL_SPEC_PATH",
    "DEFAULT_CASSETTE_LIMIT",
    "DEFAULT_JOURNAL_LIMIT",
    "FAULT_KINDS",
    "HOP_BY_HOP",
    "INVALID_JSON",
    "MAX_DEPTH",
    "PODS",
    "OBSERVED_SOURCE",
    "PROBE_EXAMPLES",
    "REPLAY_SOURCE",
    "REQUEST_HEADERS",
    "SPEC_PATH",
    "Schema",
    "AccountData",
    "AccountInfo",
    "ApiRequest",
    "ApiResponse",
    "Armed",
    "Cassette",
    "Calibration",
    "CassetteError",
    "Contracts",
    "Control",
    "ControlError",
    "ControlPlane",
    "Engine",
    "Example",
    "Exchange",
    "Judge",
    "MemoryStore",
    "MockConfig",
    "Observed",
    "Operation",
    "Pod",
    "RecordedRequest",
    "RecordedResponse",
    "ReplayIndex",
    "Replayer",
    "Router",
    "Scenario",
    "SpecIndex",
    "SqliteStore",
    "StateData",
    "StateError",
    "RedisStore",
    "StaleRead",
    "Store",
    "StoreUnavailable",
    "Verdict",
    "Violation",
    "calibrate",
    "decoded_body",
    "default_seed_document",
    "encode_json",
    "exchanges_of",
    "hash_key",
    "is_json_media_type",
    "journal_entry",
    "key_fingerprint",
    "load_observations",
    "load_yaml",
    "mask",
    "merge_seed",
    "mock_error_body",
    "now_iso",
    "open_store",
    "pod_from_host",
    "read_cassette",
    "recorded_headers",
    "replay_response",
    "resolve_pod",
    "scenario_table",
    "scenarios",
    "sqlite_url",
    "state_validator",
    "store_path",
    "strict_json",
    "too_deep",
    "upstream_path",
]
