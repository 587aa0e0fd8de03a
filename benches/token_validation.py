#!/usr/bin/env python3
"""Cost of authentication on /v2: the same cheap GET (/v2/availability-zones) against three
fresh `shoal serve` nodes on loopback: noauth, the built-in identity with its validation
cache (the default), and the built-in identity with the cache off (token_cache_ttl = 0s).
One client, keep-alive, sequential requests; prints microseconds per request and the ratio
to noauth. Standard library only.

    python3 benches/token_validation.py target/release/shoal [requests]
"""

import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(binary: str, data: str, auth: str, env: dict) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen(
        [binary, "serve", "--auth", auth, "--data-dir", data, "--listen", f"127.0.0.1:{port}"],
        env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/")
            c.getresponse().read()
            return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"shoal ({auth}) did not answer within 60 s")


def token(port: int) -> str:
    c = http.client.HTTPConnection("127.0.0.1", port)
    body = json.dumps({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"name": "Default"}, "password": "bench"}}},
        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}})
    c.request("POST", "/identity/v3/auth/tokens", body, {"Content-Type": "application/json"})
    r = c.getresponse()
    r.read()
    assert r.status == 201, r.status
    return r.getheader("X-Subject-Token")


def per_request_us(port: int, tok: str, n: int) -> float:
    c = http.client.HTTPConnection("127.0.0.1", port)
    headers = {"X-Auth-Token": tok, "X-OpenStack-Manila-API-Version": "2.65"}
    for _ in range(200):  # warm-up
        c.request("GET", "/v2/availability-zones", headers=headers)
        c.getresponse().read()
    start_t = time.perf_counter()
    for _ in range(n):
        c.request("GET", "/v2/availability-zones", headers=headers)
        r = c.getresponse()
        r.read()
        assert r.status == 200, r.status
    return (time.perf_counter() - start_t) / n * 1e6


def main() -> None:
    binary = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
    setups = [
        ("noauth", "noauth", {}),
        ("builtin, cache 5s", "builtin", {"SHOAL_ADMIN_PASSWORD": "bench"}),
        ("builtin, no cache", "builtin", {"SHOAL_ADMIN_PASSWORD": "bench",
                                          "SHOAL_IDENTITY__TOKEN_CACHE_TTL": "0s"}),
    ]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, auth, env in setups:
            proc, port = start(binary, os.path.join(tmp, name.replace(" ", "-")), auth, env)
            try:
                tok = "admin:admin" if auth == "noauth" else token(port)
                results.append((name, min(per_request_us(port, tok, n) for _ in range(3))))
            finally:
                proc.terminate()
                proc.wait(timeout=30)
    base = results[0][1]
    print(f"{'setup':<20} {'us/request':>10} {'vs noauth':>10}")
    for name, us in results:
        print(f"{name:<20} {us:>10.0f} {us / base:>10.2f}")


if __name__ == "__main__":
    main()
