"""Your project's tests against the Kaleyra RCS mock, with no network and no credentials:
`pip install 'kaleyra-rcs-harness[mock]' pytest`, then `pytest test_my_project.py`."""

import pytest

from kaleyra_rcs import AgentNotFound, GatewayError, KaleyraRCS


def remove_agents(rcs, agents):
    """Your code under test: delete each agent, and say which were already gone."""
    gone = []
    for agent in agents:
        try:
            rcs.delete_agent(agent)
        except AgentNotFound:
            gone.append(agent)
    return gone


def test_removing_twice_finds_the_agent_gone(kaleyra_client, kaleyra_mock):
    assert remove_agents(kaleyra_client, ["48400"]) == []
    assert remove_agents(kaleyra_client, ["48400"]) == ["48400"]
    assert sorted(e["status"] for e in kaleyra_mock.journal(operation="deleteAgent")) == [200, 400]


def test_a_gateway_error_reaches_the_caller(kaleyra_client, kaleyra_mock):
    kaleyra_mock.arm_scenario("gateway_error", times=1, operation="getTestersByAgent")
    with pytest.raises(GatewayError):
        kaleyra_client.get_testers_by_agent("48900")
    assert kaleyra_client.get_testers_by_agent("48900")[0].status == "ACTIVE"


@pytest.mark.anyio  # with pytest-asyncio instead: @pytest.mark.asyncio
async def test_the_async_client_reads_testers(kaleyra_async_client):
    testers = await kaleyra_async_client.get_testers_by_agent("48900")
    assert [t.status for t in testers] == ["ACTIVE"]
    with pytest.raises(AgentNotFound):
        await kaleyra_async_client.delete_agent("99404")  # a magic agent: never found


def test_the_real_server_over_http(kaleyra_mock_server):
    kaleyra_mock_server.reset()  # one server per session: start each test from the seed
    with KaleyraRCS(api_key="any-key", sid="MY-SID", base_url=kaleyra_mock_server.na_url) as rcs:
        assert remove_agents(rcs, ["48400", "48400"]) == ["48400"]
