from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.error_detail import ErrorDetail
    from ..models.error_response_data import ErrorResponseData


T = TypeVar("T", bound="ErrorResponse")


@_attrs_define
class ErrorResponse:
    """Kaleyra's error envelope. Documented: each failure's HTTP status, code, message,
    error-code constant and error message (delete document's failure table).
    Default layout (since 0.4.0): {"code", "message", "data": {"error": {"error_code",
    "error_message"}}}. The other reading, {"code", "message", "data": {}, "error":
    {"error_code", "error_message"}}, is the mock's `--error-layout error`; both are
    valid here and the client reads both.

        Attributes:
            code (str):
            message (str):
            data (ErrorResponseData | Unset):
            error (ErrorDetail | Unset):
    """

    code: str
    message: str
    data: ErrorResponseData | Unset = UNSET
    error: ErrorDetail | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        code = self.code

        message = self.message

        data: dict[str, Any] | Unset = UNSET
        if not isinstance(self.data, Unset):
            data = self.data.to_dict()

        error: dict[str, Any] | Unset = UNSET
        if not isinstance(self.error, Unset):
            error = self.error.to_dict()

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "code": code,
                "message": message,
            }
        )
        if data is not UNSET:
            field_dict["data"] = data
        if error is not UNSET:
            field_dict["error"] = error

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.error_detail import ErrorDetail
        from ..models.error_response_data import ErrorResponseData

        d = dict(src_dict)
        code = d.pop("code")

        message = d.pop("message")

        _data = d.pop("data", UNSET)
        data: ErrorResponseData | Unset
        if isinstance(_data, Unset):
            data = UNSET
        else:
            data = ErrorResponseData.from_dict(_data)

        _error = d.pop("error", UNSET)
        error: ErrorDetail | Unset
        if isinstance(_error, Unset):
            error = UNSET
        else:
            error = ErrorDetail.from_dict(_error)

        error_response = cls(
            code=code,
            message=message,
            data=data,
            error=error,
        )

        error_response.additional_properties = d
        return error_response

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
