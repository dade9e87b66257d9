"""Screenshots of the main pages for docs/screenshots/, desktop (1280x800) and phone (390x844).

Run against a running server with demo data:
    .venv/bin/python -m tests.browser.capture_screenshots --base-url http://127.0.0.1:8765 \
        --email agent@fedele.demo --password fedele-demo-2026 --customer <public_id>
"""

from __future__ import annotations

import argparse
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

from tests.browser.conftest import CHROMIUM_ARGS, CHROMIUM_PATH, DESKTOP, PHONE

OUTPUT = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
INVALID_PERSON = {
    "#id_first_name": "",
    "#id_last_name": "",
    "#id_fiscal_code": "RSSMRA85T10A562X",
    "#id_email": "mario.rossi@",
    "#id_phone": "12",
    "#id_postal_code": "001",
    "#id_city": "Roma",
}


def settle(page: Page) -> None:
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(400)  # charts animate in


def shoot(page: Page, name: str, *, full_page: bool = False) -> None:
    path = OUTPUT / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    print(f"{path.relative_to(OUTPUT.parents[1])}: {path.stat().st_size // 1024} KB")  # noqa: T201


def capture(page: Page, suffix: str, args: argparse.Namespace) -> None:
    page.goto("/accounts/login/")
    settle(page)
    shoot(page, f"login-{suffix}")
    page.fill("#id_email", args.email)
    page.fill("#id_password", args.password)
    page.click("#sign-in")
    page.wait_for_url(lambda url: "/accounts/login/" not in url)

    page.goto("/")
    settle(page)
    shoot(page, f"dashboard-{suffix}")

    page.goto("/customers/")
    settle(page)
    shoot(page, f"customer-list-{suffix}")

    page.goto(f"/customers/{args.customer}/")
    settle(page)
    shoot(page, f"customer-detail-{suffix}")

    page.goto("/customers/new/")
    for selector, value in INVALID_PERSON.items():
        page.fill(selector, value)
    page.click("#save-customer")
    settle(page)
    shoot(page, f"customer-form-errors-{suffix}")

    page.click("#account-button")
    page.click("text=/Sign out|Esci/")
    page.wait_for_url(lambda url: "/accounts/login/" in url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base-url", default="http://127.0.0.1:8765")
    parser.add_argument("--email", default="agent@fedele.demo")
    parser.add_argument("--password", default="fedele-demo-2026")
    parser.add_argument("--customer", required=True, help="public_id of the customer to show")
    parser.add_argument("--theme", default="light", choices=["light", "dark"])
    args = parser.parse_args()
    OUTPUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM_PATH, args=CHROMIUM_ARGS)
        for suffix, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
            context = browser.new_context(
                viewport=viewport,
                base_url=args.base_url,
                color_scheme=args.theme,
                is_mobile=suffix == "phone",
                has_touch=suffix == "phone",
            )
            capture(context.new_page(), suffix, args)
            context.close()
        browser.close()


if __name__ == "__main__":
    main()
