#!/usr/bin/env bash
# Installs Debian's Chromium and ChromeDriver for the browser tests, and tmux for the terminal
# tests, when they are missing. Never fails the test run: without them, tests/test_browser.py and
# tests/test_terminal.py skip and say why.
set -u
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ] && command -v tmux >/dev/null 2>&1; then
    echo "install_browser: chromium and chromedriver are present"
    exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
        echo "install_browser: not root and no sudo; browser tests will be skipped"; exit 0; fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_browser: no apt-get on this machine; browser tests will be skipped"; exit 0
fi
echo "install_browser: installing chromium, chromium-driver and tmux from Debian's packages"
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y -q chromium chromium-driver tmux >/dev/null 2>&1; then
    $SUDO apt-get update -q >/dev/null 2>&1
    $SUDO apt-get install -y -q chromium chromium-driver tmux >/dev/null 2>&1 \
        || echo "install_browser: installation failed; browser tests will be skipped"
fi
[ -x /usr/bin/chromium ] && echo "install_browser: $(/usr/bin/chromium --version 2>/dev/null)"
exit 0
