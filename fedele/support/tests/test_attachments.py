"""Attachment checks and HTML sanitising."""

from __future__ import annotations

import hashlib

import pytest
from django.test import override_settings

from fedele.shared.errors import ValidationFailed
from fedele.support.attachments import IncomingFile, check_files, safe_filename
from fedele.support.html import html_to_text, sanitise_html, text_to_html

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
PDF = b"%PDF-1.7\n" + b"x" * 32


def test_safe_filenames() -> None:
    assert safe_filename("../../etc/passwd") == "passwd"
    assert safe_filename("C:\\Users\\me\\foto.PNG") == "foto.PNG"
    assert safe_filename("a\x00b\x1fc.txt") == "abc.txt"
    assert safe_filename("Cafe\u0301.pdf") == "Café.pdf"
    assert safe_filename(".htaccess") == "htaccess"
    assert safe_filename("") == "attachment"
    assert safe_filename('x<>:"|?*.doc') == "x_______.doc"
    long_name = safe_filename("a" * 400 + ".xlsx")
    assert (len(long_name), long_name.endswith(".xlsx")) == (150, True)


def test_check_files_sniffs_and_hashes() -> None:
    checked = check_files(
        [IncomingFile("scan.pdf", PDF, declared_type="image/png"), IncomingFile("x.png", PNG)]
    )
    assert [(c.filename, c.content_type, c.size) for c in checked] == [
        ("scan.pdf", "application/pdf", 41),
        ("x.png", "image/png", 40),
    ]
    assert checked[1].sha256 == hashlib.sha256(PNG).hexdigest()
    assert check_files([IncomingFile("note.txt", "Ciao è".encode())])[0].content_type == "text/plain"
    assert check_files([IncomingFile("empty.txt", b"")])[0].size == 0


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("invoice.pdf", b"MZ\x90\x00" + b"\x00" * 60),  # a Windows program named as a PDF
        ("tool", b"\x7fELF\x02\x01\x01" + b"\x00" * 30),
        ("run.txt", b"#!/bin/sh\nrm -rf /\n"),
        ("setup.exe", b"hello"),
        ("macro.vbs", b"hello"),
        ("app.jar", b"PK\x03\x04" + b"\x00" * 30),
        ("page.html", b"<html><body><script>alert(1)</script></body></html>"),
        ("image.svg", b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"></svg>'),
        ("script.PS1", b"Write-Host hi"),
    ],
)
def test_programs_and_scripts_are_refused(name: str, content: bytes) -> None:
    with pytest.raises(ValidationFailed) as error:
        check_files([IncomingFile(name, content)])
    assert error.value.code == "attachment_type_refused"


def test_plain_html_without_script_is_accepted() -> None:
    checked = check_files([IncomingFile("mail.html", b"<html><body><p>Ciao</p></body></html>")])[0]
    assert (checked.size, checked.content_type) == (37, "text/html")


def test_size_and_count_limits() -> None:
    with pytest.raises(ValidationFailed) as error:
        check_files([IncomingFile("a.txt", b"x" * 11)], max_bytes=10)
    assert error.value.code == "attachment_too_large"
    assert check_files([IncomingFile("a.txt", b"x" * 10)], max_bytes=10)[0].size == 10
    with override_settings(FEDELE_SUPPORT_MAX_ATTACHMENTS=2):
        with pytest.raises(ValidationFailed) as error:
            check_files([IncomingFile(f"{n}.txt", b"x") for n in range(3)])
        assert error.value.code == "too_many_attachments"
    with override_settings(FEDELE_SUPPORT_MAX_ATTACHMENT_BYTES=5):
        with pytest.raises(ValidationFailed) as error:
            check_files([IncomingFile("a.txt", b"123456")])
        assert error.value.code == "attachment_too_large"


def test_sanitise_html() -> None:
    assert (
        sanitise_html('<p onclick="x">Hi <script>alert(1)</script><b>there</b></p>')
        == "<p>Hi <b>there</b></p>"
    )
    assert (
        sanitise_html('<a href="https://x.it" target="_blank">x</a>')
        == '<a href="https://x.it" rel="noopener noreferrer">x</a>'
    )
    assert sanitise_html('<a href="javascript:alert(1)">x</a>') == '<a rel="noopener noreferrer">x</a>'
    assert sanitise_html(
        '<img src="cid:logo@x"><img src="http://track.er/p.gif"><img src="data:image/png;base64,AA">'
    ) == ('<img src="cid:logo@x"><img><img>')
    assert sanitise_html('<img src="https://cdn.it/a.png" onerror="x">') == '<img src="https://cdn.it/a.png">'
    assert sanitise_html("<style>p{}</style><iframe src='x'></iframe><h2>T</h2>") == "<h2>T</h2>"
    assert sanitise_html("") == ""


def test_html_to_text_and_back() -> None:
    assert html_to_text("<p>Ciao&nbsp;Mario</p><ul><li>uno</li><li>due</li></ul><p>A<br>B</p>") == (
        "Ciao Mario\n- uno\n- due\nA\nB"
    )
    assert html_to_text("<script>x()</script>Testo") == "Testo"
    assert (
        text_to_html("Riga 1\nRiga <2>\n\nSecondo & ultimo")
        == "<p>Riga 1<br>Riga &lt;2&gt;</p><p>Secondo &amp; ultimo</p>"
    )
    assert text_to_html("   ") == ""
