#!/usr/bin/env bash
# Boot a Debian 12 root (systemd-nspawn -b), install the .deb with apt, and walk the package's
# promises (issue 19), recording each step in probe-*.txt.  Used by tests/test_nspawn_package.py
# (opt-in: PORTAL_FEEDS_NSPAWN=1, root, debootstrap and systemd-container installed).
#
#   tests/integration_deb_nspawn.sh BASE_ROOT DEB1 DEB2 SIMULATOR_PORT NGINX_PORT OUT_DIR
#
# BASE_ROOT is debootstrapped once and kept; every run boots a fresh copy of it.
set -euo pipefail
BASE=$1; DEB1=$2; DEB2=$3; PORT=$4; NPORT=$5; OUT=$6
if [ ! -x "$BASE/usr/bin/python3" ] || [ ! -x "$BASE/usr/sbin/nginx" ]; then
  debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,python3,ca-certificates,nginx-light,curl,apt \
    bookworm "$BASE" http://deb.debian.org/debian >/dev/null
fi
R="$BASE.run"
rm -rf "$R"; cp -a "$BASE" "$R"
mkdir -p /run/systemd/nspawn
mountpoint -q /run/systemd/nspawn || mount -t tmpfs tmpfs /run/systemd/nspawn
cp "$DEB1" "$R/root/v1.deb"; cp "$DEB2" "$R/root/v2.deb"

# The admin's one edit: feeds pointed at the simulator on the host's loopback.
cat > "$R/root/edited.toml" <<TOML
# edited by the admin
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
min_interval = "0s"
locations = "vietnam-provinces"
per_location_files = true
TOML
# sites-enabled/default is an absolute symlink: written through the host's path it would land
# on the host's /etc/nginx.  Replace the link with a file of the container's own.
rm -f "$R/etc/nginx/sites-enabled/default"
cat > "$R/etc/nginx/sites-enabled/portal.conf" <<NGINX
server {
    listen 127.0.0.1:$NPORT;
    include /usr/share/portal-feeds/nginx/portal-feeds.conf;
}
NGINX

cat > "$R/usr/local/bin/portal-feeds-probe" <<'PROBE'
#!/bin/sh
# Every step leaves /probe-<step>.txt.  No set -e: a failing step is recorded, not fatal.
export DEBIAN_FRONTEND=noninteractive
C=/etc/portal-feeds/portal-feeds.toml
S=/var/lib/portal-feeds/snapshots
show() { systemctl show portal-feeds -p ActiveState -p SubState -p NRestarts -p MainPID -p StatusText \
  -p UnitFileState > "/probe-$1.txt"; }
wait_fresh() { for i in $(seq 1 120); do
  systemctl show portal-feeds -p StatusText | grep -q "2 fresh" && return 0; sleep 0.5; done; return 1; }
check_as_user() { runuser -u portal-feeds -- portal-feeds check-config --config $C > "/probe-$1.txt" 2>&1; echo "rc=$?" >> "/probe-$1.txt"; }
get() { for u in /feeds/exchange-rates.json /feeds/weather.json /feeds/weather.html /feeds/weather/ha-noi.json \
    /widget/portal-feeds.js /demo/index.html; do
  printf '%s %s\n' "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:NPORT$u")" "$u"; done > "/probe-$1.txt"; }

# Install, the start held back by policy-rc.d: check-config before the first start.
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 0755 /usr/sbin/policy-rc.d
apt-get install -y -q /root/v1.deb > /probe-install1.log 2>&1; echo "rc=$?" > /probe-install1.txt
check_as_user check-before
stat -c "%a %U %G %n" /var/lib/portal-feeds /var/lib/portal-feeds/cache $S > /probe-ls-install.txt
rm -f /usr/sbin/policy-rc.d
cp /root/edited.toml $C
systemctl start portal-feeds; wait_fresh; show started
check_as_user check-after
systemctl reload portal-feeds; echo "rc=$?" > /probe-reload.txt
ls /usr/share/man/man1/portal-feeds.1.gz > /probe-man.txt 2>&1; portal-feeds --version > /probe-cli.txt 2>&1
systemctl restart nginx; sleep 1; get http1
{ systemctl is-active nginx; id www-data; curl -sS -o /dev/null "http://127.0.0.1:NPORT/feeds/weather.json";
  ss -ltn 2>/dev/null | grep NPORT; cat /etc/nginx/sites-enabled/portal.conf; journalctl -u nginx --no-pager -o cat | tail -5; } > /probe-nginx.txt 2>&1

# Deleted while running: the snapshot folder comes back by itself.
rm -rf $S; sleep 12; get http-rm-running; show rm-running
# Deleted snapshots and cache, then a restart: healthy without an admin.
rm -rf $S /var/lib/portal-feeds/cache; systemctl restart portal-feeds; wait_fresh; sleep 6
show rm-restart; get http-rm-restart
stat -c "%a %U %G %n" $S $S/weather $S/weather/ha-noi.json > /probe-ls-after.txt

# Upgrade: the edited conffile and the data stay, the service is restarted.
md5sum $C | cut -d' ' -f1 > /probe-conf-before.txt
ls $S > /probe-data-before.txt
apt-get install -y -q /root/v2.deb > /probe-install2.log 2>&1; echo "rc=$?" > /probe-install2.txt
sleep 2; wait_fresh; show upgraded
md5sum $C | cut -d' ' -f1 > /probe-conf-after.txt
dpkg-query -W -f '${Version}\n' portal-feeds > /probe-version.txt
get http-upgraded

# Remove: stopped, data kept.
apt-get remove -y -q portal-feeds > /probe-remove.log 2>&1; echo "rc=$?" > /probe-remove.txt
systemctl is-active portal-feeds > /probe-remove-active.txt 2>&1
ls $S > /probe-remove-data.txt 2>&1; getent passwd portal-feeds > /probe-remove-user.txt
# Purge: nothing left.
apt-get purge -y -q portal-feeds > /probe-purge.log 2>&1; echo "rc=$?" > /probe-purge.txt
{ ls -d /var/lib/portal-feeds /etc/portal-feeds /opt/portal-feeds /usr/bin/portal-feeds /run/portal-feeds \
    /etc/systemd/system/multi-user.target.wants/portal-feeds.service 2>/dev/null
  getent passwd portal-feeds; getent group portal-feeds; } > /probe-purge-left.txt
# A plain install enables and starts it (default conffile: no upstream reachable, still READY).
apt-get install -y -q /root/v2.deb > /probe-install3.log 2>&1; echo "rc=$?" > /probe-install3.txt
sleep 3; show fresh-install
journalctl -u portal-feeds --no-pager -o cat > /probe-journal.txt
systemctl poweroff
PROBE
sed -i "s/NPORT/$NPORT/g" "$R/usr/local/bin/portal-feeds-probe"
chmod 0755 "$R/usr/local/bin/portal-feeds-probe"
cat > "$R/etc/systemd/system/portal-feeds-probe.service" <<'UNIT'
[Unit]
Description=walk the portal-feeds package's promises, then power off
After=multi-user.target
[Service]
Type=oneshot
ExecStart=/usr/local/bin/portal-feeds-probe
UNIT
mkdir -p "$R/etc/systemd/system/multi-user.target.wants"
ln -sf ../portal-feeds-probe.service "$R/etc/systemd/system/multi-user.target.wants/portal-feeds-probe.service"
mkdir -p "$OUT"
timeout 600 systemd-nspawn -q --register=no --keep-unit -D "$R" -b >"$OUT/console.log" 2>&1 || true
cp "$R"/probe-* "$OUT"/ 2>/dev/null || true
rm -rf "$R"
