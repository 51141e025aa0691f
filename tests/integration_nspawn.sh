#!/usr/bin/env bash
# Boot a real systemd (systemd-nspawn -b) in a Debian root, install portal-feeds with the
# shipped unit, sysusers and tmpfiles, run it against the upstream simulator on the host's
# loopback, and record what systemd saw at each step.  Used by tests/test_nspawn.py (opt-in:
# PORTAL_FEEDS_NSPAWN=1, root, debootstrap and systemd-container installed).
#
#   tests/integration_nspawn.sh ROOT_DIR SIMULATOR_PORT HANGING_PORT OUT_DIR
#
# HANGING_PORT serves Vietcombank's endpoint but never answers (an attempt stays in flight).
# The probe unit inside the container walks through, recording `systemctl show` each time:
#   boot       -> active, 2 fresh, NRestarts=0 (watchdog pings keep a 5 s WatchdogSec happy)
#   reload     -> a good file is applied; a broken one fails `systemctl reload`, same MainPID
#   SIGKILL    -> restarted, snapshots intact
#   SIGSTOP    -> the watchdog kills it, restarted
#   stop       -> during an in-flight attempt: Result=success, no traceback
#   bad config -> `start` gives failed, exit 78, no further restarts
# A test-only drop-in shortens WatchdogSec (60 s shipped) to 5 s and RestartSec to 1 s.
set -euo pipefail
R=$1; PORT=$2; HANG=$3; OUT=$4
SRC=$(cd "$(dirname "$0")/.." && pwd)

if [ ! -x "$R/usr/bin/python3" ]; then
  debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,python3,python3-venv,ca-certificates \
    bookworm "$R" http://deb.debian.org/debian >/dev/null
fi
# nspawn wants a tmpfs here; on a host without systemd as PID 1 there may be none.
mkdir -p /run/systemd/nspawn
mountpoint -q /run/systemd/nspawn || mount -t tmpfs tmpfs /run/systemd/nspawn
NSPAWN=(systemd-nspawn -q --register=no --keep-unit -D "$R")

rm -rf "$R/opt/wheels" && mkdir -p "$R/opt/wheels"
"$SRC/.venv/bin/pip" wheel -q "$SRC" -w "$R/opt/wheels" >/dev/null 2>&1
"${NSPAWN[@]}" --pipe /bin/sh -c 'rm -rf /opt/portal-feeds/venv && python3 -m venv /opt/portal-feeds/venv &&
  /opt/portal-feeds/venv/bin/pip install -q --no-index --find-links /opt/wheels portal-feeds'

install -m 0644 "$SRC/systemd/portal-feeds.service" "$R/etc/systemd/system/portal-feeds.service"
install -D -m 0644 "$SRC/systemd/portal-feeds.sysusers" "$R/usr/lib/sysusers.d/portal-feeds.conf"
install -D -m 0644 "$SRC/systemd/portal-feeds.tmpfiles" "$R/usr/lib/tmpfiles.d/portal-feeds.conf"
mkdir -p "$R/etc/portal-feeds" "$R/etc/systemd/system/multi-user.target.wants" \
  "$R/etc/systemd/system/portal-feeds.service.d"
cat > "$R/etc/systemd/system/portal-feeds.service.d/test-only.conf" <<'UNIT'
# Test only: the watchdog and restarts within the test's patience.
[Service]
WatchdogSec=5s
RestartSec=1s
UNIT
cat > "$R/etc/portal-feeds/good.toml" <<TOML
[paths]
cache_dir = "/var/lib/portal-feeds/cache"
snapshot_dir = "/var/lib/portal-feeds/snapshots"

[feeds.exchange-rates]
kind = "vietcombank"
url = "http://127.0.0.1:$PORT/Usercontrols/TVPortal.TyGia/pXML.aspx?b=10"
every = "5s"
min_interval = "0s"

[feeds.weather]
kind = "open-meteo"
url = "http://127.0.0.1:$PORT/v1/forecast"
every = "5s"
locations = "vietnam-provinces"
TOML
# The same, and a feed whose upstream never answers: an attempt is in flight at the stop.
cp "$R/etc/portal-feeds/good.toml" "$R/etc/portal-feeds/hanging.toml"
cat >> "$R/etc/portal-feeds/hanging.toml" <<TOML

[feeds.slow-rates]
kind = "vietcombank"
url = "http://127.0.0.1:$HANG/Usercontrols/TVPortal.TyGia/pXML.aspx?b=10"
every = "1h"
min_interval = "0s"
timeout = "60s"
deadline = "60s"
TOML
{ cat "$R/etc/portal-feeds/good.toml"; printf '\n[feeds.broken]\nkind = "vietcombank"\nevery = "banana"\n'; } \
  > "$R/etc/portal-feeds/broken.toml"
cp "$R/etc/portal-feeds/good.toml" "$R/etc/portal-feeds/portal-feeds.toml"

cat > "$R/usr/local/bin/portal-feeds-probe" <<'PROBE'
#!/bin/sh
# Walk the service through its promises; every step leaves a probe-<step>.txt in /.
show() { systemctl show portal-feeds -p ActiveState -p SubState -p Result -p NRestarts -p MainPID \
  -p ExecMainStatus -p StatusText -p User > "/probe-$1.txt"; }
wait_fresh() { for i in $(seq 1 60); do
  systemctl show portal-feeds -p StatusText | grep -q "2 fresh" && return 0; sleep 0.5; done; return 1; }
C=/etc/portal-feeds
wait_fresh; sleep 6                       # a few 5 s watchdog windows: pings must keep it alive
show boot
stat -c "%a %U %G %n" /var/lib/portal-feeds/snapshots /var/lib/portal-feeds/snapshots/*.json > /probe-ls.txt

systemctl reload portal-feeds; echo "rc=$?" > /probe-reload-rc.txt; sleep 2; show reload
cp $C/broken.toml $C/portal-feeds.toml
systemctl reload portal-feeds; echo "rc=$?" > /probe-badreload-rc.txt; sleep 2; show badreload
cp $C/good.toml $C/portal-feeds.toml

cat /var/lib/portal-feeds/snapshots/exchange-rates.json > /probe-before-kill.json
systemctl kill -s KILL --kill-whom=main portal-feeds; sleep 2; wait_fresh; show sigkill
cat /var/lib/portal-feeds/snapshots/exchange-rates.json > /probe-after-kill.json

kill -STOP "$(systemctl show -p MainPID --value portal-feeds)"; sleep 9; wait_fresh; show sigstop

cp $C/hanging.toml $C/portal-feeds.toml
systemctl reload portal-feeds; sleep 3    # slow-rates is attempted at once and hangs
systemctl stop portal-feeds; show stop

cp $C/broken.toml $C/portal-feeds.toml
systemctl start portal-feeds; echo "rc=$?" > /probe-badstart-rc.txt; sleep 6; show badstart

journalctl -u portal-feeds --no-pager -o cat > /probe-journal.txt
systemctl poweroff
PROBE
chmod 0755 "$R/usr/local/bin/portal-feeds-probe"
cat > "$R/etc/systemd/system/portal-feeds-probe.service" <<'UNIT'
[Unit]
Description=record what systemd sees of portal-feeds, then power off
After=portal-feeds.service
[Service]
Type=oneshot
ExecStart=/usr/local/bin/portal-feeds-probe
UNIT
ln -sf ../portal-feeds.service "$R/etc/systemd/system/multi-user.target.wants/portal-feeds.service"
ln -sf ../portal-feeds-probe.service "$R/etc/systemd/system/multi-user.target.wants/portal-feeds-probe.service"
rm -f "$R"/probe-*
rm -rf "$R"/var/log/journal/* "$R"/var/lib/portal-feeds
mkdir -p "$OUT"
timeout 240 "${NSPAWN[@]}" -b >"$OUT/console.log" 2>&1 || true
cp "$R"/probe-* "$OUT"/ 2>/dev/null || true
