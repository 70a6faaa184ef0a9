"""No secret reaches the technician page's diagnostics: the log view and every
member of the bundle are free of the setup code, the API token, the password and
its hash, the page's TLS key and the uplink's key.

A real box in this process (mock pins, no broker listening), with HTTPS on its
page and an mqtts uplink with a client key, started without a password.
"""

from __future__ import annotations

import io
import logging
import zipfile
from pathlib import Path

import aiohttp
import pytest

from edge.config import parse
from edge.web import auth
from tests.conftest import BOX_AUTH, DEMO_API_TOKEN, free_port
from tests.integration.test_end_to_end import RunningBox, demo_text, without_video
from tests.integration.tls import make_ca, make_client_cert

PASSWORD = "the technician's own password"
MQTT_PASSWORD = "mqtt-password-of-the-uplink"


def box_text(tmp_path: Path, web_port: int) -> tuple[str, Path]:
    """The demo box with an mqtts uplink (client key, password) and HTTPS on its page."""
    ca = make_ca(tmp_path / "pki")
    device = make_client_cert(ca, "demo-box-01")
    broker_port = free_port()  # nobody listens there
    text = without_video(demo_text(broker_port, web_port))
    old = f'broker = "mqtt://127.0.0.1:{broker_port}"'
    assert old in text
    text = text.replace(
        old,
        f'broker = "mqtts://127.0.0.1:{broker_port}"\nusername = "demo-box-01"\n'
        f'password = "{MQTT_PASSWORD}"\n'
        f'ca_file = "{ca.cert}"\ncert_file = "{device.cert}"\nkey_file = "{device.key}"',
    )
    text = text.replace(f"port = {web_port}", f"port = {web_port}\ntls = true")
    return text, device.key


def key_material(pem: str) -> list[str]:
    """A PEM key whole and each of its base64 lines."""
    lines = [line for line in pem.splitlines() if line and not line.startswith("-----")]
    assert lines
    return [pem.strip(), *lines]


async def diagnostics(http: aiohttp.ClientSession, base: str) -> dict[str, str]:
    """The log view and every member of the bundle, as text."""
    texts: dict[str, str] = {}
    async with http.get(base + "/api/diagnostics/logs.txt", headers=BOX_AUTH) as r:
        assert r.status == 200
        texts["logs.txt"] = await r.text()
    async with http.get(base + "/api/diagnostics/bundle.zip", headers=BOX_AUTH) as r:
        assert r.status == 200
        data = await r.read()
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        for name in z.namelist():
            texts[f"bundle.zip/{name}"] = z.read(name).decode("utf-8")
    assert "logs.txt" in {name.rsplit("/", 1)[-1] for name in texts if name != "logs.txt"}
    return texts


def leaks(texts: dict[str, str], secrets: dict[str, str]) -> list[tuple[str, str]]:
    return [
        (where, what)
        for where, text in texts.items()
        for what, secret in secrets.items()
        if secret in text
    ]


async def test_no_secret_is_in_the_diagnostics(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    web_port = free_port()
    text, uplink_key = box_text(tmp_path, web_port)
    base = f"https://127.0.0.1:{web_port}"
    careless = logging.getLogger("edge.somewhere")  # a line that should never be written
    async with (
        RunningBox(parse(text, "secrets.toml"), tmp_path / "box") as box,
        aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=False),
            cookie_jar=aiohttp.CookieJar(unsafe=True),
            timeout=aiohttp.ClientTimeout(total=10),
        ) as http,
    ):
        assert box.web is not None
        web_dir = tmp_path / "box" / "web"
        code = box.web.gate.setup_code
        assert code is not None
        # the operator still reads it on the console (the journal), on a marked line
        printed = [r for r in caplog.records if code in r.getMessage()]
        assert printed and all(getattr(r, "secret", False) for r in printed)
        secrets = {
            "setup code": code,
            "setup code (lower case)": code.lower(),
            "api token": DEMO_API_TOKEN,
            "uplink password": MQTT_PASSWORD,
            "password": PASSWORD,
        }
        for n, line in enumerate(key_material((web_dir / "tls" / "key.pem").read_text())):
            secrets[f"web TLS key {n}"] = line
        for n, line in enumerate(key_material(uplink_key.read_text())):
            secrets[f"uplink key {n}"] = line
        # second line of defence: lines that carry a secret by mistake are scrubbed
        careless.warning("oops, the setup code: %s / %s", code, code.lower())
        careless.warning("oops, the token: Bearer %s", DEMO_API_TOKEN)
        careless.error("oops, the web key:\n%s", (web_dir / "tls" / "key.pem").read_text())
        careless.error("oops, the uplink key:\n%s", uplink_key.read_text())

        before = await diagnostics(http, base)
        assert "web page on https://" in before["logs.txt"]  # the log view still works
        assert leaks(before, secrets) == []

        body = {"code": code, "password": PASSWORD}
        async with http.post(base + "/api/setup", json=body) as r:
            assert r.status == 200
        stored = auth.read_password(web_dir)
        assert stored is not None
        secrets["password hash"] = stored
        secrets["password salt+hash"] = stored.split("$", 4)[-1]
        careless.warning("oops, the password hash: %s", stored)

        after = await diagnostics(http, base)
        assert "web password set with the setup code" in after["logs.txt"]
        assert leaks(after, secrets) == []
