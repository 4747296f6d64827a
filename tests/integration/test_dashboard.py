"""The live dashboard in a real browser: headless Chromium driven by Selenium opens pxedust's page
and watches a host's row move as its boot does (the page is not reloaded: the moves come over the
Server-Sent Events stream), ending red with the reason of a failure; a screenshot is kept.
A missing browser, driver or selenium makes the test skip, not fail."""

import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_http import PXEDUST, Server, have  # noqa: E402  (test_http puts tests/lib on the path)
import browser  # noqa: E402

ARTIFACTS = os.environ.get("PXEDUST_ARTIFACTS", "build/artifacts")


class Dashboard(unittest.TestCase):
    def setUp(self):
        if not os.path.exists(PXEDUST):
            self.skipTest(f"no pxedust binary at {PXEDUST}")
        why = browser.missing() or (None if have("curl") else "curl not installed")
        if why:
            self.skipTest(why)
        # alpha fails its script: the template does not exist.
        self.server = Server('ipxe_template = "missing.ipxe"').start()
        self.driver = browser.chrome()

    def tearDown(self):
        self.driver.quit()
        log = self.server.daemon.log_tail()
        self.server.close()
        if any(e for e in (self._outcome.result.errors + self._outcome.result.failures) if e[0] is self):
            print(log, file=sys.stderr)

    def wait_stage(self, host, stage):
        from selenium.webdriver.support.ui import WebDriverWait
        WebDriverWait(self.driver, 30, poll_frequency=0.1).until(
            lambda d: browser.stage_of(d, host) == stage, f"{host}'s row never showed {stage}")

    def curl(self, path):
        subprocess.run(["curl", "-sS", "-o", "/dev/null", "--max-time", "30", self.server.url(path)],
                       check=True, timeout=60)

    def test_a_hosts_row_follows_its_boot_live(self):
        self.driver.get(self.server.url("/"))
        self.assertEqual(self.driver.title, "pxedust")
        self.wait_stage("alpha", "unseen")
        self.driver.execute_script("window.notReloaded = true;")
        self.curl("boot.ipxe")  # alpha (127.0.0.1) fetches its first file
        self.wait_stage("alpha", "boot_program")
        self.curl("ipxe/02-00-00-00-00-01")  # its script cannot be made
        self.wait_stage("alpha", "failed")
        self.assertTrue(self.driver.execute_script("return window.notReloaded === true;"),
                        "the page was reloaded: the row must move by the stream alone")
        # One script: the page replaces its rows on each update.
        row = self.driver.execute_script(
            "const r = document.querySelector('tr[data-host=\"alpha\"]'); const d = r.querySelector('td.detail');"
            "return {cls: r.className, text: d.textContent, color: getComputedStyle(d).color};")
        self.assertEqual(row["cls"], "failed")
        self.assertIn("ipxe_template missing.ipxe", row["text"])
        self.assertEqual(row["color"], "rgb(207, 34, 46)")  # red
        from selenium.webdriver.support.ui import WebDriverWait
        WebDriverWait(self.driver, 15).until(
            lambda d: "running, pid" in (browser.text_of(d, "#server") or ""), "the server's status never showed")
        self.assertIn("http on 127.0.0.1:", browser.text_of(self.driver, "#services"))
        self.assertRegex(browser.text_of(self.driver, "#health"),
                         r"^loop lag [0-9.]+ ms \(worst [0-9.]+ ms in the last minute\), [0-9.]+ MiB resident, "
                         r"\d+ in flight, up \d")
        self.assertEqual(browser.text_of(self.driver, '.count[data-stage="failed"] b'), "1")
        os.makedirs(ARTIFACTS, exist_ok=True)
        shot = os.path.join(ARTIFACTS, "dashboard.png")
        self.assertTrue(self.driver.save_screenshot(shot))
        print(f"\ndashboard screenshot: {os.path.abspath(shot)}", file=sys.stderr)


if __name__ == "__main__":
    unittest.main()
