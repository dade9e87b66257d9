"""Test e-mails, and real mail servers for the e-mail tests: the support LMTP/SMTP receiver
(aiosmtpd) on a free port, and a private Dovecot IMAP server in a temporary directory.

Import the fixtures into a test module (``from fedele.support.tests.mailserver import dovecot``).
"""

from __future__ import annotations

import email.policy
import getpass
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from fedele.support.email.receiver import SupportController

DOVECOT = "/usr/sbin/dovecot"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, *, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


@contextmanager
def running_receiver(
    *, smtp: bool = False, data_size_limit: int | None = None
) -> Iterator[SupportController]:
    """The support receiver listening on 127.0.0.1:<free port> until the block ends."""
    controller = SupportController(
        hostname="127.0.0.1", port=free_port(), smtp=smtp, data_size_limit=data_size_limit
    )
    controller.start()
    try:
        yield controller
    finally:
        controller.stop()


@dataclass(frozen=True, slots=True)
class DovecotServer:
    host: str
    port: int
    username: str
    password: str
    maildir: Path  # the test user's Maildir (INBOX is its top level: new/, cur/, tmp/)

    def deliver(self, raw: bytes, *, name: str) -> Path:
        """Drop a message into INBOX the way a local delivery agent does (tmp/ then new/)."""
        owner = self.maildir.stat()
        for folder in ("tmp", "new", "cur"):
            (self.maildir / folder).mkdir(parents=True, exist_ok=True)
            if os.getuid() == 0:
                os.chown(self.maildir / folder, owner.st_uid, owner.st_gid)
        temporary = self.maildir / "tmp" / name
        temporary.write_bytes(raw)
        if os.getuid() == 0:
            os.chown(temporary, owner.st_uid, owner.st_gid)
        final = self.maildir / "new" / name
        temporary.rename(final)
        return final


def _dovecot_config(base: Path, port: int, user: str, password: str) -> Path:
    # The login process runs as an unprivileged user and must reach the sockets under base_dir.
    for directory in (base, *base.parents):
        if directory == Path(directory.anchor):
            break
        directory.chmod(directory.stat().st_mode | 0o055)
    run = base / "run"
    run.mkdir()
    mail_home = base / "home"
    (mail_home / "Maildir").mkdir(parents=True)
    users = base / "users"
    uid, gid = _mail_ids()
    for directory in (mail_home, mail_home / "Maildir"):
        os.chown(directory, uid, gid) if os.getuid() == 0 else None
    users.write_text(f"{user}:{{PLAIN}}{password}:{uid}:{gid}::{mail_home}::\n")
    me = getpass.getuser()
    # As root (CI), Dovecot refuses to run the login process as root: use its unprivileged users.
    root = os.getuid() == 0
    login_user = "dovenull" if root and _user_exists("dovenull") else me
    internal_user = "dovecot" if root and _user_exists("dovecot") else me
    config = base / "dovecot.conf"
    config.write_text(
        f"""
base_dir = {run}
state_dir = {base / "state"}
instance_name = fedele-test-{port}
listen = 127.0.0.1
protocols = imap
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {internal_user}
default_login_user = {login_user}
log_path = {base / "dovecot.log"}
info_log_path = {base / "dovecot.log"}
mail_location = maildir:~/Maildir
first_valid_uid = 1
first_valid_gid = 1
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {users}
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {users}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
  user = {login_user}
  chroot =
}}
service anvil {{
  chroot =
}}
""".lstrip()
    )
    (base / "state").mkdir()
    return config


def _mail_ids() -> tuple[int, int]:
    """Dovecot refuses UID 0 for mail: as root, the mailbox belongs to an unprivileged user."""
    if os.getuid() != 0:
        return os.getuid(), os.getgid()
    import pwd

    for name in ("mail", "nobody"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return entry.pw_uid, entry.pw_gid
    return 65534, 65534


def _user_exists(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


@contextmanager
def running_dovecot(base: Path) -> Iterator[DovecotServer]:
    if not os.path.exists(DOVECOT):
        pytest.skip(f"Dovecot is not installed ({DOVECOT} missing): apt-get install dovecot-imapd")
    port = free_port()
    user, password = "support", "dovecot-test-password"
    config = _dovecot_config(base, port, user, password)
    process = subprocess.Popen(  # noqa: S603 (a fixed binary and our own config file)
        [DOVECOT, "-F", "-c", str(config)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        try:
            wait_for_port(port, timeout=15)
        except TimeoutError:
            process.terminate()
            output = process.communicate(timeout=10)[0].decode("utf-8", "replace")
            log = (base / "dovecot.log").read_text() if (base / "dovecot.log").exists() else ""
            pytest.fail(f"Dovecot did not start:\n{output}\n{log}")
        yield DovecotServer(
            host="127.0.0.1", port=port, username=user, password=password, maildir=base / "home" / "Maildir"
        )
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture
def dovecot() -> Iterator[DovecotServer]:
    """A private Dovecot IMAP server for this test (skipped when Dovecot is not installed).

    Its directory is a short one directly under the temp dir: Dovecot's unix sockets live there and a
    socket path may not pass 108 bytes (pytest's per-test tmp_path under xdist easily does)."""
    base = Path(tempfile.mkdtemp(prefix="dovecot-"))
    try:
        with running_dovecot(base) as server:
            yield server
    finally:
        shutil.rmtree(base, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# Test messages


def make_email(
    *,
    sender: str = "Mario Rossi <mario.rossi@example.it>",
    to: str = "support@fedele.example",
    subject: str = "Il modem non si connette",
    body: str = "Da ieri sera la luce DSL lampeggia.",
    html: str = "",
    message_id: str = "<first.1@example.it>",
    in_reply_to: str = "",
    references: str = "",
    cc: str = "",
    attachments: list[tuple[str, bytes, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    if cc:
        message["Cc"] = cc
    message["Subject"] = subject
    message["Date"] = format_datetime(timezone.now())
    if message_id:
        message["Message-ID"] = message_id
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
    if references:
        message["References"] = references
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(body)
    if html:
        message.add_alternative(html, subtype="html")
    for filename, content, content_type in attachments or []:
        maintype, subtype = content_type.split("/", 1)
        message.add_attachment(content, maintype=maintype, subtype=subtype, filename=filename)
    return message.as_bytes(policy=email.policy.SMTP)  # CRLF line ends, as on the wire


def reply_to(original: Any, **overrides: Any) -> bytes:
    """A customer reply to an e-mail we sent (an ``EmailMessage`` from mail.outbox)."""
    sent = original.message()
    values: dict[str, Any] = {
        "subject": f"Re: {sent['Subject']}",
        "in_reply_to": sent["Message-ID"],
        "references": f"{sent.get('References', '')} {sent['Message-ID']}".strip(),
        "to": sent["From"],
    }
    values.update(overrides)
    return make_email(**values)


PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4"
    b"\x89\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7\x35\x81\x84\x00\x00\x00\x00IEND"
    b"\xaeB`\x82"
)
