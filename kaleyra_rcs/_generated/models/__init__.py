"""Contains all the data models used in inputs/outputs"""

from .delete_agent_response import DeleteAgentResponse
from .delete_agent_response_data import DeleteAgentResponseData
from .delete_agent_response_error import DeleteAgentResponseError
from .error_detail import ErrorDetail
from .error_response import ErrorResponse
from .error_response_data import ErrorResponseData
from .post_testers_by_agent_body import PostTestersByAgentBody
from .post_testers_by_agent_tester_body import PostTestersByAgentTesterBody
from .post_testers_by_agent_wsgw_body import PostTestersByAgentWsgwBody
from .tester import Tester

__all__ = (
    "DeleteAgentResponse",
    "DeleteAgentResponseData",
    "DeleteAgentResponseError",
    "ErrorDetail",
    "ErrorResponse",
    "ErrorResponseData",
    "PostTestersByAgentBody",
    "PostTestersByAgentTesterBody",
    "PostTestersByAgentWsgwBody",
    "Tester",
)
