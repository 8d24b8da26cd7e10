"""The home page is served by plugins/home_page.py: Datasette's index template and the plugins'
context, without the index view's visibility check of every table (the home page's first-hit
cost); the index's JSON stays Datasette's."""

import asyncio

import pytest

import publish_db


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    path = tmp_path_factory.mktemp("home") / "kb.db"
    publish_db.build(path)
    return publish_db.make_datasette(path)


def get(site, path):
    return asyncio.run(site.client.get(path))


def test_home_page_checks_no_table_visibility(site, monkeypatch):
    checked = []
    original = site.check_visibility

    async def counting(actor, *args, **kwargs):
        checked.append(args)
        return await original(actor, *args, **kwargs)

    monkeypatch.setattr(site, "check_visibility", counting)
    page = get(site, "/")
    assert page.status_code == 200
    assert 'class="kb-search"' in page.text  # the search box
    assert publish_db.metadata()["title"] in page.text
    assert checked == []
    get(site, "/kb")  # Datasette's own views still check: the count above is not vacuous
    assert checked


def test_home_page_keeps_the_plugins_context(site):
    page = get(site, "/").text
    assert f"last harvested from PubMed on {publish_db.LAST_RUN_STARTED[:10]}" in page


def test_index_json_is_still_datasettes(site):
    answer = get(site, "/.json")
    assert answer.status_code == 200 and "kb" in answer.json()
