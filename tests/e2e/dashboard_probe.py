"""Watches one host's row on pxedust's dashboard from inside the lab's namespace (where the daemon's
address is reachable): python3 dashboard_probe.py URL HOST STAGE SCREENSHOT [TIMEOUT].
Creates SCREENSHOT.ready once the row is on the page; prints {"seen": [stages in the order the row
showed them], "reloaded": bool} and exits 0 once the row shows STAGE (after saving the screenshot),
1 if it never does."""

import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import browser  # noqa: E402


def main():
    url, host, stage, shot = sys.argv[1:5]
    timeout = float(sys.argv[5]) if len(sys.argv) > 5 else 600
    driver = browser.chrome()
    try:
        os.makedirs(os.path.dirname(os.path.abspath(shot)), exist_ok=True)
        driver.get(url)
        driver.execute_script("window.notReloaded = true;")
        seen = []
        deadline = time.time() + timeout
        while time.time() < deadline:
            now = browser.stage_of(driver, host)
            if now and (not seen or seen[-1] != now):
                if not seen:
                    open(shot + ".ready", "w").close()
                seen.append(now)
            if now == stage:
                break
            time.sleep(0.05)
        reloaded = not driver.execute_script("return window.notReloaded === true;")
        os.makedirs(os.path.dirname(os.path.abspath(shot)), exist_ok=True)
        driver.save_screenshot(shot)
        print(json.dumps({"seen": seen, "reloaded": reloaded}))
        return 0 if seen and seen[-1] == stage else 1
    finally:
        driver.quit()


if __name__ == "__main__":
    sys.exit(main())
