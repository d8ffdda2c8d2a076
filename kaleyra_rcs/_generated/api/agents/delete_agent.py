from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.delete_agent_response import DeleteAgentResponse
from ...models.error_response import ErrorResponse
from ...types import Response


def _get_kwargs(
    sid: str,
    agent_number: str,
) -> dict[str, Any]:

    _kwargs: dict[str, Any] = {
        "method": "delete",
        "url": "/v1/{sid}/rcs/agent/{agent_number}".format(
            sid=quote(str(sid), safe=""),
            agent_number=quote(str(agent_number), safe=""),
        ),
    }

    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> DeleteAgentResponse | ErrorResponse | None:
    if response.status_code == 200:
        response_200 = DeleteAgentResponse.from_dict(response.json())

        return response_200

    if response.status_code == 400:
        response_400 = ErrorResponse.from_dict(response.json())

        return response_400

    if response.status_code == 401:
        response_401 = ErrorResponse.from_dict(response.json())

        return response_401

    if response.status_code == 404:
        response_404 = ErrorResponse.from_dict(response.json())

        return response_404

    if response.status_code == 405:
        response_405 = ErrorResponse.from_dict(response.json())

        return response_405

    if response.status_code == 415:
        response_415 = ErrorResponse.from_dict(response.json())

        return response_415

    if response.status_code == 429:
        response_429 = ErrorResponse.from_dict(response.json())

        return response_429

    if response.status_code == 500:
        response_500 = ErrorResponse.from_dict(response.json())

        return response_500

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Response[DeleteAgentResponse | ErrorResponse]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    sid: str,
    agent_number: str,
    *,
    client: AuthenticatedClient | Client,
) -> Response[DeleteAgentResponse | ErrorResponse]:
    """Delete an Agent

     Removes a registered agent profile. A second delete of the same agent, on the same
    pod and SID, answers `agent_not_found`.

    Args:
        sid (str):
        agent_number (str):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[DeleteAgentResponse | ErrorResponse]
    """

    kwargs = _get_kwargs(
        sid=sid,
        agent_number=agent_number,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    sid: str,
    agent_number: str,
    *,
    client: AuthenticatedClient | Client,
) -> DeleteAgentResponse | ErrorResponse | None:
    """Delete an Agent

     Removes a registered agent profile. A second delete of the same agent, on the same
    pod and SID, answers `agent_not_found`.

    Args:
        sid (str):
        agent_number (str):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        DeleteAgentResponse | ErrorResponse
    """

    return sync_detailed(
        sid=sid,
        agent_number=agent_number,
        client=client,
    ).parsed


async def asyncio_detailed(
    sid: str,
    agent_number: str,
    *,
    client: AuthenticatedClient | Client,
) -> Response[DeleteAgentResponse | ErrorResponse]:
    """Delete an Agent

     Removes a registered agent profile. A second delete of the same agent, on the same
    pod and SID, answers `agent_not_found`.

    Args:
        sid (str):
        agent_number (str):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[DeleteAgentResponse | ErrorResponse]
    """

    kwargs = _get_kwargs(
        sid=sid,
        agent_number=agent_number,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    sid: str,
    agent_number: str,
    *,
    client: AuthenticatedClient | Client,
) -> DeleteAgentResponse | ErrorResponse | None:
    """Delete an Agent

     Removes a registered agent profile. A second delete of the same agent, on the same
    pod and SID, answers `agent_not_found`.

    Args:
        sid (str):
        agent_number (str):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        DeleteAgentResponse | ErrorResponse
    """

    return (
        await asyncio_detailed(
            sid=sid,
            agent_number=agent_number,
            client=client,
        )
    ).parsed
