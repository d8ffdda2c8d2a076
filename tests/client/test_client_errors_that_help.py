"""Errors that say what went wrong where: the URL a failed call tried, a base URL refused when the
client is built, and an answer that is no Kaleyra pod's told apart from a contract breach."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from kaleyra_rcs import (
    AsyncKaleyraRCS,
    ContractViolation,
    KaleyraApiError,
    KaleyraRCS,
    NotKaleyra,
    TransportError,
)
from kaleyra_rcs._cli import main
from kaleyra_rcs._spec import SPEC_PATH

KEY = "errors-test-key-4711"
SID = "ERR-SID"
TESTERS_URL = "http://127.0.0.1:8080/eu/v1/ERR-SID/rcs/agent/testersbyagent?agent_number=48900"
ENVELOPE_404 = {"code": "RCS404", "message": "Not found", "data": {"error": {"error_code": "NOT_FOUND"}}}


def client_answering(handler: Any, base_url: str = "http://127.0.0.1:8080/eu", **kwargs: Any) -> KaleyraRCS:
    return KaleyraRCS(api_key=KEY, sid=SID, base_url=base_url, transport=httpx.MockTransport(handler), **kwargs)


# -- the base URL, checked when the client is built --------------------------------------------------


@pytest.mark.parametrize(
    ("base_url", "message"),
    [
        (
            "127.0.0.1:8080/in",
            "base_url must start with http:// or https://, not '127.0.0.1:8080/in' "
            "(did you mean 'http://127.0.0.1:8080/in'?)",
        ),
        ("rcs-api.in.kaleyra.io", "base_url must start with http:// or https://, not 'rcs-api.in.kaleyra.io'"),
        ("ftp://127.0.0.1/in", "base_url must start with http:// or https://, not 'ftp://127.0.0.1/in'"),
        ("http:///in", "base_url names no host: 'http:///in' (e.g. http://127.0.0.1:8080/in)"),
    ],
)
def test_client__base_url_without_a_scheme_or_host__refused_when_built(base_url: str, message: str) -> None:
    for cls in (KaleyraRCS, AsyncKaleyraRCS):
        with pytest.raises(ValueError) as refused:
            cls(api_key=KEY, sid=SID, base_url=base_url)
        assert str(refused.value).startswith(message)


def test_client__base_url_refusal__never_shows_a_password() -> None:
    with pytest.raises(ValueError) as refused:
        KaleyraRCS(api_key=KEY, sid=SID, base_url="ftp://user:hunter2@host/in")
    assert "hunter2" not in str(refused.value) and "ftp://host/in" in str(refused.value)


@pytest.mark.parametrize("base_url", ["HTTP://127.0.0.1:8080/in/", "https://rcs-api.na.kaleyra.io"])
def test_client__base_url_with_a_scheme__is_kept(base_url: str) -> None:
    assert KaleyraRCS(api_key=KEY, sid=SID, base_url=base_url).base_url == base_url.rstrip("/")


def test_cli__base_url_without_a_scheme__is_a_usage_error() -> None:
    err = io.StringIO()
    env = {"KALEYRA_API_KEY": KEY, "KALEYRA_SID": SID}
    code = main(
        ["--base-url", "127.0.0.1:8080/in", "testers", "--agent", "1"], env=env, stdout=io.StringIO(), stderr=err
    )
    assert code == 2
    assert "kaleyra-rcs: base_url must start with http:// or https://, not '127.0.0.1:8080/in'" in err.getvalue()


# -- a transport error names the URL tried -------------------------------------------------------


def test_transport_error__names_the_method_and_url_tried_never_the_key_or_password() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        assert request.headers["api-key"] == KEY  # the key is a header: nowhere in the URL
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    with client_answering(refuse, base_url="http://user:hunter2@127.0.0.1:8080/eu") as client:
        with pytest.raises(TransportError) as failed:
            client.get_testers_by_agent("48900")
        assert str(failed.value) == f"ConnectError: [Errno 111] Connection refused (GET {TESTERS_URL})"
        with pytest.raises(TransportError) as failed_delete:
            client.delete_agent("48400")
    assert str(failed_delete.value).endswith("(DELETE http://127.0.0.1:8080/eu/v1/ERR-SID/rcs/agent/48400)")
    for error in (failed.value, failed_delete.value):
        assert KEY not in str(error) and "hunter2" not in str(error) and KEY not in repr(error.args)
        assert isinstance(error.__cause__, httpx.ConnectError)


def test_transport_error__over_a_closed_port_names_the_url() -> None:
    client = KaleyraRCS(api_key=KEY, sid=SID, base_url="http://127.0.0.1:9/na", timeout=2)
    with client, pytest.raises(TransportError) as refused:
        client.delete_agent("48400")
    assert str(refused.value).startswith("ConnectError: ")
    assert str(refused.value).endswith(" (DELETE http://127.0.0.1:9/na/v1/ERR-SID/rcs/agent/48400)")


# -- an answer no Kaleyra pod gives ------------------------------------------------------------------

NOT_KALEYRA = "this does not look like a Kaleyra server (or the wrong base URL / pod prefix): "


@pytest.mark.parametrize(
    ("answer", "tail"),
    [
        (
            httpx.Response(404, text="<html><h1>Not Found</h1></html>", headers={"Content-Type": "text/html"}),
            "answered status 404, text/html; body: <html><h1>Not Found</h1></html>",
        ),
        (
            httpx.Response(404, json={"detail": "Not Found"}),
            'status 404, application/json, not the error envelope; body: {"detail": "Not Found"}',
        ),
        (
            httpx.Response(404, content=b"404 page not found"),
            "answered status 404, no Content-Type; body: 404 page not found",
        ),
        (
            httpx.Response(404, text="{nope", headers={"Content-Type": "application/json"}),
            "answered status 404, application/json, not JSON; body: {nope",
        ),
        (
            httpx.Response(301, headers={"Location": "https://127.0.0.1:8080/eu"}),
            "answered status 301, no Content-Type, a redirect; body: ",
        ),
        (
            httpx.Response(200, text="<!doctype html><p>Welcome", headers={"Content-Type": "text/html; charset=utf-8"}),
            "answered status 200, text/html; body: <!doctype html><p>Welcome",
        ),
    ],
)
def test_not_kaleyra__a_page_or_a_404_outside_the_envelope__names_the_url(answer: httpx.Response, tail: str) -> None:
    with client_answering(lambda request: answer) as client, pytest.raises(NotKaleyra) as caught:
        client.get_testers_by_agent("48900")
    error = caught.value
    assert isinstance(error, ContractViolation)  # `except ContractViolation` still catches it
    assert error.status == answer.status_code
    assert str(error).startswith(f"{NOT_KALEYRA}GET {TESTERS_URL} ")
    assert str(error).endswith(tail)


def test_not_kaleyra__a_404_the_spec_copy_does_not_document(tmp_path: Path) -> None:
    """With `spec=` a copy that documents no 404, a 404 is still no contract breach of Kaleyra's."""
    doc = yaml.safe_load(SPEC_PATH.read_text())
    for item in doc["paths"].values():
        for op in item.values():
            if isinstance(op, dict) and "responses" in op:
                op["responses"].pop("404", None)
    copy = tmp_path / "openapi.yaml"
    copy.write_text(yaml.safe_dump(doc))
    client = client_answering(lambda request: httpx.Response(404, json=ENVELOPE_404), spec=copy)
    with client, pytest.raises(NotKaleyra) as caught:
        client.delete_agent("48400")
    assert str(caught.value).startswith(f"{NOT_KALEYRA}DELETE http://127.0.0.1:8080/eu/v1/ERR-SID/rcs/agent/48400 ")
    assert "answered status 404, application/json, which deleteAgent does not document; body: " in str(caught.value)


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(502, text="<html>Bad Gateway</html>", headers={"Content-Type": "text/html"}),
        httpx.Response(418, json={"code": "X"}),
        httpx.Response(400, json={"unexpected": True}),
    ],
)
def test_not_kaleyra__a_gateway_page_or_another_breach_stays_a_contract_violation(answer: httpx.Response) -> None:
    """A 5xx page may be a gateway in front of Kaleyra (and is retried); a wrong 400 is a breach."""
    with client_answering(lambda request: answer) as client, pytest.raises(ContractViolation) as caught:
        client.get_testers_by_agent("48900")
    assert type(caught.value) is ContractViolation
    assert str(caught.value).startswith("contract violation")


def test_not_kaleyra__a_documented_404_in_the_envelope_is_the_api_error() -> None:
    client = client_answering(lambda request: httpx.Response(404, json=ENVELOPE_404))
    with client, pytest.raises(KaleyraApiError) as caught:
        client.get_testers_by_agent("48900")
    assert (caught.value.status, caught.value.code, caught.value.error_code) == (404, "RCS404", "NOT_FOUND")


def test_not_kaleyra__cli_exit_code_is_the_contract_violations() -> None:
    out = io.StringIO()
    page = httpx.Response(404, text="<html>nope</html>", headers={"Content-Type": "text/html"})

    def factory(env: Any, **overrides: Any) -> KaleyraRCS:
        return KaleyraRCS.from_env(env, transport=httpx.MockTransport(lambda request: page), **overrides)

    env = {"KALEYRA_API_KEY": KEY, "KALEYRA_SID": SID, "KALEYRA_BASE_URL": "http://127.0.0.1:8080/eu"}
    code = main(["testers", "--agent", "48900"], env=env, stdout=out, stderr=io.StringIO(), client_factory=factory)
    assert code == 3
    answer = json.loads(out.getvalue())
    assert (answer["error"], answer["status"]) == ("NotKaleyra", 404)
    assert answer["message"].startswith(NOT_KALEYRA)


# -- the mock's own 404 under an unknown pod ------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "named"), [("eu", "'eu' here:"), ("NA", "'NA' here (paths are case-sensitive: /na, not /NA):")]
)
def test_get_testers_by_agent__unknown_pod_prefix__the_mocks_404_names_the_pods(
    kaleyra_mock: Any, prefix: str, named: str
) -> None:
    """The mock's own 404 is in the documented envelope: the client raises the API error (never a
    contract breach), with the mock's code and its message, which names the pods."""
    base_url = kaleyra_mock.base_url("in").rsplit("/in", 1)[0] + f"/{prefix}"
    client = KaleyraRCS(api_key=KEY, sid=SID, base_url=base_url, transport=kaleyra_mock.wsgi_transport())
    with client, pytest.raises(KaleyraApiError) as caught:
        client.get_testers_by_agent("48900")
    error = caught.value
    assert not isinstance(error, ContractViolation)
    assert (type(error), error.status, error.code, error.error_code) == (
        KaleyraApiError,
        404,
        "MOCK404",
        "UNKNOWN_POD_PREFIX",
    )
    assert str(error) == (
        f"404 MOCK404 UNKNOWN_POD_PREFIX Unknown pod or version: no pod or version {named} "
        "the pods are /in and /na (or a Kaleyra Host), the API version is /v1 (and /wsgw)"
    )
