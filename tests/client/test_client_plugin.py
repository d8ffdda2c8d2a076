"""The plugin's in-process transports fail the way a socket would."""

import pytest

from kaleyra_rcs import TransportError


def test_kaleyra_client__connection_reset_is_a_transport_error(kaleyra_client, kaleyra_mock) -> None:
    kaleyra_mock.arm_fault("connection_reset", times=1)
    with pytest.raises(TransportError, match="RemoteProtocolError"):
        kaleyra_client.get_testers_by_agent("48900")
    assert kaleyra_client.get_testers_by_agent("48900")[0].status == "ACTIVE"


@pytest.mark.anyio
async def test_kaleyra_async_client__connection_reset_is_a_transport_error(kaleyra_async_client, kaleyra_mock) -> None:
    kaleyra_mock.arm_fault("connection_reset", times=1)
    with pytest.raises(TransportError, match="RemoteProtocolError"):
        await kaleyra_async_client.get_testers_by_agent("48900")
    assert (await kaleyra_async_client.get_testers_by_agent("48900"))[0].status == "ACTIVE"
