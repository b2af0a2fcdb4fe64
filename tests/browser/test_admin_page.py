"""The Admin tab in a real browser: its actions work, and the password is never left in the browser's storage (Gradio
keeps each event's inputs in `localStorage` while its run history is on)."""
import pytest

from outwit.config import Config, Secret
from tests.pages import new_page
from tests.running_app import running_app

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def admin_url(tmp_path_factory):
    root = tmp_path_factory.mktemp("admin-page")
    config = Config(data_dir=root / "data", mnist_data="sample", admin_password=Secret(PASSWORD), robust_eps=0)
    with running_app(config, measured=True) as (url, _):
        yield url


def test_after_admin_actions_the_browser_keeps_nothing_of_the_password(admin_url, browser):
    page = new_page(browser, admin_url)
    page.get_by_role("tab", name="Admin").click()
    page.locator("#admin-password input").fill(PASSWORD)
    page.locator("#admin-example textarea, #admin-example input").first.fill("no-such-example")
    page.locator("#admin-hide").click()
    page.get_by_text("There is no example").first.wait_for(timeout=30_000)  # the password was right: checked next
    page.locator("#admin-round").click()
    page.locator("#admin-message").get_by_text("A round starts now").wait_for(timeout=30_000)
    kept = page.evaluate("""() => JSON.stringify({
        local: Object.entries(localStorage), session: Object.entries(sessionStorage), cookies: document.cookie})""")
    assert PASSWORD not in kept and "horse battery" not in kept
    page.close()
