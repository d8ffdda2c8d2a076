"""A thin client for Kaleyra's RCS agent API, generated from openapi.yaml, with a typed facade.

from kaleyra_rcs import KaleyraRCS, AgentNotFound

with KaleyraRCS.from_env() as rcs:         # KALEYRA_API_KEY, KALEYRA_SID, KALEYRA_POD
    testers = rcs.get_testers_by_agent("48900")
"""

from ._adapter import Tester
from ._client import DEFAULT_TIMEOUT, AsyncKaleyraRCS, DeleteAgentResult, KaleyraRCS
from ._errors import (
    AgentNotFound,
    AuthenticationError,
    ContractViolation,
    GatewayError,
    InternalServerError,
    KaleyraApiError,
    KaleyraError,
    MissingRequiredParams,
    NotKaleyra,
    RateLimited,
    RcsChannelDisabled,
    ServerError,
    TransportError,
)
from ._pods import NA_HOSTS, POD_BASE_URLS, Pod
from ._spec import SPEC_PATH, Spec, load_spec

__all__ = [
    "DEFAULT_TIMEOUT",
    "NA_HOSTS",
    "POD_BASE_URLS",
    "SPEC_PATH",
    "AgentNotFound",
    "AsyncKaleyraRCS",
    "AuthenticationError",
    "ContractViolation",
    "DeleteAgentResult",
    "GatewayError",
    "InternalServerError",
    "KaleyraApiError",
    "KaleyraError",
    "KaleyraRCS",
    "MissingRequiredParams",
    "NotKaleyra",
    "Pod",
    "RateLimited",
    "RcsChannelDisabled",
    "ServerError",
    "Spec",
    "Tester",
    "TransportError",
    "load_spec",
]
