"""Support API at scale, side by side with django-helpdesk 2.6.

Loads N tickets (default 1,000,000; --tickets 100000 for a quick run) into each system's own
PostgreSQL database with SQL (INSERT ... SELECT generate_series: valid rows, ticket numbers, one
customer message each, fedele's search_text so its full-text index holds every ticket), starts each
with uvicorn on 127.0.0.1 (same worker count), and measures with the same asyncio/httpx load generator,
for a fixed duration per operation and the same concurrency:

- create: fedele POST /api/v1/support/tickets; helpdesk POST /api/tickets/ (its DRF API);
- list:   first page (25) of open tickets, newest first: fedele GET /api/v1/support/tickets?status_kind=open;
          helpdesk GET /datatables_ticket_list/<query> (the JSON its ticket list page loads; its REST
          list endpoint reads every accessible ticket before paginating, so it is measured too, once);
- search: a word that occurs in 0.1% of tickets: fedele GET /api/v1/support/tickets/search?q=;
          helpdesk the same datatables endpoint with a search_string (its ticket list search).

django-helpdesk is installed at run time into its own venv (default /tmp/helpdesk-venv, created when
missing: python3.11 -m venv + pip install "django-helpdesk==2.6.*" psycopg uvicorn); its Django
project is generated into a temporary directory. Nothing of it is kept in this repository.
Its API uses HTTP Basic authentication; the peer project hashes passwords with MD5 so the password
check does not dominate its figures (fedele's API tokens are checked by a SHA-256 lookup).

Usage: python bench/run.py support_api [--tickets 1000000] [--seconds 20] [--concurrency 8]
       [--create-concurrency 16] [--no-fast-paths] [--create-only]

--create-concurrency sets the number of clients of the create load only (default: --concurrency), for
both systems alike: fedele's create fast path writes the requests that arrive together in one group
(ADR 0002), which pays only when several requests are in flight per server process.
--no-fast-paths serves fedele with every request through Django (the same settings otherwise), and
--create-only skips fedele's list and search loads: together, an A/B of the create path on a busy
machine, run back to back.
"""

# ruff: noqa: E501 - the long lines are SQL and Python inside the scripts this benchmark runs

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres")
FEDELE_DATABASE = "bench_support"
HELPDESK_DATABASE = "bench_helpdesk"
HELPDESK_VENV = Path(os.environ.get("BENCH_HELPDESK_VENV", "/tmp/helpdesk-venv"))
SEARCH_WORD = "codice424"  # subjects end with "codice" || (i % 1000): one ticket in a thousand
PAGE = 25

WORDS = [
    "fattura",
    "bolletta",
    "modem",
    "router",
    "linea",
    "fibra",
    "addebito",
    "rimborso",
    "contratto",
    "disdetta",
    "guasto",
    "consegna",
    "ordine",
    "pagamento",
    "iban",
    "indirizzo",
    "password",
    "accesso",
    "offerta",
    "sconto",
    "attivazione",
]

FEDELE_SETUP = """
from fedele.accounts.services import api_token_create, user_create
user = user_create(email="bench-supervisor@example.it", password=None, roles=["supervisor"])
print(api_token_create(user=user, name="bench")[1])
"""

# --- fedele data ------------------------------------------------------------------------------------

FEDELE_LOAD = """
import sys, time
import django
django.setup()
from django.db import connection
from fedele.support.models import TicketStatus, TicketType
count = int(sys.argv[1])
statuses = {s.code: s for s in TicketStatus.objects.all()}
# 10 buckets: 2 new, 3 open, 1 pending customer, 1 pending third party, 2 solved, 1 closed.
order = ["new", "new", "open", "open", "open", "pending_customer", "pending_third_party", "solved", "solved", "closed"]
ids = ",".join(str(statuses[c].pk) for c in order)
kinds = ",".join(f"'{statuses[c].kind}'" for c in order)
question = TicketType.objects.get(code="question").pk
words = sys.argv[2].split(",")
word_array = ",".join(f"'{w}'" for w in words)
started = time.perf_counter()
with connection.cursor() as cursor:
    for start in range(1, count + 1, 100_000):
        end = min(count, start + 99_999)
        cursor.execute(f'''
        INSERT INTO support_ticket (id, public_id, number, subject, requester_email, requester_name, language,
            channel, priority, status_kind, status_id, ticket_type_id, custom_fields, subject_kind,
            subject_reference, external_source, external_id, sla_breached, reopened_count, message_count,
            search_text, created_at, updated_at, last_customer_message_at, solved_at, closed_at)
        SELECT i, gen_random_uuid(),
            'T-' || CASE WHEN i > 999999 THEN i::text ELSE lpad(i::text, 6, '0') END,
            subject, 'cliente' || (i %% 50000) || '@example.it', 'Cliente ' || (i %% 50000), 'it',
            (ARRAY['email','portal','phone','chat','api'])[1 + i %% 5],
            (ARRAY['low','normal','normal','high','urgent'])[1 + i %% 5],
            (ARRAY[{kinds}])[1 + i %% 10], (ARRAY[{ids}])[1 + i %% 10], {question}, '{{}}', '', '', '', '',
            false, 0, 1,
            lower('T-' || CASE WHEN i > 999999 THEN i::text ELSE lpad(i::text, 6, '0') END || ' ' || subject
                  || ' Cliente ' || (i %% 50000) || ' cliente' || (i %% 50000) || '@example.it ' || body),
            created, created, created,
            CASE WHEN i %% 10 IN (7, 8, 9) THEN created + interval '1 day' END,
            CASE WHEN i %% 10 = 9 THEN created + interval '2 days' END
        FROM (
            SELECT i,
                'Problema ' || (ARRAY[{word_array}])[1 + i %% {len(words)}] || ' e '
                    || (ARRAY[{word_array}])[1 + (i / 7) %% {len(words)}] || ' codice' || (i %% 1000) AS subject,
                'Buongiorno, ho un problema con ' || (ARRAY[{word_array}])[1 + (i / 3) %% {len(words)}]
                    || ' da alcuni giorni. Potete aiutarmi? Grazie.' AS body,
                timestamptz '2024-01-01 08:00+00' + (i * interval '1 minute') AS created
            FROM generate_series(%s, %s) AS i
        ) AS source
        ''', [start, end])
        cursor.execute('''
        INSERT INTO support_ticketmessage (public_id, ticket_id, kind, channel, author_email, author_name,
            body_text, body_html, email_message_id, email_in_reply_to, email_references, email_to, email_cc,
            external_id, created_at)
        SELECT gen_random_uuid(), t.id, 'customer', t.channel, t.requester_email, t.requester_name,
            'Buongiorno, ho un problema da alcuni giorni. Potete aiutarmi? Grazie.', '', '', '', '', '', '', '',
            t.created_at
        FROM support_ticket t WHERE t.id BETWEEN %s AND %s
        ''', [start, end])
        print(f"fedele: {end} tickets", file=sys.stderr, flush=True)
    cursor.execute("SELECT setval(pg_get_serial_sequence('support_ticket', 'id'), %s)", [count])
    cursor.execute(
        "INSERT INTO shared_sequencecounter (series, last_value) VALUES ('support.ticket', %s) "
        "ON CONFLICT (series) DO UPDATE SET last_value = EXCLUDED.last_value", [count]
    )
    cursor.execute("ANALYZE support_ticket")
    cursor.execute("ANALYZE support_ticketmessage")
print(time.perf_counter() - started)
"""

# --- django-helpdesk peer project -------------------------------------------------------------------

HELPDESK_SETTINGS = """
import os
SECRET_KEY = "bench-helpdesk-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = [
    "django.contrib.admin", "django.contrib.auth", "django.contrib.contenttypes", "django.contrib.sessions",
    "django.contrib.messages", "django.contrib.staticfiles", "django.contrib.sites", "django.contrib.humanize",
    "rest_framework", "helpdesk",
]
SITE_ID = 1
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware", "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware", "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware", "django.contrib.messages.middleware.MessageMiddleware",
]
ROOT_URLCONF = "peer_urls"
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates", "DIRS": [], "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.debug", "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth", "django.contrib.messages.context_processors.messages",
    ]},
}]
DATABASES = {"default": {
    "ENGINE": "django.db.backends.postgresql", "NAME": os.environ["HELPDESK_DB"], "USER": "postgres",
    "HOST": "127.0.0.1", "PORT": "5432", "CONN_MAX_AGE": 60,
}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
STATIC_URL = "/static/"
LOGIN_URL = "/login/"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
HELPDESK_TEAMS_MODE_ENABLED = False
REST_FRAMEWORK = {"DEFAULT_AUTHENTICATION_CLASSES": [
    "rest_framework.authentication.SessionAuthentication", "rest_framework.authentication.BasicAuthentication",
]}
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}
"""

HELPDESK_URLS = """
from django.urls import include, path
urlpatterns = [path("", include("helpdesk.urls", namespace="helpdesk"))]
"""

HELPDESK_ASGI = """
import os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "peer_settings")
from django.core.asgi import get_asgi_application
application = get_asgi_application()
"""

HELPDESK_LOAD = """
import sys, time
import django
django.setup()
from django.contrib.auth import get_user_model
from django.db import connection
from helpdesk.models import Queue
count = int(sys.argv[1])
words = sys.argv[2].split(",")
word_array = ",".join(f"'{w}'" for w in words)
User = get_user_model()
user = User.objects.create_superuser("bench", "bench@example.it", "bench-password")
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
session = SessionStore()
session[SESSION_KEY] = str(user.pk)
session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
session[HASH_SESSION_KEY] = user.get_session_auth_hash()
session.create()
queue = Queue.objects.create(title="Assistenza", slug="assistenza", email_address="assistenza@example.it")
started = time.perf_counter()
with connection.cursor() as cursor:
    for start in range(1, count + 1, 100_000):
        end = min(count, start + 99_999)
        cursor.execute(f'''
        INSERT INTO helpdesk_ticket (id, title, queue_id, created, modified, submitter_email, status, on_hold,
            description, resolution, priority, secret_key)
        SELECT i,
            'Problema ' || (ARRAY[{word_array}])[1 + i %% {len(words)}] || ' e '
                || (ARRAY[{word_array}])[1 + (i / 7) %% {len(words)}] || ' codice' || (i %% 1000),
            {queue.pk}, created, created, 'cliente' || (i %% 50000) || '@example.it',
            (ARRAY[1, 1, 1, 1, 1, 1, 1, 3, 3, 4])[1 + i %% 10], false,
            'Buongiorno, ho un problema con ' || (ARRAY[{word_array}])[1 + (i / 3) %% {len(words)}]
                || ' da alcuni giorni. Potete aiutarmi? Grazie.',
            NULL, (ARRAY[5, 3, 3, 2, 1])[1 + i %% 5], md5(i::text)
        FROM (SELECT i, timestamptz '2024-01-01 08:00+00' + (i * interval '1 minute') AS created
              FROM generate_series(%s, %s) AS i) AS source
        ''', [start, end])
        cursor.execute('''
        INSERT INTO helpdesk_followup (ticket_id, date, title, comment, public, new_status, message_id, time_spent)
        SELECT id, created, 'Ticket Opened', description, true, NULL, NULL, NULL
        FROM helpdesk_ticket WHERE id BETWEEN %s AND %s
        ''', [start, end])
        print(f"helpdesk: {end} tickets", file=sys.stderr, flush=True)
    cursor.execute("SELECT setval(pg_get_serial_sequence('helpdesk_ticket', 'id'), %s)", [count])
    cursor.execute("ANALYZE helpdesk_ticket")
    cursor.execute("ANALYZE helpdesk_followup")
print(session.session_key)
print(queue.pk)
print(time.perf_counter() - started)
"""

# --- measuring --------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))]


Request = Callable[[httpx.AsyncClient, int], Awaitable[httpx.Response]]


async def _load(
    base_url: str, headers: dict[str, str], seconds: float, concurrency: int, request: Request, expected: int
) -> dict[str, Any]:
    """Closed loop: `concurrency` clients send requests back to back for `seconds`."""
    latencies: list[float] = []
    errors: list[str] = []
    counter = iter(range(10**9))
    deadline = time.perf_counter() + seconds

    async def client_loop() -> None:
        async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=120) as client:
            while time.perf_counter() < deadline:
                index = next(counter)
                started = time.perf_counter()
                try:
                    response = await request(client, index)
                except httpx.HTTPError as error:
                    errors.append(type(error).__name__)
                    continue
                latencies.append(time.perf_counter() - started)
                if response.status_code != expected:
                    errors.append(f"{response.status_code}: {response.text[:200]}")

    started = time.perf_counter()
    await asyncio.gather(*(client_loop() for _ in range(concurrency)))
    wall = time.perf_counter() - started
    if not latencies:
        return {
            "requests": 0,
            "errors": len(errors),
            "first_error": errors[:1],
            "wall_seconds": round(wall, 2),
        }
    return {
        "requests": len(latencies),
        "errors": len(errors),
        "first_error": errors[:1],
        "wall_seconds": round(wall, 2),
        "throughput_rps": round(len(latencies) / wall, 1),
        "latency_ms": {
            "p50": round(_percentile(latencies, 0.50) * 1000, 1),
            "p95": round(_percentile(latencies, 0.95) * 1000, 1),
            "max": round(max(latencies) * 1000, 1),
            "mean": round(statistics.fmean(latencies) * 1000, 1),
        },
    }


def _run(args: list[str], env: dict[str, str], cwd: Path = REPO, timeout: int = 7200) -> str:
    completed = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:4])} failed:\n{completed.stderr[-3000:]}")
    return completed.stdout


def _serve(
    python: str, app: str, env: dict[str, str], cwd: Path, workers: int, probe: str
) -> tuple[Any, str]:
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [
            python,
            "-m",
            "uvicorn",
            app,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--lifespan",
            "off",
            "--workers",
            str(workers),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd=cwd,
        env=env,
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"uvicorn ({app}) exited before it served a request")
        try:
            if httpx.get(f"{base_url}{probe}", timeout=5).status_code < 500:
                return server, base_url
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    _stop(server)
    raise RuntimeError(f"uvicorn ({app}) did not answer in time")


def _stop(server: Any) -> None:
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(timeout=10)


def _admin(statement: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as connection:
        connection.execute(statement)  # type: ignore[arg-type,unused-ignore]


def _fresh_database(name: str) -> str:
    _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    _admin(f"CREATE DATABASE {name}")
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def _fedele_body(index: int) -> dict[str, Any]:
    word = WORDS[index % len(WORDS)]
    return {
        "subject": f"Nuovo problema {word} n. {index}",
        "body": f"Buongiorno, da ieri ho un problema con {word}. Potete aiutarmi?",
        "channel": "api",
        "requester_email": f"nuovo{index % 5000}@example.it",
        "requester_name": f"Nuovo Cliente {index % 5000}",
        "priority": "normal",
    }


def measure_fedele(
    tickets: int,
    seconds: float,
    concurrency: int,
    workers: int,
    create_concurrency: int,
    *,
    fast_paths: bool = True,
    create_only: bool = False,
) -> dict[str, Any]:
    settings_module = "bench.bench_settings"
    python_path = str(REPO)
    if not fast_paths:
        # The same settings with the fast paths off (ADR 0002): every request through Django, for an
        # A/B comparison on the same machine at the same time.
        settings_dir = tempfile.mkdtemp(prefix="fedele-bench-settings-")
        Path(settings_dir, "bench_no_fast_paths.py").write_text(
            "from bench.bench_settings import *  # noqa: F403\nFEDELE_FAST_PATHS = False\n"
        )
        settings_module = "bench_no_fast_paths"
        python_path = f"{REPO}{os.pathsep}{settings_dir}"
    env = {
        **os.environ,
        "PYTHONPATH": python_path,
        "DJANGO_SETTINGS_MODULE": settings_module,
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "bench-secret-key-not-for-production",
        "LOG_LEVEL": "WARNING",
        # After-commit work (event dispatch, e-mails, pushes) goes to the queue, as in production.
        "BENCH_QUEUE_TASKS": "1",
        "DATABASE_URL": _fresh_database(FEDELE_DATABASE),
    }
    env.pop("REDIS_URL", None)
    _run([PYTHON, "manage.py", "migrate", "--noinput", "-v0"], env)
    token = _run([PYTHON, "manage.py", "shell", "-c", FEDELE_SETUP], env).strip().splitlines()[-1]
    load_seconds = float(
        _run([PYTHON, "-c", FEDELE_LOAD, str(tickets), ",".join(WORDS)], env).strip().splitlines()[-1]
    )
    server, base_url = _serve(PYTHON, "config.asgi:application", env, REPO, workers, "/healthz")
    headers = {"Authorization": f"Bearer {token}"}

    async def create(client: httpx.AsyncClient, index: int) -> httpx.Response:
        return await client.post("/api/v1/support/tickets", json=_fedele_body(index))

    async def listing(client: httpx.AsyncClient, index: int) -> httpx.Response:
        return await client.get(f"/api/v1/support/tickets?status_kind=open&ordering=-id&limit={PAGE}")

    async def search(client: httpx.AsyncClient, index: int) -> httpx.Response:
        return await client.get(f"/api/v1/support/tickets/search?q={SEARCH_WORD}&limit={PAGE}")

    try:
        checks = _checks(base_url, headers, listing, search)
        results: dict[str, Any] = {}
        if not create_only:
            results["list_open_first_page"] = asyncio.run(
                _load(base_url, headers, seconds, concurrency, listing, 200)
            )
            results["search"] = asyncio.run(_load(base_url, headers, seconds, concurrency, search, 200))
        results["create"] = asyncio.run(_load(base_url, headers, seconds, create_concurrency, create, 201))
    finally:
        _stop(server)
    return {
        "system": "fedele",
        "fast_paths": fast_paths,
        "load_seconds": round(load_seconds, 1),
        "checks": checks,
        **results,
    }


def _checks(base_url: str, headers: dict[str, str], listing: Request, search: Request) -> dict[str, Any]:
    async def run() -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=300) as client:
            listed = await listing(client, 0)
            found = await search(client, 0)
        return {
            "list_status": listed.status_code,
            "search_status": found.status_code,
            "list_rows_on_first_page": _rows(listed),
            "search_hits_on_first_page": _rows(found),
        }

    return asyncio.run(run())


def _rows(response: httpx.Response) -> int | None:
    try:
        body = response.json()
    except ValueError:
        return None
    items = body.get("items", body.get("data")) if isinstance(body, dict) else None
    return len(items) if isinstance(items, list) else None


def _ensure_helpdesk_venv() -> str:
    python = HELPDESK_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run(["python3.11", "-m", "venv", str(HELPDESK_VENV)], check=True)
        subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "-q",
                "django-helpdesk==2.6.*",
                "psycopg[binary]",
                "uvicorn",
            ],
            check=True,
        )
    version = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('django-helpdesk'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return version


def measure_helpdesk(
    tickets: int, seconds: float, concurrency: int, workers: int, create_concurrency: int
) -> dict[str, Any]:
    version = _ensure_helpdesk_venv()
    python = str(HELPDESK_VENV / "bin" / "python")
    _fresh_database(HELPDESK_DATABASE)
    with tempfile.TemporaryDirectory(prefix="helpdesk-peer-") as directory:
        project = Path(directory)
        (project / "peer_settings.py").write_text(HELPDESK_SETTINGS)
        (project / "peer_urls.py").write_text(HELPDESK_URLS)
        (project / "peer_asgi.py").write_text(HELPDESK_ASGI)
        env = {
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": str(project),
            "DJANGO_SETTINGS_MODULE": "peer_settings",
            "HELPDESK_DB": HELPDESK_DATABASE,
        }
        _run([python, "-m", "django", "migrate", "--noinput", "-v0"], env, cwd=project)
        lines = _run([python, "-c", HELPDESK_LOAD, str(tickets), ",".join(WORDS)], env, cwd=project).split()
        session_key, queue_id, load_seconds = lines[-3], int(lines[-2]), float(lines[-1])
        server, base_url = _serve(python, "peer_asgi:application", env, project, workers, "/login/")
        auth = base64.b64encode(b"bench:bench-password").decode()
        headers = {"Authorization": f"Basic {auth}"}
        list_query = _b64(
            {
                "filtering": {"status__in": [1, 2]},
                "sorting": "created",
                "sortreverse": True,
                "search_string": "",
            }
        )
        search_query = _b64(
            {"filtering": {}, "sorting": "created", "sortreverse": True, "search_string": SEARCH_WORD}
        )
        table = f"draw=1&start=0&length={PAGE}&order%5B0%5D%5Bcolumn%5D=5&order%5B0%5D%5Bdir%5D=desc"

        async def create(client: httpx.AsyncClient, index: int) -> httpx.Response:
            body = _fedele_body(index)
            data = {
                "queue": queue_id,
                "title": body["subject"],
                "description": body["body"],
                "submitter_email": body["requester_email"],
                "priority": 3,
            }
            return await client.post("/api/tickets/", json=data)

        async def listing(client: httpx.AsyncClient, index: int) -> httpx.Response:
            return await client.get(f"/datatables_ticket_list/{list_query}?{table}")

        async def search(client: httpx.AsyncClient, index: int) -> httpx.Response:
            return await client.get(f"/datatables_ticket_list/{search_query}?{table}")

        async def rest_list(client: httpx.AsyncClient, index: int) -> httpx.Response:
            return await client.get("/api/tickets/?status=1")

        # Datatables needs a signed-in staff session; the REST API takes Basic auth.
        session_headers = {"Cookie": f"sessionid={session_key}"}
        try:
            checks = _checks(base_url, session_headers, listing, search)
            results = {
                "list_open_first_page": asyncio.run(
                    _load(base_url, session_headers, seconds, concurrency, listing, 200)
                ),
                "search": asyncio.run(_load(base_url, session_headers, seconds, concurrency, search, 200)),
                "create": asyncio.run(_load(base_url, headers, seconds, create_concurrency, create, 201)),
                "rest_list_open_one_request": asyncio.run(_load(base_url, headers, 1, 1, rest_list, 200)),
            }
        finally:
            _stop(server)
    return {
        "system": f"django-helpdesk {version}",
        "load_seconds": round(load_seconds, 1),
        "checks": checks,
        **results,
    }


def _b64(query: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(query).encode()).decode("ascii")


def _ratios(fedele: dict[str, Any], peer: dict[str, Any]) -> dict[str, Any]:
    ratios: dict[str, Any] = {}
    for operation in ("create", "list_open_first_page", "search"):
        ours, theirs = fedele.get(operation, {}), peer.get(operation, {})
        if ours.get("throughput_rps") and theirs.get("throughput_rps"):
            ratios[operation] = {
                "throughput": round(ours["throughput_rps"] / theirs["throughput_rps"], 2),
                "p95_latency": round(theirs["latency_ms"]["p95"] / ours["latency_ms"]["p95"], 2),
            }
        else:
            ratios[operation] = None
    return ratios


def run(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="support_api")
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=20.0, help="duration of each operation's load")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--create-concurrency",
        type=int,
        default=None,
        help="clients of the create load, for both systems (default: --concurrency)",
    )
    parser.add_argument(
        "--no-fast-paths",
        action="store_true",
        help="serve fedele with FEDELE_FAST_PATHS=False (every request through Django), for an A/B run",
    )
    parser.add_argument(
        "--create-only", action="store_true", help="measure fedele's create only (no list, no search)"
    )
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers for each system")
    parser.add_argument("--skip-helpdesk", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep both databases afterwards")
    args = parser.parse_args(argv)
    if not 1_000 <= args.tickets <= 5_000_000:
        parser.error("tickets must be 1,000-5,000,000")
    if not (1 <= args.concurrency <= 64 and 1 <= args.workers <= 8 and 1 <= args.seconds <= 600):
        parser.error("concurrency 1-64, workers 1-8, seconds 1-600")
    create_concurrency = args.create_concurrency if args.create_concurrency is not None else args.concurrency
    if not 1 <= create_concurrency <= 64:
        parser.error("create concurrency 1-64")
    results: list[dict[str, Any]] = []
    try:
        fedele = measure_fedele(
            args.tickets,
            args.seconds,
            args.concurrency,
            args.workers,
            create_concurrency,
            fast_paths=not args.no_fast_paths,
            create_only=args.create_only,
        )
        results.append(fedele)
        peer: dict[str, Any] = {"system": "django-helpdesk", "skipped": "--skip-helpdesk"}
        if not args.skip_helpdesk:
            peer = measure_helpdesk(
                args.tickets, args.seconds, args.concurrency, args.workers, create_concurrency
            )
        results.append(peer)
    finally:
        if not args.keep:
            for name in (FEDELE_DATABASE, HELPDESK_DATABASE):
                _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    return {
        "benchmark": "support_api",
        "parameters": {
            "tickets": args.tickets,
            "seconds_per_operation": args.seconds,
            "concurrency": args.concurrency,
            "create_concurrency": create_concurrency,
            "uvicorn_workers": args.workers,
            "page_size": PAGE,
            "search_word": SEARCH_WORD,
        },
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        },
        "equivalents": {
            "create": "fedele POST /api/v1/support/tickets | helpdesk POST /api/tickets/ (DRF)",
            "list_open_first_page": "fedele GET /api/v1/support/tickets?status_kind=open | helpdesk GET "
            "/datatables_ticket_list/<open, newest first> (its list page's JSON)",
            "search": "fedele GET /api/v1/support/tickets/search?q= (full-text index) | helpdesk datatables "
            "with search_string (its ticket list search, ILIKE over several columns)",
        },
        "results": results,
        "fedele_vs_helpdesk": _ratios(results[0], results[1]) if len(results) == 2 else None,
    }


if __name__ == "__main__":
    print(json.dumps(run(sys.argv[1:]), indent=2))
