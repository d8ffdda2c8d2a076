from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.error_response import ErrorResponse
from ...models.post_testers_by_agent_body import PostTestersByAgentBody
from ...models.tester import Tester
from ...types import UNSET, Response, Unset


def _get_kwargs(
    sid: str,
    *,
    body: PostTestersByAgentBody | Unset = UNSET,
    agent_number: str | Unset = UNSET,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}

    params: dict[str, Any] = {}

    params["agent_number"] = agent_number

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/v1/{sid}/rcs/agent/testersbyagent".format(
            sid=quote(str(sid), safe=""),
        ),
        "params": params,
    }

    if not isinstance(body, Unset):
        _kwargs["json"] = body.to_dict()

    headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> ErrorResponse | list[Tester] | None:
    if response.status_code == 200:
        response_200 = []
        _response_200 = response.json()
        for componentsschemas_tester_list_item_data in _response_200:
            componentsschemas_tester_list_item = Tester.from_dict(
                componentsschemas_tester_list_item_data
            )

            response_200.append(componentsschemas_tester_list_item)

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
) -> Response[ErrorResponse | list[Tester]]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    sid: str,
    *,
    client: AuthenticatedClient | Client,
    body: PostTestersByAgentBody | Unset = UNSET,
    agent_number: str | Unset = UNSET,
) -> Response[ErrorResponse | list[Tester]]:
    """Get Tester By Agent, by POST

    Args:
        sid (str):
        agent_number (str | Unset):
        body (PostTestersByAgentBody | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorResponse | list[Tester]]
    """

    kwargs = _get_kwargs(
        sid=sid,
        body=body,
        agent_number=agent_number,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    sid: str,
    *,
    client: AuthenticatedClient | Client,
    body: PostTestersByAgentBody | Unset = UNSET,
    agent_number: str | Unset = UNSET,
) -> ErrorResponse | list[Tester] | None:
    """Get Tester By Agent, by POST

    Args:
        sid (str):
        agent_number (str | Unset):
        body (PostTestersByAgentBody | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorResponse | list[Tester]
    """

    return sync_detailed(
        sid=sid,
        client=client,
        body=body,
        agent_number=agent_number,
    ).parsed


async def asyncio_detailed(
    sid: str,
    *,
    client: AuthenticatedClient | Client,
    body: PostTestersByAgentBody | Unset = UNSET,
    agent_number: str | Unset = UNSET,
) -> Response[ErrorResponse | list[Tester]]:
    """Get Tester By Agent, by POST

    Args:
        sid (str):
        agent_number (str | Unset):
        body (PostTestersByAgentBody | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorResponse | list[Tester]]
    """

    kwargs = _get_kwargs(
        sid=sid,
        body=body,
        agent_number=agent_number,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    sid: str,
    *,
    client: AuthenticatedClient | Client,
    body: PostTestersByAgentBody | Unset = UNSET,
    agent_number: str | Unset = UNSET,
) -> ErrorResponse | list[Tester] | None:
    """Get Tester By Agent, by POST

    Args:
        sid (str):
        agent_number (str | Unset):
        body (PostTestersByAgentBody | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorResponse | list[Tester]
    """

    return (
        await asyncio_detailed(
            sid=sid,
            client=client,
            body=body,
            agent_number=agent_number,
        )
    ).parsed
