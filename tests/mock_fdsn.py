"""A local FDSN web service for tests: station + dataselect on 127.0.0.1, misbehaving on demand.

It serves an ObsPy ``Inventory`` (StationXML at the requested level, selected by code patterns,
time and rectangular or circular domain) and a ``Stream`` (miniSEED, 512-byte records) made in
the test. Faults are queued per service and each one spoils the next query of that service:

``slow``      answer only after ``slow_s`` seconds (beyond the client's timeout)
``500``/``503`` server errors; ``404`` not found; ``204`` no content; ``empty`` 200 with no body
``short``     announces the whole body (Content-Length) but sends half of it, then hangs up
``cut``       sends the body cut inside a miniSEED record (Content-Length matches the cut)

With ``tls=(cert, key)`` it speaks HTTPS, which ObsPy's EIDA token exchange insists on; the
token posted to ``/fdsnws/dataselect/1/auth`` is recorded in ``tokens``.
"""
from __future__ import annotations

import copy
import fnmatch
import io
import shutil
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import numpy as np
import obspy
from obspy import Inventory, Stream, UTCDateTime
from obspy.clients.fdsn.header import DEFAULT_SERVICES
from obspy.core.inventory import Channel, Network, Station

from quakesnake.sources.synthetic import instrument_response

DOMAIN_KEYS = ("minlatitude", "maxlatitude", "minlongitude", "maxlongitude", "latitude", "longitude", "minradius", "maxradius")
EPOCH = UTCDateTime("2020-01-01")


def make_inventory(stations: list[dict]) -> Inventory:
    """Response-level inventory: each dict has network, station, latitude, longitude[, channels, location]."""
    networks: dict[str, Network] = {}
    for spec in stations:
        channels = [
            Channel(code=code, location_code=spec.get("location", ""), latitude=spec["latitude"],
                    longitude=spec["longitude"], elevation=100.0, depth=0.0, azimuth=0.0,
                    dip=-90.0 if code.endswith("Z") else 0.0, sample_rate=spec.get("sampling_rate", 1.0),
                    response=instrument_response(), start_date=EPOCH)
            for code in spec.get("channels", ["HHZ", "HHN", "HHE"])
        ]
        station = Station(code=spec["station"], latitude=spec["latitude"], longitude=spec["longitude"],
                          elevation=100.0, channels=channels, start_date=EPOCH)
        networks.setdefault(spec["network"], Network(code=spec["network"], stations=[])).stations.append(station)
    return Inventory(networks=list(networks.values()), source="quakesnake mock FDSN", created=EPOCH)


def make_stream(inventory: Inventory, start, end, sampling_rate: float = 1.0, seed: int = 0) -> Stream:
    """Continuous int32 noise from ``start`` to ``end`` on every channel of ``inventory``."""
    rng = np.random.default_rng(seed)
    start, end = UTCDateTime(start), UTCDateTime(end)
    npts = int((end - start) * sampling_rate)
    stream = Stream()
    for network in inventory:
        for station in network:
            for channel in station:
                header = {"network": network.code, "station": station.code, "location": channel.location_code,
                          "channel": channel.code, "sampling_rate": sampling_rate, "starttime": start}
                stream += obspy.Trace(rng.integers(-5000, 5000, npts).astype(np.int32), header=header)
    return stream


def self_signed_certificate(directory: Path) -> tuple[Path, Path] | None:
    """A certificate for 127.0.0.1 made by the openssl command; None when there is none."""
    if shutil.which("openssl") is None:
        return None
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


def _matches(code: str, patterns: str | None) -> bool:
    if patterns is None:
        return True
    return any(fnmatch.fnmatch(code, "" if p == "--" else p) for p in patterns.split(","))


def _wadl(base: str, service: str) -> bytes:
    params = "".join(f'<param name="{name}" style="query" type="xs:string"/>' for name in DEFAULT_SERVICES[service])
    auth = '<resource path="auth"><method name="POST" id="auth"/></resource>' if service == "dataselect" else ""
    return (f'<?xml version="1.0"?><application xmlns="http://wadl.dev.java.net/2009/02" '
            f'xmlns:xs="http://www.w3.org/2001/XMLSchema"><resources base="{base}/fdsnws/{service}/1">'
            f'<resource path="query"><method name="GET" id="query"><request>{params}</request></method></resource>'
            f'{auth}</resources></application>').encode()


class MockFDSN:
    def __init__(self, inventory: Inventory, stream: Stream | None = None, tls: tuple[Path, Path] | None = None,
                 slow_s: float = 2.0):
        self.inventory, self.stream, self.slow_s = inventory, stream or Stream(), slow_s
        self.faults: dict[str, list[str]] = {"station": [], "dataselect": []}
        self.requests: list[tuple[str, str, dict]] = []  # (service, "query"/"queryauth", query), in order
        self.tokens: list[str] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._server.handle_error = lambda request, address: None  # clients that hung up on a slow answer
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*map(str, tls))
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> "MockFDSN":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def fail(self, service: str, *kinds: str) -> None:
        """Spoil the next ``len(kinds)`` queries of ``service`` ("station" or "dataselect"), in order."""
        with self._lock:
            self.faults[service].extend(kinds)

    def queries(self, service: str) -> list[dict]:
        return [query for name, _, query in self.requests if name == service]

    # ------------------------------------------------------------------ answers

    def station_answer(self, query: dict) -> bytes | None:
        level = query.get("level", "station")
        start = UTCDateTime(query["starttime"]) if "starttime" in query else None
        end = UTCDateTime(query["endtime"]) if "endtime" in query else None
        domain = {k: float(query[k]) for k in DOMAIN_KEYS if k in query}
        inventory = self.inventory.select(starttime=start, endtime=end, **domain)
        inventory = copy.deepcopy(inventory)
        for network in inventory:
            for station in network:
                station.channels = [c for c in station if _matches(c.location_code, query.get("location"))
                                    and _matches(c.code, query.get("channel"))]
            network.stations = [s for s in network if _matches(s.code, query.get("station")) and s.channels]
        inventory.networks = [n for n in inventory if _matches(n.code, query.get("network")) and n.stations]
        if not inventory.networks:
            return None
        for network in inventory:
            for station in network:
                if level in ("network", "station"):
                    station.channels = []
                elif level == "channel":
                    for channel in station:
                        channel.response = None
            if level == "network":
                network.stations = []
        buffer = io.BytesIO()
        inventory.write(buffer, format="STATIONXML")
        return buffer.getvalue()

    def dataselect_answer(self, query: dict) -> bytes | None:
        start, end = UTCDateTime(query["starttime"]), UTCDateTime(query["endtime"])
        selected = Stream([tr for tr in self.stream
                           if _matches(tr.stats.network, query.get("network")) and _matches(tr.stats.station, query.get("station"))
                           and _matches(tr.stats.location, query.get("location")) and _matches(tr.stats.channel, query.get("channel"))])
        selected = selected.slice(start, end)
        if not selected:
            return None
        buffer = io.BytesIO()
        selected.write(buffer, format="MSEED", reclen=512)
        return buffer.getvalue()

    # ------------------------------------------------------------------ HTTP

    def _handler(self):
        mock = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, code: int, body: bytes = b"", content_type: str = "text/plain", length: int | None = None):
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body) if length is None else length))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if urlparse(self.path).path.rstrip("/") == "/fdsnws/dataselect/1/auth":
                    mock.tokens.append(body.decode())
                    self._send(200, b"mockuser:mockpassword")
                else:
                    self._send(404, b"not found")

            def do_GET(self):
                parsed = urlparse(self.path)
                parts = parsed.path.strip("/").split("/")
                if len(parts) != 4 or parts[0] != "fdsnws" or parts[1] not in ("station", "dataselect"):
                    return self._send(404, b"not found")
                service, resource = parts[1], parts[3]
                if resource == "application.wadl":
                    return self._send(200, _wadl(mock.url, service), "application/xml")
                if resource == "version":
                    return self._send(200, b"1.1.0")
                if resource not in ("query", "queryauth"):
                    return self._send(404, b"not found")
                query = {k: v[-1] for k, v in parse_qs(parsed.query, keep_blank_values=True).items()}
                with mock._lock:
                    mock.requests.append((service, resource, query))
                    fault = mock.faults[service].pop(0) if mock.faults[service] else None
                if fault == "slow":
                    time.sleep(mock.slow_s)
                elif fault in ("404", "500", "503"):
                    return self._send(int(fault), f"Error {fault}: mock server failure".encode())
                elif fault == "204":
                    return self._send(204)
                elif fault == "empty":
                    return self._send(200, b"", "application/vnd.fdsn.mseed")
                body = mock.station_answer(query) if service == "station" else mock.dataselect_answer(query)
                if body is None:
                    return self._send(204)
                content_type = "application/xml" if service == "station" else "application/vnd.fdsn.mseed"
                if fault == "short":
                    self._send(200, body[: len(body) // 2], content_type, length=len(body))
                    self.close_connection = True
                elif fault == "cut":
                    self._send(200, body[: len(body) // 2 + 100], content_type)
                else:
                    self._send(200, body, content_type)

        return Handler
