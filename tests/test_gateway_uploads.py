"""Form uploads through /v1 (issue 31): a ``multipart/form-data`` body routed by its ``model``
field and streamed to its instance as it arrives, within the 64 MiB body limit.

llama-server answers ``/v1/audio/transcriptions`` only with an audio model, which the tests
cannot have; the fake backend (tests/support/fake_backend.py) answers that route by reading
the upload as it streams and describing what it read."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from llamactl.gateway import http_protocol
from llamactl.gateway.multipart import ModelFieldFinder, boundary_of, is_multipart
from llamactl.gateway.upload import HOLD_BYTES, Upload
from tests.conftest import AppHarness
from tests.support.helpers import backends_under
from tests.test_capabilities import write_metadata_file
from tests.test_gateway_http import exchange, request

BOUNDARY = "llamactl-test-boundary"
TRANSCRIPTIONS = "/v1/audio/transcriptions"


def form(model: str | None, audio: bytes, *, model_first: bool = True) -> bytes:
    """A form as OpenAI's SDK sends it: the model field and the file (in either order)."""
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
        f"Content-Type: audio/wav\r\n\r\n".encode() + audio + b"\r\n",
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="response_format"\r\n\r\n'
        f"json\r\n".encode(),
    ]
    if model is not None:
        field = (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="model"\r\n\r\n'
                 f"{model}\r\n").encode()
        parts.insert(0 if model_first else len(parts), field)
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


FORM_HEADERS = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


@pytest.mark.parametrize("piece", [1, 7, 100, 65536, 10**8])
@pytest.mark.parametrize("model_first", [True, False])
def test_the_model_field_is_found_in_any_piece_sizes(piece: int, model_first: bool) -> None:
    body = form("whisper-1", os.urandom(200_000) + b"\r\n--" + b"x" * 30, model_first=model_first)
    finder = ModelFieldFinder(BOUNDARY.encode())
    for start in range(0, len(body), piece):
        finder.feed(body[start:start + piece])
    assert finder.done
    assert finder.model == "whisper-1"
    assert finder.span is not None
    assert body[finder.span[0]:finder.span[1]] == b"whisper-1"


def test_a_form_without_a_model_field_is_done_at_its_end() -> None:
    finder = ModelFieldFinder(BOUNDARY.encode())
    finder.feed(form(None, b"RIFF....") + b"epilogue")
    assert finder.done
    assert finder.model is None
    assert boundary_of(b'multipart/form-data; boundary="a b"') == b"a b"
    assert boundary_of(b"multipart/form-data") is None
    assert is_multipart(b"Multipart/Form-Data; boundary=x")
    assert not is_multipart(b"application/json")


def test_an_upload_renamed_for_its_backend_keeps_its_length_right() -> None:
    holds: list[bool] = []
    body = form("alias", b"A" * (HOLD_BYTES + 10))
    headers = [(b"content-type", FORM_HEADERS["Content-Type"].encode()),
               (b"content-length", str(len(body)).encode())]
    upload = Upload(headers, holds.append)
    upload.add(body[:HOLD_BYTES + 500])
    assert holds == [True]  # more than HOLD_BYTES wait: the client's reading pauses
    assert upload.finder.model == "alias"
    upload.rename_model("served-name")
    framed = upload.head_end_and_held()
    renamed = body.replace(b"\r\n\r\nalias\r\n", b"\r\n\r\nserved-name\r\n", 1)
    assert framed == b"content-length: %d\r\n\r\n" % len(renamed) + renamed[:HOLD_BYTES + 506]
    upload.release()
    assert holds == [True, False]
    chunked = Upload(headers[:1], holds.append)
    chunked.add(b"abc")
    chunked.end()
    assert chunked.head_end_and_held() == (b"transfer-encoding: chunked\r\n\r\n"
                                            b"3\r\nabc\r\n0\r\n\r\n")


async def audio_app(make_settings: Any, make_app: Any, fake_model: Path,
                    tmp_path: Path) -> AppHarness:
    """Fake backends: "whisper" with an audio projector, "plain" with none."""
    app: AppHarness = await make_app(make_settings(fake=True))
    projector = write_metadata_file(tmp_path / "models" / "audio-mmproj.gguf", "clip",
                                    clip__has_audio_encoder=True)
    for name, options in (("whisper", {"mmproj": str(projector)}), ("plain", {})):
        answer = await app.client.post("/api/instances", json={
            "name": name, "model_path": str(fake_model), "options": options})
        assert answer.status_code == 201, answer.text
    listed = {m["id"]: m["capabilities"] for m in
              (await app.client.get("/v1/models")).json()["data"]}
    assert listed == {"whisper": ["completion", "audio"], "plain": ["completion"]}
    return app


async def test_the_openai_sdk_transcribes_through_the_named_instance(
    make_settings: Any, make_app: Any, fake_model: Path, tmp_path: Path
) -> None:
    app = await audio_app(make_settings, make_app, fake_model, tmp_path)
    for model_first in (True, False):  # the first starts it on demand, the upload held
        body = form("whisper", os.urandom(3 * HOLD_BYTES), model_first=model_first)
        answer = await app.client.post(TRANSCRIPTIONS, content=body,
                                       headers={**FORM_HEADERS, "x-api-key": "client-key"})
        assert answer.status_code == 200, answer.text
        seen = answer.json()
        assert (seen["bytes"], seen["sha256"]) == (len(body), hashlib.sha256(body).hexdigest())
        assert seen["port"] == (await app.client.get("/api/instances/whisper")).json()["port"]
        assert seen["api_key"] is None  # the client's credential stays in llamactl
    client = openai.AsyncOpenAI(base_url=f"{app.client.base_url}/v1", api_key="unused",
                                max_retries=0)
    try:
        text = await client.audio.transcriptions.create(model="whisper",
                                                        file=("a.wav", b"RIFF" * 1000))
    finally:
        await client.close()
    assert text.text == "fake transcription"
    assert (await app.client.get("/api/instances/plain")).json()["status"] == "stopped"


async def test_a_chunked_upload_goes_on_in_chunks(
    make_settings: Any, make_app: Any, fake_model: Path, tmp_path: Path
) -> None:
    app = await audio_app(make_settings, make_app, fake_model, tmp_path)
    body = form("whisper", os.urandom(200_000))

    async def pieces() -> Any:
        for start in range(0, len(body), 50_000):
            yield body[start:start + 50_000]

    answer = await app.client.post(TRANSCRIPTIONS, content=pieces(), headers=FORM_HEADERS)
    assert answer.status_code == 200, answer.text
    assert answer.json()["chunked"] is True
    assert answer.json()["sha256"] == hashlib.sha256(body).hexdigest()


async def test_the_file_reaches_the_backend_before_the_client_has_sent_it_all(
    make_settings: Any, make_app: Any, fake_model: Path, tmp_path: Path
) -> None:
    app = await audio_app(make_settings, make_app, fake_model, tmp_path)
    assert (await app.client.post("/api/instances/whisper/start?wait=true")).status_code == 200
    port = (await app.client.get("/api/instances/whisper")).json()["port"]
    body = form("whisper", os.urandom(4 * 1024 * 1024))
    half = len(body) // 2
    reader, writer = await asyncio.open_connection(app.client.base_url.host,
                                                   app.client.base_url.port)
    head = (f"POST {TRANSCRIPTIONS} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: {FORM_HEADERS['Content-Type']}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    writer.write(head + body[:half])
    await writer.drain()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", trust_env=False) as fake:
        async def progress() -> int:
            value: int = (await fake.get("/upload-progress")).json()["bytes"]
            return value

        await wait_until_async(lambda: progress(), lambda got: got >= half - 65536)
        assert await progress() < len(body)  # the rest has not been sent yet
    writer.write(body[half:])
    await writer.drain()
    answer = await reader.readuntil(b"}")
    writer.close()
    assert b" 200 OK" in answer.split(b"\r\n")[0]
    assert hashlib.sha256(body).hexdigest().encode() in answer


async def wait_until_async(probe: Any, done: Any, timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not done(got := await probe()):
        assert asyncio.get_running_loop().time() < deadline, f"never: {got}"
        await asyncio.sleep(0.02)


async def test_uploads_refused_before_any_start(
    make_settings: Any, make_app: Any, fake_model: Path, tmp_path: Path
) -> None:
    app = await audio_app(make_settings, make_app, fake_model, tmp_path)
    cannot = await app.client.post(TRANSCRIPTIONS, content=form("plain", b"RIFF"),
                                   headers=FORM_HEADERS)
    assert cannot.status_code == 400
    assert cannot.json()["error"]["code"] == "unsupported_capability"
    unnamed = await app.client.post(TRANSCRIPTIONS, content=form(None, b"RIFF"),
                                    headers=FORM_HEADERS)
    assert unnamed.status_code == 400
    assert unnamed.json()["error"]["code"] == "model_required"
    unknown = await app.client.post(TRANSCRIPTIONS, content=form("nope", b"RIFF"),
                                    headers=FORM_HEADERS)
    assert unknown.json()["error"]["code"] == "model_not_found"
    no_boundary = await app.client.post(TRANSCRIPTIONS, content=b"x",
                                        headers={"Content-Type": "multipart/form-data"})
    assert no_boundary.status_code == 400
    assert backends_under(tmp_path) == []


def raw_upload(body: bytes) -> bytes:
    return (f"POST {TRANSCRIPTIONS} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: {FORM_HEADERS['Content-Type']}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


async def test_the_body_limit_holds_for_uploads(
    make_settings: Any, make_app: Any, fake_model: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = await audio_app(make_settings, make_app, fake_model, tmp_path)
    assert (await app.client.post("/api/instances/whisper/start?wait=true")).status_code == 200
    monkeypatch.setattr(http_protocol, "MAX_BODY_BYTES", 100_000)  # as for JSON bodies
    answers, closed = await exchange(app, raw_upload(form("whisper", b"\0" * 200_000)),
                                     answers=1, until_closed=True)
    assert closed
    assert answers[0][0] == 413
    assert json.loads(answers[0][2])["error"]["code"] == "body_too_large"


async def test_an_upload_and_the_requests_after_it_share_a_connection(
    make_settings: Any, make_app: Any, fake_model: Path, tmp_path: Path
) -> None:
    app = await audio_app(make_settings, make_app, fake_model, tmp_path)
    body = form("whisper", os.urandom(300_000))
    answers, closed = await exchange(app, b"".join([
        raw_upload(body), request("GET", "/v1/models"), raw_upload(form("plain", b"RIFF")),
        raw_upload(body)]), answers=4)
    assert not closed
    assert [status for status, _, _ in answers] == [200, 200, 400, 200]
    assert json.loads(answers[3][2])["sha256"] == hashlib.sha256(body).hexdigest()


async def test_an_upload_behind_an_api_request_is_served_through_the_app_alike(
    make_settings: Any, make_app: Any, fake_model: Path, tmp_path: Path
) -> None:
    """/api and /v1 in one read: the connection is uvicorn's, the upload goes through the
    ASGI app (gateway/outside.py), routed and streamed the same way."""
    app = await audio_app(make_settings, make_app, fake_model, tmp_path)
    body = form("whisper", os.urandom(200_000), model_first=False)
    answers, _closed = await exchange(app, request("GET", "/api/instances/whisper")
                                      + raw_upload(body) + raw_upload(form("plain", b"x")),
                                      answers=3)
    assert [status for status, _, _ in answers] == [200, 200, 400]
    assert json.loads(answers[1][2])["sha256"] == hashlib.sha256(body).hexdigest()
    assert json.loads(answers[2][2])["error"]["code"] == "unsupported_capability"


async def test_an_upload_naming_a_pool_goes_to_a_member_that_can_hear(
    make_settings: Any, make_app: Any, fake_model: Path, tmp_path: Path
) -> None:
    """Issue 32 with 31: a pool's name in the form routes like the name in a JSON body, and a
    pool none of whose members can serve the route is refused before any start."""
    app: AppHarness = await make_app(make_settings(fake=True))
    projector = write_metadata_file(tmp_path / "models" / "audio-mmproj.gguf", "clip",
                                    clip__has_audio_encoder=True)
    for name, pool, options in (("ear-1", "ears", {"mmproj": str(projector)}),
                                ("ear-2", "ears", {"mmproj": str(projector)}),
                                ("mouth", "mouths", {})):
        answer = await app.client.post("/api/instances", json={
            "name": name, "model_path": str(fake_model), "pool": pool, "options": options})
        assert answer.status_code == 201, answer.text
    body = form("ears", os.urandom(3 * HOLD_BYTES))
    answer = await app.client.post(TRANSCRIPTIONS, content=body, headers=FORM_HEADERS)
    assert answer.status_code == 200, answer.text
    seen = answer.json()
    assert (seen["bytes"], seen["sha256"]) == (len(body), hashlib.sha256(body).hexdigest())
    ports = {(await app.client.get(f"/api/instances/{name}")).json()["port"]
             for name in ("ear-1", "ear-2")}
    assert seen["port"] in ports
    cannot = await app.client.post(TRANSCRIPTIONS, content=form("mouths", b"RIFF"),
                                   headers=FORM_HEADERS)
    assert cannot.status_code == 400, cannot.text
    assert cannot.json()["error"]["code"] == "unsupported_capability"
    assert "'mouths'" in cannot.json()["error"]["message"]
    embeddings = await app.client.post("/v1/embeddings",
                                       json={"model": "mouths", "input": "hello"})
    assert embeddings.json()["error"]["code"] == "unsupported_capability"
    assert (await app.client.get("/api/instances/mouth")).json()["status"] == "stopped"
