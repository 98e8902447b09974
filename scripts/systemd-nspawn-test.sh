#!/usr/bin/env bash
# The unit under a real systemd: boots this machine's OS in a container (systemd-nspawn --volatile=yes: a
# throw-away root, /usr read-only from the host), installs tokenmeter there with the documented command,
# starts the unit against a `tokenmeter broker` on the host (the container shares the host's network),
# checks that it becomes active (READY), serves /metrics, writes rollups readable by its group, reloads
# (and refuses an invalid config), stops cleanly, and that its journal is clean and holds no secret.
#
#     sudo scripts/systemd-nspawn-test.sh        # about a minute after the release build; needs systemd-container
#
# Run by .ci/run. Works where PID 1 is not systemd (it uses nsenter, not machinectl).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
T=$(mktemp -d /tmp/tokenmeter-nspawn-XXXXXX)
NAME=tokenmeter-test-$$
NSPAWN_PID= BROKER_PID= LEADER=
start=$(date +%s)
say() { echo "nspawn-test: $* ($(( $(date +%s) - start )) s)"; }
fail() { echo "nspawn-test: FAILED: $*" >&2; [ -n "$LEADER" ] && inside journalctl -u tokenmeter --no-pager -n 60 >&2 || true; exit 1; }
inside() { nsenter -t "$LEADER" -a -- "$@"; }
cleanup() {
    [ -n "$NSPAWN_PID" ] && kill -TERM "$NSPAWN_PID" 2>/dev/null && wait "$NSPAWN_PID" 2>/dev/null || true
    [ -n "$BROKER_PID" ] && kill -TERM "$BROKER_PID" 2>/dev/null && wait "$BROKER_PID" 2>/dev/null || true
    rm -rf "$T"
}
trap cleanup EXIT

command -v systemd-nspawn >/dev/null || fail "systemd-nspawn missing: apt-get install -y systemd-container"

# 1. Build the release binary exactly as the install command does (a staged install into $T/stage).
DESTDIR="$T/stage" scripts/install.sh > "$T/build.log" 2>&1 || { cat "$T/build.log" >&2; fail "build/staged install"; }
BIN=.build/release/tokenmeter
say "release binary built"

# 2. A broker on the host's loopback.
"$BIN" broker --partitions 4 --topic llm-usage --topic llm-usage-dlq > "$T/broker.out" 2> "$T/broker.err" &
BROKER_PID=$!
for _ in $(seq 50); do [ -s "$T/broker.out" ] && break; sleep 0.1; done
BROKERS=$(head -1 "$T/broker.out")
[ -n "$BROKERS" ] || fail "broker printed no address"
say "broker at $BROKERS"

# 3. Boot systemd in a container. /usr/local is a writable bind (the install target), the checkout read-only.
mkdir -p "$T/usrlocal"
systemd-nspawn -D / --volatile=yes -b -M "$NAME" --register=no --keep-unit --console=passive \
    --bind="$T/usrlocal:/usr/local" --bind-ro="$REPO:/src" -- systemd.firstboot=off > "$T/console.log" 2>&1 &
NSPAWN_PID=$!
for _ in $(seq 100); do
    LEADER=$(pgrep -P "$NSPAWN_PID" -x systemd || true)
    [ -n "$LEADER" ] && state=$(inside systemctl is-system-running 2>/dev/null || true) && [[ "$state" =~ ^(running|degraded)$ ]] && break
    sleep 0.2
done
[[ "${state:-}" =~ ^(running|degraded)$ ]] || { cat "$T/console.log" >&2; fail "container did not boot (state ${state:-none})"; }
say "container booted (systemd $state)"

# 4. Config and password first (the installer keeps an existing config), then the documented install command.
inside mkdir -p /etc/tokenmeter
inside sh -c "cat > /etc/tokenmeter/tokenmeter.toml" <<TOML
[kafka]
brokers = "$BROKERS"
group_id = "tokenmeter-nspawn"
topics = ["llm-usage"]
dead_letter_topic = "llm-usage-dlq"
[kafka.properties]
"session.timeout.ms" = 6000
[kafka.secret_files]
"sasl.password" = "kafka-password"     # relative: \$CREDENTIALS_DIRECTORY/kafka-password (LoadCredential=)
[rollups]
windows = ["1h", "1d"]
idle_close = "2s"
instance = "nspawn"
[http]
listen = "127.0.0.1:0"
[[price]]
model = "gpt-4o*"
input = 2.50
output = 10.00
TOML
SECRET="nspawn-secret-$RANDOM$RANDOM"
inside sh -c "umask 077; printf '%s\n' '$SECRET' > /etc/tokenmeter/kafka-password"
inside env SKIP_BUILD=1 /src/scripts/install.sh > "$T/install.log" 2>&1 || { cat "$T/install.log" >&2; fail "install.sh in the container"; }
inside getent passwd tokenmeter >/dev/null || fail "no tokenmeter user"
say "installed with scripts/install.sh"

# 5. Start: Type=notify, so this returns once the daemon sent READY=1.
inside systemctl start tokenmeter || fail "systemctl start"
[ "$(inside systemctl is-active tokenmeter)" = active ] || fail "not active"
say "active: $(inside systemctl show -p StatusText --value tokenmeter)"

# 6. Traffic; rollups appear, owned by tokenmeter, readable by its group, not under /var/lib/private.
"$BIN" generate --events 3000 --start 2026-11-20T00:00:00Z --span 6h > "$T/events.jsonl"
"$BIN" produce --brokers "$BROKERS" --topic llm-usage "$T/events.jsonl" > /dev/null
for _ in $(seq 150); do
    n=$(inside sh -c 'find /var/lib/tokenmeter/rollups -name "*.jsonl" 2>/dev/null | wc -l')
    [ "$n" -gt 0 ] && break; sleep 0.2
done
[ "${n:-0}" -gt 0 ] || fail "no rollup files"
perms=$(inside stat -c '%a %U:%G' /var/lib/tokenmeter)
[ "$perms" = "750 tokenmeter:tokenmeter" ] || fail "/var/lib/tokenmeter is $perms"
inside test ! -e /var/lib/private/tokenmeter || fail "state under /var/lib/private"
say "rollup files written ($n), /var/lib/tokenmeter $perms"

ADDR=$(inside journalctl -u tokenmeter -o cat --no-pager | sed -n 's/.*http listening address=\([^ ]*\).*/\1/p' | tail -1)
curl -fsS "http://$ADDR/-/ready" > /dev/null || fail "/-/ready at $ADDR"
# /metrics is a snapshot refreshed ten times a second: the files can be on disk before it shows the count.
for _ in $(seq 1 50); do
    curl -fsS "http://$ADDR/metrics" > "$T/metrics.txt" || fail "/metrics at $ADDR"
    grep -q '^tokenmeter_messages_consumed_total [1-9]' "$T/metrics.txt" && break; sleep 0.2
done
grep -q '^tokenmeter_messages_consumed_total [1-9]' "$T/metrics.txt" || fail "metrics: nothing consumed"
say "metrics at $ADDR: $(grep '^tokenmeter_messages_consumed_total' "$T/metrics.txt")"

# 7. Reload: a valid config reloads; an invalid one is refused by ExecReload= and the daemon runs on.
inside sed -i 's/^input = 2.50/input = 2.40/' /etc/tokenmeter/tokenmeter.toml
inside systemctl reload tokenmeter || fail "systemctl reload"
for _ in $(seq 50); do inside journalctl -u tokenmeter -o cat --no-pager | grep -q "configuration reloaded" && break; sleep 0.1; done
inside journalctl -u tokenmeter -o cat --no-pager | grep -q "configuration reloaded" || fail "no reload in the journal"
inside cp /etc/tokenmeter/tokenmeter.toml /etc/tokenmeter/good.toml
inside sh -c 'echo "[rollups]" >> /etc/tokenmeter/tokenmeter.toml'
if inside systemctl reload tokenmeter 2> /dev/null; then fail "an invalid config was reloaded"; fi
[ "$(inside systemctl is-active tokenmeter)" = active ] || fail "not active after a refused reload"
inside mv /etc/tokenmeter/good.toml /etc/tokenmeter/tokenmeter.toml
say "reloaded; invalid config refused, still active"

# 8. Stop: clean exit, STOPPING, final checkpoint.
inside systemctl stop tokenmeter
result=$(inside systemctl show -p Result --value tokenmeter)
status=$(inside systemctl show -p ExecMainStatus --value tokenmeter)
[ "$result" = success ] && [ "$status" = 0 ] || fail "stop: Result=$result ExecMainStatus=$status"
inside test -s /var/lib/tokenmeter/state/checkpoint.bin || fail "no checkpoint after stop"
say "stopped (Result=$result, status $status)"

# 9. The journal: priorities from <N> prefixes, no timestamps of our own, and never the secret.
inside journalctl -u tokenmeter --no-pager -o cat > "$T/journal.txt"
inside journalctl -u tokenmeter --no-pager -o json > "$T/journal.json"
echo "---- journal (journalctl -u tokenmeter -o cat) ----"; tail -n 25 "$T/journal.txt"; echo "----"
grep -q "ready: checkpoint restored and consumer group joined" "$T/journal.txt" || fail "no ready line"
grep -q "^info stopped" "$T/journal.txt" || fail "no stopped line"
grep -q '"PRIORITY":"5"' "$T/journal.json" || fail "no notice-priority entries: <N> prefixes not read"
if grep -q "$SECRET" "$T/journal.txt" "$T/metrics.txt"; then fail "the Kafka password leaked"; fi
if grep -qE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T' "$T/journal.txt"; then fail "timestamps in journal lines"; fi
say "PASSED"
