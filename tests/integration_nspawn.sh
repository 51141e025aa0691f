#!/usr/bin/env bash
# Boot a real systemd (systemd-nspawn -b) in a Debian root, install portal-feeds with the
# shipped unit, sysusers and tmpfiles, run it against the upstream simulator on the host's
# loopback, and record what systemd saw.  Used by tests/test_nspawn.py (opt-in:
# PORTAL_FEEDS_NSPAWN=1, root, debootstrap and systemd-container installed).
#
#   tests/integration_nspawn.sh ROOT_DIR SIMULATOR_PORT OUT_DIR
set -euo pipefail
R=$1; PORT=$2; OUT=$3
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
mkdir -p "$R/etc/portal-feeds" "$R/etc/systemd/system/multi-user.target.wants"
cat > "$R/etc/portal-feeds/portal-feeds.toml" <<TOML
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
cat > "$R/etc/systemd/system/portal-feeds-probe.service" <<'UNIT'
[Unit]
Description=record what systemd sees of portal-feeds, then power off
After=portal-feeds.service
[Service]
Type=oneshot
ExecStart=/bin/sh -c 'sleep 12; \
  systemctl show portal-feeds -p ActiveState -p SubState -p StatusText -p NRestarts -p User > /probe-show.txt; \
  stat -c "%%a %%U %%G %%n" /var/lib/portal-feeds/snapshots /var/lib/portal-feeds/snapshots/*.json > /probe-ls.txt; \
  systemctl reload portal-feeds; sleep 3; \
  systemctl show portal-feeds -p ActiveState -p NRestarts > /probe-after-reload.txt; \
  journalctl -u portal-feeds --no-pager -o cat > /probe-journal.txt; \
  systemctl stop portal-feeds; systemctl show portal-feeds -p ActiveState -p Result > /probe-stop.txt; \
  systemctl poweroff'
UNIT
ln -sf ../portal-feeds.service "$R/etc/systemd/system/multi-user.target.wants/portal-feeds.service"
ln -sf ../portal-feeds-probe.service "$R/etc/systemd/system/multi-user.target.wants/portal-feeds-probe.service"
rm -f "$R"/probe-*.txt
rm -rf "$R"/var/log/journal/* "$R"/var/lib/portal-feeds
timeout 120 "${NSPAWN[@]}" -b >"$OUT/console.log" 2>&1 || true
mkdir -p "$OUT" && cp "$R"/probe-*.txt "$OUT"/ 2>/dev/null || true
