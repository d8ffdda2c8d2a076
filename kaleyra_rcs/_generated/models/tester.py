from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="Tester")


@_attrs_define
class Tester:
    """One test device. Field names and types are those of the documented sample; its
    values are masked (X's, an id that is not a valid UUID), so no format or pattern
    is imposed.

        Attributes:
            phoneno (str):
            test_status (str):
            status (str):
            agent_no (str):
            id (str):
            override_dcs_check (bool):
            carrierid (int):
    """

    phoneno: str
    test_status: str
    status: str
    agent_no: str
    id: str
    override_dcs_check: bool
    carrierid: int
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        phoneno = self.phoneno

        test_status = self.test_status

        status = self.status

        agent_no = self.agent_no

        id = self.id

        override_dcs_check = self.override_dcs_check

        carrierid = self.carrierid

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "phoneno": phoneno,
                "test_status": test_status,
                "status": status,
                "agent_no": agent_no,
                "id": id,
                "override_dcs_check": override_dcs_check,
                "carrierid": carrierid,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        phoneno = d.pop("phoneno")

        test_status = d.pop("test_status")

        status = d.pop("status")

        agent_no = d.pop("agent_no")

        id = d.pop("id")

        override_dcs_check = d.pop("override_dcs_check")

        carrierid = d.pop("carrierid")

        tester = cls(
            phoneno=phoneno,
            test_status=test_status,
            status=status,
            agent_no=agent_no,
            id=id,
            override_dcs_check=override_dcs_check,
            carrierid=carrierid,
        )

        tester.additional_properties = d
        return tester

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
