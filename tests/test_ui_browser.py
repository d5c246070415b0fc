"""The UI in real headless Chromium (Debian's package) driven by Playwright.

Screenshots go to tests/output/. Without Chromium the test is skipped, unless
AI_DIGEST_QA_REQUIRE_BROWSER=1 (set by CI), where a missing browser is a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import pytest

OUTPUT = Path(__file__).resolve().parent / "output"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        if os.environ.get("AI_DIGEST_QA_REQUIRE_BROWSER") == "1":
            pytest.fail("Chromium is required here: apt-get install chromium chromium-driver")
        pytest.skip("no Chromium (apt-get install chromium) on this machine")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


def _ask_and_watch(page, question: str) -> dict[str, float | bool]:
    """Type ``question``, press Enter, and time the sources, the stream and the answer."""
    started = time.monotonic()
    page.fill("#question textarea", question)
    page.press("#question textarea", "Enter")
    page.wait_for_selector("#sources .src-card", timeout=120_000)
    sources_at = time.monotonic() - started
    answer = page.locator("#chat .message-row, #chat .message").last
    saw_partial = False
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if page.locator("#chat .answer-meta").count():
            break
        text = answer.inner_text()
        if text.strip() and not text.lstrip().startswith(("🔎", "✍️")):
            saw_partial = True  # tokens on screen before the answer is complete
        time.sleep(0.1)
    page.wait_for_selector("#chat .answer-meta", timeout=1000)
    return {"sources": sources_at, "answer": time.monotonic() - started,
            "partial": saw_partial}


def _click_first_citation(page) -> None:
    link = page.locator("#chat a.cite").first
    target = link.get_attribute("href").lstrip("#")
    link.click()
    card = page.locator(f"#{target}")
    card.wait_for(state="visible")
    page.wait_for_function(
        "id => document.getElementById(id).classList.contains('active')", arg=target)
    time.sleep(0.6)  # the smooth scroll
    box, viewport = card.bounding_box(), page.viewport_size
    assert box is not None and 0 <= box["y"] < viewport["height"], (box, viewport)
    assert len(page.context.pages) == 1  # the link scrolled, it opened no tab


def _open(browser, url: str, locale: str, ready: str):
    """A fresh page in ``locale``, once the app's status says ``ready``."""
    OUTPUT.mkdir(exist_ok=True)
    context = browser.new_context(locale=locale, viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(url)
    page.wait_for_selector(f"#status :text('{ready}')", timeout=120_000)
    return context, page


def test_question_streams_sources_then_answer_and_citations_open_passages(app_server,
                                                                           browser) -> None:
    context, page = _open(browser, app_server.url, "en-US", "Ready")
    assert page.locator("#send").inner_text().strip() == "Send"
    # About a Chinese article: the model translates, so the answer streams.
    timing = _ask_and_watch(page, "What was the acceptance rate at ICML 2024?")
    assert timing["sources"] < timing["answer"]
    assert timing["partial"], "the answer did not stream"
    answer = page.locator("#chat .answer-meta").last
    assert answer.is_visible()
    _click_first_citation(page)
    assert page.locator("#sources .src-card.active mark").count() == 1  # the cited sentence
    page.screenshot(path=str(OUTPUT / "ui-en.png"), full_page=True)

    page.click("#new_chat")
    page.wait_for_function("!document.querySelector('#sources .src-card')")
    assert page.locator("#chat a.cite").count() == 0
    context.close()


def test_chinese_browser_gets_a_chinese_interface_and_answer(app_server, browser) -> None:
    context, page = _open(browser, app_server.url, "zh-CN", "已就绪")
    assert page.locator("#send").inner_text().strip() == "发送"
    timing = _ask_and_watch(page, "Llama 2在透明度指数中得了多少分?")
    assert timing["sources"] < timing["answer"]
    text = page.locator("#chat .answer-meta").last.locator(
        "xpath=ancestor::*[contains(@class, 'message')][1]").inner_text()
    assert "54" in text, text
    assert page.locator("#sources h3").first.inner_text() == "出处"
    _click_first_citation(page)
    assert page.locator("#sources .src-card.active mark").count() == 1
    page.screenshot(path=str(OUTPUT / "ui-zh.png"), full_page=True)
    context.close()


# --- documents from the page --------------------------------------------------------------


@pytest.fixture(scope="module")
def upload_server(corpus_assistant, tmp_path_factory):
    """The real app on a copy of the corpus index, with its own uploads folder: the
    uploads must not reach the index the other tests share."""
    from conftest import AppServer

    folder = tmp_path_factory.mktemp("upload-app")
    shutil.copytree(corpus_assistant.config.index_dir, folder / "index")
    with AppServer(folder / "index", folder / "app.log",
                   uploads_dir=str(folder / "uploads")) as server:
        yield server


def _upload_files(folder: Path) -> list[Path]:
    from conftest import docx_bytes, multipage_pdf

    folder.mkdir(parents=True, exist_ok=True)
    pdf = folder / "青鸟计划报告.pdf"
    pdf.write_bytes(multipage_pdf([
        "青鸟计划年度报告\n第一章 背景:青鸟计划是一个研究城市鸟类迁徙的项目,始于二〇二一年。",
        "第二章 预算:青鸟计划二〇二六年的预算为三百七十万元,由林晓教授负责管理。",
    ]))
    memo = folder / "heron-memo.docx"
    memo.write_bytes(docx_bytes([
        ("title", "Heron Lab memo"),
        ("p", "The Heron Lab moved its field station to Lisbon in March 2026."),
        ("p", "Its director is Ada Quill, who joined from the Porto institute."),
    ]))
    return [pdf, memo]


def _cards(page) -> list[str]:
    return [card.inner_text() for card in page.locator("#sources .src-card").all()]


def test_documents_uploaded_from_the_page_are_cited_and_removable(upload_server, browser,
                                                                  tmp_path) -> None:
    pdf, memo = _upload_files(tmp_path)
    context, page = _open(browser, upload_server.url, "zh-CN", "已就绪")
    before = int(re.search(r"(\d+) 篇文档", page.locator("#status").inner_text()).group(1))
    page.get_by_text("已索引的文档").first.click()
    page.locator("#upload input[type=file]").set_input_files([str(pdf), str(memo)])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = page.locator("#upload_status").inner_text()
        if status.count("已索引") >= 2:
            break
        time.sleep(0.1)
    status = page.locator("#upload_status").inner_text()
    assert f"{pdf.name}:已索引" in status and f"{memo.name}:已索引" in status, status
    page.wait_for_selector(f"#documents :text('{memo.name}')", timeout=10_000)
    page.wait_for_selector(f"#status :text('{before + 2} 篇文档')", timeout=10_000)
    page.screenshot(path=str(OUTPUT / "ui-upload-zh.png"), full_page=True)

    _ask_and_watch(page, "青鸟计划二〇二六年的预算是多少?")
    answer = page.locator("#chat .answer-meta").last.locator(
        "xpath=ancestor::*[contains(@class, 'message')][1]").inner_text()
    assert "三百七十万" in answer, answer
    cited = page.locator("#sources .src-card.cited").first.inner_text()
    assert pdf.name in cited and "p. 2" in cited, cited
    page.screenshot(path=str(OUTPUT / "ui-upload-answer-zh.png"), full_page=True)
    context.close()

    context, page = _open(browser, upload_server.url, "en-US", "Ready")
    _ask_and_watch(page, "Where did the Heron Lab move its field station?")
    answer = page.locator("#chat .answer-meta").last.locator(
        "xpath=ancestor::*[contains(@class, 'message')][1]").inner_text()
    assert "Lisbon" in answer, answer
    assert memo.name in page.locator("#sources .src-card.cited").first.inner_text()

    page.get_by_text("Indexed documents").first.click()
    page.locator("#remove_choice input").click()
    page.locator("[role=option]", has_text=memo.name).click()
    page.click("#remove")
    page.wait_for_selector("#upload_status :text('Removed')", timeout=60_000)
    page.wait_for_function(
        "name => !document.querySelector('#documents').innerText.includes(name)",
        arg=memo.name, timeout=10_000)
    assert pdf.name in page.locator("#documents").inner_text()
    page.screenshot(path=str(OUTPUT / "ui-upload-removed-en.png"), full_page=True)
    page.click("#new_chat")
    page.wait_for_function("!document.querySelector('#sources .src-card')")
    page.fill("#question textarea", "Where did the Heron Lab move its field station?")
    page.press("#question textarea", "Enter")
    page.wait_for_selector("#chat .answer-meta", timeout=180_000)
    assert not any(memo.name in card for card in _cards(page))
    assert "Lisbon" not in page.locator("#chat").inner_text()
    context.close()
