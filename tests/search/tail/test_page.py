"""The live-tail page in Debian's Chromium, against uvicorn and a real ingest process."""

import json

import pytest
from playwright.sync_api import sync_playwright

from tests.search.tail.web import ARTIFACTS, launch_chromium, log_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

XSS = [
    "<script>window.__xss = 1</script>",
    '"><img src=x onerror="window.__xss = 2">',
    '<a href="javascript:window.__xss = 3">click</a>',
    "javascript:window.__xss=4",
    "<svg onload=window.__xss=5>",
    "{{ 7*7 }} ${7*7} <!-- comment -->",
    "\x1b]8;;javascript:window.__xss=6\x07link\x1b]8;;\x07 done",
]


def lines_text(page) -> list[str]:
    return page.eval_on_selector_all("#tail-log .line .msg", "nodes => nodes.map(n => n.textContent)")


def wait_for_text(page, text: str, timeout: float = 20_000) -> None:
    page.wait_for_function(
        "t => [...document.querySelectorAll('#tail-log .line .msg')].some(n => n.textContent === t)",
        arg=text,
        timeout=timeout,
    )


def test_it_tails_pauses_scrolls_back_and_renders_hostile_lines_inert(web, pusher, actors):
    pusher.push_sync("tenant-a", [f"before open {i:03d}" for i in range(250)])
    dialogs: list[str] = []
    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        log_in(page, web.url, "alice", "alice-password")
        page.goto(web.url + "/tail/")

        # The last 200 lines on open, oldest first.
        page.wait_for_function("() => document.querySelectorAll('#tail-log .line').length >= 200")
        shown = lines_text(page)
        assert shown == [f"before open {i:03d}" for i in range(50, 250)]

        # Live lines from a real ingest, hostile ones included.
        ansi = "\x1b[31mred\x1b[0m plain \x1b[1;32mbold green\x1b[0m\x1b[2K"
        doc = json.dumps({"status": 503, "msg": "<b>upstream</b>"})
        pusher.push_sync("tenant-a", [*XSS, ansi], stream="stderr")
        pusher.push_sync("tenant-a", [doc], level="error")
        wait_for_text(page, doc)
        shown = lines_text(page)
        for payload in XSS[:-1]:
            assert payload in shown
        assert "link done" in shown  # the OSC hyperlink is dropped, its text kept
        assert "red plain bold green" in shown
        assert page.evaluate("() => window.__xss") is None
        assert (
            page.eval_on_selector_all(
                "#tail-log img, #tail-log script, #tail-log svg, #tail-log a", "n => n.length"
            )
            == 0
        )
        red = page.eval_on_selector_all("#tail-log .ansi-fg-1", "nodes => nodes.map(n => n.textContent)")
        assert "red" in red
        assert page.eval_on_selector_all("#tail-log .stderr", "n => n.length") >= len(XSS)

        # JSON lines expand; level colours come from classes.
        json_row = page.locator("#tail-log .line", has_text="upstream").last
        assert "lvl-error" in json_row.get_attribute("class")
        json_row.locator(".json-toggle").click()
        assert '"status": 503' in json_row.locator("pre.json").text_content()

        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "live-tail-hostile-lines.png"))

        # Pause holds new lines back; resume shows them, in order.
        page.click("#tail-pause")
        pusher.push_sync("tenant-a", ["while paused 1", "while paused 2"])
        page.wait_for_function("() => /waiting/.test(document.getElementById('tail-status').textContent)")
        assert "while paused 1" not in lines_text(page)
        page.click("#tail-pause")
        wait_for_text(page, "while paused 2")
        shown = lines_text(page)
        assert shown.index("while paused 1") == shown.index("while paused 2") - 1

        # Scroll back into history through the websocket's keyset pages.
        page.click("#tail-earlier")
        wait_for_text(page, "before open 000")
        shown = lines_text(page)
        assert shown[:250] == [f"before open {i:03d}" for i in range(250)]
        assert shown.count("before open 100") == 1

        # A query filters on the server and its words are highlighted.
        page.click("#tail-pause")  # "load earlier" paused the view
        page.fill("#tail-query", '"needle" -hay')
        page.click("#tail-apply")
        page.wait_for_function("() => /live/.test(document.getElementById('tail-status').textContent)")
        pusher.push_sync("tenant-a", ["hay needle", "a Needle <i>in</i> it", "nothing"])
        wait_for_text(page, "a Needle <i>in</i> it")
        page.wait_for_timeout(500)
        assert lines_text(page)[-1] == "a Needle <i>in</i> it"
        assert "hay needle" not in lines_text(page)
        assert (
            page.eval_on_selector_all("#tail-log mark.hit", "n => n.map(x => x.textContent)")[-1] == "Needle"
        )

        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "live-tail.png"))
        assert dialogs == []
        assert errors == []
        browser.close()


def test_it_keeps_the_dom_capped_in_blocks_and_says_what_it_skipped(web, pusher, actors):
    # More lines than the cap (5,000) arrive: the oldest blocks leave the DOM whole, the rows
    # shown stay the newest ones in order, and whatever never reached the DOM is announced.
    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        page = browser.new_page()
        log_in(page, web.url, "alice", "alice-password")
        page.goto(web.url + "/tail/")
        page.wait_for_function("() => /live/.test(document.getElementById('tail-status').textContent)")
        for start in range(0, 6_000, 1_500):
            pusher.push_sync("tenant-a", [f"flood {i:05d}" for i in range(start, start + 1_500)])
        wait_for_text(page, "flood 05999")
        shown = lines_text(page)
        assert 4_900 < len(shown) <= 5_000
        numbers = [int(text.split()[1]) for text in shown]
        assert numbers == sorted(set(numbers))
        assert numbers[-1] == 5_999
        # Gaps only where a marker says so: after the last marker the lines run unbroken.
        classes = page.eval_on_selector_all(
            "#tail-log .line, #tail-log .skipped", "n => n.map(x => x.className)"
        )
        markers = [i for i, name in enumerate(classes) if name.startswith("skipped")]
        unbroken = numbers[len(numbers) - (len(classes) - 1 - markers[-1]) :] if markers else numbers
        assert unbroken == list(range(unbroken[0], 6_000))
        blocks = page.eval_on_selector_all("#tail-log > .chunk", "n => n.map(c => c.childElementCount)")
        assert all(count <= 100 for count in blocks)
        assert page.eval_on_selector_all("#tail-log > :not(.chunk)", "n => n.length") == 0
        skipped = page.eval_on_selector_all("#tail-log .skipped", "n => n.map(x => x.textContent)")
        # Lines dropped before drawing are counted in a marker; lines drawn and then trimmed
        # with their block are not (they were shown).
        assert all("lines skipped — overloaded" in text for text in skipped)
        browser.close()
