"""The README's pytest example, verbatim: what a user pastes must work."""

import pytest

from kaleyra_rcs import AgentNotFound, GatewayError


def test_my_cleanup_deletes_each_agent_once(kaleyra_client, kaleyra_mock):
    kaleyra_client.delete_agent("48400")
    with pytest.raises(AgentNotFound):
        kaleyra_client.delete_agent("48400")


def test_my_code_survives_a_gateway_error(kaleyra_client, kaleyra_mock):
    kaleyra_mock.arm_scenario("gateway_error", times=1, operation="getTestersByAgent")
    with pytest.raises(GatewayError):
        kaleyra_client.get_testers_by_agent("48900")
    assert kaleyra_client.get_testers_by_agent("48900")[0].status == "ACTIVE"
