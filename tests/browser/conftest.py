import pytest

from outwit.config import Config
from tests.running_app import running_app


@pytest.fixture(scope="module")
def page_url(tmp_path_factory):
    """The app as `python app.py` serves it, for one test module: (url, services)."""
    root = tmp_path_factory.mktemp("browser")
    with running_app(Config(data_dir=root / "data", mnist_data="sample")) as served_app:
        yield served_app
