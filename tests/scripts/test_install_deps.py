"""scripts/install-deps.sh run for real, with every command that would change the machine replaced
by a fake earlier on PATH: dpkg-query (reports the packages in FAKE_MISSING as not installed), apt-get
(records each call, and during `install` whether the policy file is there and what it answers),
sudo (records, then runs the command, except absolute paths such as /etc/init.d/x, which it only
records), systemctl and update-rc.d (record), id (reports FAKE_UID). The policy file is a temp file
(PXEDUST_POLICY_RC), so nothing outside the test's temp dir is touched.

Each case runs as a user with sudo (uid 1000: every privileged command goes through the fake sudo)
and as root (uid 0: sudo is never called).

PXEDUST_INSTALL_DEPS names another script to test (to show a case fails against an older one)."""

import os
import shlex
import shutil
import subprocess
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.environ.get("PXEDUST_INSTALL_DEPS", os.path.join(HERE, "..", "..", "scripts", "install-deps.sh"))

# Each fake appends one line to $FAKE_LOG: its name and arguments.
FAKES = {
    "dpkg-query": r"""
pkg=${!#}
case " $FAKE_MISSING " in
  *" $pkg "*) exit 1 ;;
esac
printf 'install ok installed'
""",
    "apt-get": r"""
if [[ $1 == install ]]; then
  if [[ -e $PXEDUST_POLICY_RC ]]; then
    exists=1
    if [[ -x $PXEDUST_POLICY_RC ]]; then "$PXEDUST_POLICY_RC"; answer=$?; else answer=not-executable; fi
  else
    exists=0; answer=none
  fi
  echo "policy exists=$exists answer=$answer" >>"$FAKE_LOG"
  exit "${FAKE_APT_RC:-0}"
fi
""",
    "sudo": r"""
if [[ $1 == /* ]]; then echo "refused $*" >>"$FAKE_LOG"; exit 0; fi
exec "$@"
""",
    "systemctl": "",
    "update-rc.d": "",
    "id": r"""
if [[ $1 == -u ]]; then echo "$FAKE_UID"; else echo "uid=$FAKE_UID"; fi
""",
}

SITE_POLICY = b"#!/bin/sh\n# the site's own policy: left as it is\nexit 0\n"


class InstallDeps(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="pxedust-install-deps-")
        self.bin = os.path.join(self.dir, "bin")
        os.mkdir(self.bin)
        for name, body in FAKES.items():
            path = os.path.join(self.bin, name)
            with open(path, "w") as f:
                f.write(f'#!/bin/bash\necho "{name} $*" >>"$FAKE_LOG"\n{body}\nexit 0\n')
            os.chmod(path, 0o755)
        self.policy = os.path.join(self.dir, "policy-rc.d")
        self.log = os.path.join(self.dir, "log")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def run_script(self, uid, missing, apt_rc=0):
        open(self.log, "w").close()
        env = {
            "PATH": f"{self.bin}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "PXEDUST_POLICY_RC": self.policy,
            "FAKE_LOG": self.log,
            "FAKE_MISSING": " ".join(missing),
            "FAKE_UID": str(uid),
            "FAKE_APT_RC": str(apt_rc),
        }
        r = subprocess.run(["bash", SCRIPT], env=env, capture_output=True, timeout=60)
        with open(self.log) as f:
            calls = f.read().splitlines()
        self.last = f"exit {r.returncode}\nstdout:\n{r.stdout.decode()}\nstderr:\n{r.stderr.decode()}\ncalls:\n" + \
                    "\n".join(c for c in calls if not c.startswith("dpkg-query"))
        return r.returncode, calls

    def write_site_policy(self):
        with open(self.policy, "wb") as f:
            f.write(SITE_POLICY)
        os.chmod(self.policy, 0o755)
        st = os.stat(self.policy)
        return (st.st_mode, st.st_mtime_ns, st.st_ino)

    def assert_site_policy_untouched(self, before):
        st = os.stat(self.policy)
        self.assertEqual((st.st_mode, st.st_mtime_ns, st.st_ino), before, self.last)
        with open(self.policy, "rb") as f:
            self.assertEqual(f.read(), SITE_POLICY, self.last)

    def privileged_calls(self, calls):
        return [c for c in calls if c.split()[0] in ("sudo", "refused")]

    def check_sudo_use(self, uid, calls):
        # As root sudo is never needed; otherwise apt-get only ever runs through it.
        if uid == 0:
            self.assertEqual(self.privileged_calls(calls), [], self.last)
        else:
            apt = [c for c in calls if c.startswith("sudo apt-get")]
            self.assertEqual(len(apt), len([c for c in calls if c.startswith("apt-get")]), self.last)

    def test_a_existing_policy_file_is_kept_and_the_install_succeeds(self):
        for uid in (1000, 0):
            with self.subTest(uid=uid):
                before = self.write_site_policy()
                rc, calls = self.run_script(uid, ["atftp"])
                self.assertEqual(rc, 0, self.last)
                self.assertIn("apt-get install -y -qq --no-install-recommends atftp", calls, self.last)
                # The site's file was in force during the install, and is exactly as it was after.
                self.assertIn("policy exists=1 answer=0", calls, self.last)
                self.assert_site_policy_untouched(before)
                self.check_sudo_use(uid, calls)
                os.unlink(self.policy)

    def test_b_policy_file_denies_services_during_the_install_and_is_removed(self):
        for uid in (1000, 0):
            with self.subTest(uid=uid):
                rc, calls = self.run_script(uid, ["atftp"])
                self.assertEqual(rc, 0, self.last)
                self.assertIn("policy exists=1 answer=101", calls, self.last)
                self.assertFalse(os.path.lexists(self.policy), self.last)
                self.check_sudo_use(uid, calls)
                if uid != 0:  # written, made executable and removed with sudo
                    q = shlex.quote(self.policy)
                    for expected in (f"sudo tee {q}", f"sudo chmod +x {q}", f"sudo rm -f {q}"):
                        self.assertIn(expected, calls, self.last)

    def test_c_failed_install_fails_the_script_and_still_removes_the_policy_file(self):
        for uid in (1000, 0):
            with self.subTest(uid=uid, policy="created"):
                rc, calls = self.run_script(uid, ["atftp"], apt_rc=100)
                self.assertNotEqual(rc, 0, self.last)
                self.assertIn("policy exists=1 answer=101", calls, self.last)
                self.assertFalse(os.path.lexists(self.policy), self.last)
            with self.subTest(uid=uid, policy="existing"):
                before = self.write_site_policy()
                rc, calls = self.run_script(uid, ["atftp"], apt_rc=100)
                self.assertNotEqual(rc, 0, self.last)
                self.assert_site_policy_untouched(before)
                os.unlink(self.policy)

    def test_d_nothing_missing_installs_nothing(self):
        for uid in (1000, 0):
            for existing in (False, True):
                with self.subTest(uid=uid, existing_policy=existing):
                    before = self.write_site_policy() if existing else None
                    rc, calls = self.run_script(uid, [])
                    self.assertEqual(rc, 0, self.last)
                    self.assertEqual([c for c in calls if c.startswith(("apt-get", "sudo"))], [], self.last)
                    if existing:
                        self.assert_site_policy_untouched(before)
                        os.unlink(self.policy)
                    else:
                        self.assertFalse(os.path.lexists(self.policy), self.last)

    def test_e_services_of_daemons_installed_now_are_kept_off(self):
        # prometheus is installed for promtool; its service must not run, now or at boot.
        rc, calls = self.run_script(1000, ["prometheus"])
        self.assertEqual(rc, 0, self.last)
        self.assertIn("systemctl disable prometheus", calls, self.last)
        self.assertIn("update-rc.d prometheus disable", calls, self.last)
        self.assertFalse([c for c in calls if "isc-dhcp-server" in c or "kea-dhcp4-server" in c], self.last)
        self.assertFalse(os.path.lexists(self.policy), self.last)


if __name__ == "__main__":
    unittest.main()
