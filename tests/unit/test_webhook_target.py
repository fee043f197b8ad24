"""Where a webhook may point (issue 3, item 2): the address table, with and without
private targets allowed, and names that resolve somewhere private."""

from __future__ import annotations

import socket

import pytest

from chalicelib.adapters import webhook_target
from chalicelib.adapters.webhook_target import UnsafeTarget
from tests.support.webhook_urls import MALFORMED, PRIVATE, PUBLIC


def _ids(table: list[tuple[str, str]]) -> list[str]:
    return [label for label, _ in table]


@pytest.mark.parametrize(("label", "url"), PRIVATE + MALFORMED, ids=_ids(PRIVATE + MALFORMED))
def test_refused_when_private_targets_are_not_allowed(label: str, url: str) -> None:
    with pytest.raises(UnsafeTarget):
        webhook_target.check(url, allow_private=False)


@pytest.mark.parametrize("url", PUBLIC)
def test_public_literal_addresses_are_accepted(url: str) -> None:
    target = webhook_target.check(url, allow_private=False)

    assert target.url == url
    assert len(target.addresses) == 1
    assert target.addresses[0] in url


def test_the_accepted_target_names_scheme_host_and_default_port() -> None:
    assert webhook_target.check("https://93.184.216.34/hook", allow_private=False) == webhook_target.Target(
        url="https://93.184.216.34/hook", scheme="https", host="93.184.216.34", port=443, addresses=("93.184.216.34",)
    )
    plain = webhook_target.check("HTTP://[2606:4700::1111]/hook", allow_private=False)
    assert (plain.scheme, plain.host, plain.port) == ("http", "2606:4700::1111", 80)


@pytest.mark.parametrize(("label", "url"), PRIVATE, ids=_ids(PRIVATE))
def test_private_addresses_are_accepted_when_the_stage_allows_them(label: str, url: str) -> None:
    assert webhook_target.check(url, allow_private=True).addresses


def test_allowing_private_targets_still_accepts_the_local_sink() -> None:
    target = webhook_target.check("http://127.0.0.1:9000/webhook", allow_private=True)

    assert (target.host, target.port, target.addresses) == ("127.0.0.1", 9000, ("127.0.0.1",))


@pytest.mark.parametrize(("label", "url"), MALFORMED, ids=_ids(MALFORMED))
def test_allowing_private_targets_never_admits_a_malformed_url(label: str, url: str) -> None:
    with pytest.raises(UnsafeTarget):
        webhook_target.check(url, allow_private=True)


@pytest.mark.parametrize(
    "url", ["ftp://127.0.0.1/hook", "http://user:secret@127.0.0.1:9000/hook", "http://admin@localhost/hook"]
)
def test_allowing_private_targets_still_refuses_other_schemes_and_user_info(url: str) -> None:
    with pytest.raises(UnsafeTarget):
        webhook_target.check(url, allow_private=True)


def _resolving_to(*addresses: str):
    """A getaddrinfo that answers every name with `addresses`, and records what it was asked."""
    asked: list[tuple[str, int]] = []

    def getaddrinfo(host, port, *args, **kwargs):
        asked.append((host, port))
        return [
            (
                socket.AF_INET6 if ":" in a else socket.AF_INET,
                socket.SOCK_STREAM,
                6,
                "",
                (a, port, 0, 0) if ":" in a else (a, port),
            )
            for a in addresses
        ]

    getaddrinfo.asked = asked
    return getaddrinfo


@pytest.mark.parametrize(
    "addresses",
    [
        ("10.1.2.3",),
        ("127.0.0.1",),
        ("169.254.169.254",),
        ("fd00::7",),
        ("fe80::1%eth0",),
        ("::ffff:192.168.0.10",),
        # One private answer among public ones is enough: the client may pick any of them.
        ("93.184.216.34", "192.168.0.10"),
        ("2606:4700::1111", "::1"),
    ],
)
def test_a_name_resolving_to_a_private_address_is_refused(monkeypatch, addresses: tuple[str, ...]) -> None:
    resolver = _resolving_to(*addresses)
    monkeypatch.setattr(socket, "getaddrinfo", resolver)

    with pytest.raises(UnsafeTarget, match="non-public"):
        webhook_target.check("https://hooks.example.com/titan", allow_private=False)
    assert resolver.asked == [("hooks.example.com", 443)]


def test_a_name_resolving_to_public_addresses_is_accepted_with_them_pinned(monkeypatch) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", _resolving_to("93.184.216.34", "2606:4700::1111", "93.184.216.34"))

    target = webhook_target.check("https://hooks.example.com:8443/titan", allow_private=False)

    assert (target.host, target.port) == ("hooks.example.com", 8443)
    assert target.addresses == ("93.184.216.34", "2606:4700::1111")


def test_a_name_that_does_not_resolve_is_refused(monkeypatch) -> None:
    def fail(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", fail)

    with pytest.raises(UnsafeTarget, match="does not resolve"):
        webhook_target.check("https://nowhere.example.com/hook", allow_private=True)
