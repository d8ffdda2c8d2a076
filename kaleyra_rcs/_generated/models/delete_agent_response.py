from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.delete_agent_response_data import DeleteAgentResponseData
    from ..models.delete_agent_response_error import DeleteAgentResponseError


T = TypeVar("T", bound="DeleteAgentResponse")


@_attrs_define
class DeleteAgentResponse:
    """
    Attributes:
        code (str):
        message (str):
        data (DeleteAgentResponseData):
        error (DeleteAgentResponseError):
    """

    code: str
    message: str
    data: DeleteAgentResponseData
    error: DeleteAgentResponseError
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        code = self.code

        message = self.message

        data = self.data.to_dict()

        error = self.error.to_dict()

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "code": code,
                "message": message,
                "data": data,
                "error": error,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.delete_agent_response_data import DeleteAgentResponseData
        from ..models.delete_agent_response_error import DeleteAgentResponseError

        d = dict(src_dict)
        code = d.pop("code")

        message = d.pop("message")

        data = DeleteAgentResponseData.from_dict(d.pop("data"))

        error = DeleteAgentResponseError.from_dict(d.pop("error"))

        delete_agent_response = cls(
            code=code,
            message=message,
            data=data,
            error=error,
        )

        delete_agent_response.additional_properties = d
        return delete_agent_response

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> Any:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
