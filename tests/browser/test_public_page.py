"""What a public page keeps to itself, in a real browser: the admin password is never left in the browser's storage
(Gradio keeps each event's inputs in `localStorage` while its run history is on), and what a visitor types comes back
in a refusal as text, never as markup."""
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


def test_markup_typed_by_a_visitor_comes_back_as_text_in_the_refusal(admin_url, browser):
    page = new_page(browser, admin_url)
    typed = '<img src=x id=injected onerror="window.injected = 1">'
    page.locator("#mine input").fill(typed)  # an id of one's own to retract: the box takes any text
    page.locator("#mine input").press("Enter")
    page.locator("#retract").click()
    toast = page.get_by_test_id("toast-body").first
    toast.wait_for(timeout=30_000)
    assert "<img src=x id=inj" in toast.inner_text()  # shown as the visitor typed it (its first 40 characters)
    assert page.locator("#injected").count() == 0 and not page.evaluate("window.injected")
    page.close()
