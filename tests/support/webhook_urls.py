"""The webhook address table of issue 3, shared by the unit test of the check and the
API test that runs it through the subscribe route."""

from __future__ import annotations

# (why it is refused, URL) with private targets not allowed.
PRIVATE = [
    ("loopback", "http://127.0.0.1/hook"),
    ("loopback, other address", "http://127.8.9.10:8080/hook"),
    ("localhost", "http://localhost/hook"),
    ("localhost, capitals", "http://LocalHost:8000/hook"),
    ("IPv6 loopback", "http://[::1]/hook"),
    ("unspecified", "http://0.0.0.0/hook"),
    ("IPv6 unspecified", "http://[::]/hook"),
    ("cloud metadata", "http://169.254.169.254/latest/meta-data/"),
    ("link-local", "http://169.254.1.1/hook"),
    ("10/8", "http://10.0.0.1/hook"),
    ("10/8, top", "https://10.255.255.254/hook"),
    ("172.16/12", "http://172.16.0.1/hook"),
    ("172.16/12, top", "https://172.31.255.254/hook"),
    ("192.168/16", "http://192.168.1.1/hook"),
    ("100.64/10 (carrier-grade NAT)", "http://100.64.0.1/hook"),
    ("100.64/10, top", "http://100.127.255.254/hook"),
    ("fc00::/7", "http://[fc00::1]/hook"),
    ("fc00::/7, fd", "http://[fd12:3456:789a::1]/hook"),
    ("fe80::/10", "http://[fe80::1]/hook"),
    ("IPv4-mapped loopback", "http://[::ffff:127.0.0.1]/hook"),
    ("IPv4-mapped private", "http://[::ffff:10.0.0.1]/hook"),
    ("6to4 of loopback", "http://[2002:7f00:1::1]/hook"),
    ("decimal loopback", "http://2130706433/hook"),
    ("hex loopback", "http://0x7f000001/hook"),
    ("octal loopback", "http://0177.0.0.1/hook"),
    ("short loopback", "http://127.1/hook"),
    ("multicast", "http://224.0.0.1/hook"),
    ("broadcast", "http://255.255.255.255/hook"),
    ("documentation range", "http://[2001:db8::1]/hook"),
]

# Refused whatever the stage allows: not an acceptable URL at all.
MALFORMED = [
    ("ftp scheme", "ftp://93.184.216.34/hook"),
    ("file scheme", "file:///etc/passwd"),
    ("gopher scheme", "gopher://93.184.216.34:70/_hook"),
    ("javascript scheme", "javascript:alert(1)"),
    ("data scheme", "data:text/plain,hello"),
    ("no scheme", "93.184.216.34/hook"),
    ("relative", "/hook"),
    ("user-info", "https://user:secret@93.184.216.34/hook"),
    ("user-info, no password", "https://user@93.184.216.34/hook"),
    ("user-info hiding loopback", "http://93.184.216.34@127.0.0.1/hook"),
    ("too long", "https://93.184.216.34/" + "a" * 2048),
    ("no host", "http:///hook"),
    ("scheme only", "https://"),
    ("port only", "https://:443/hook"),
    ("port out of range", "http://93.184.216.34:99999/hook"),
    ("port not a number", "http://93.184.216.34:http/hook"),
    ("port zero", "http://93.184.216.34:0/hook"),
    ("whitespace", "http://93.184.216.34/ho ok"),
    ("control character", "http://93.184.216.34/hook\r\nX-Injected: 1"),
    ("empty", ""),
]

PUBLIC = [
    "http://93.184.216.34/hook",
    "https://93.184.216.34:8443/hooks/enrollment?student=79",
    "https://[2606:4700::1111]/hook",
    "http://[2606:4700::1111]:8080/hook",
    "https://1.1.1.1/" + "a" * (2048 - len("https://1.1.1.1/")),
]
