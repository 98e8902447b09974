#!/usr/bin/env bash
# Installs tokenmeter as a systemd service, in the Debian layout. Run from a checkout, as root:
#
#     sudo scripts/install.sh
#
# Builds the release binary, then installs:
#   /usr/local/bin/tokenmeter
#   /etc/systemd/system/tokenmeter.service
#   /etc/tokenmeter/tokenmeter.toml         (the example config; an existing file is never overwritten)
#   /etc/tokenmeter/prices.toml             (the price list the example includes; likewise kept if present)
#   /etc/tokenmeter/kafka-password          (empty, root 0600, only if missing: put the SASL password here)
#   /usr/local/share/doc/tokenmeter/README.md and docs/ (the README's links stay valid)
#   the `tokenmeter` system user and group (no login, home /var/lib/tokenmeter)
# and runs `systemctl daemon-reload` when systemd is running. It does not enable or start the unit.
#
# Environment: PREFIX (default /usr/local), SKIP_BUILD=1 to install an already built .build/release/tokenmeter,
# DESTDIR for a staged install (no user creation, no daemon-reload).
set -euo pipefail
cd "$(dirname "$0")/.."

PREFIX=${PREFIX:-/usr/local}
DESTDIR=${DESTDIR:-}
UNITDIR=${UNITDIR:-/etc/systemd/system}

if [ "${SKIP_BUILD:-0}" != 1 ]; then
    # The git commit goes into tokenmeter_build_info; the generated file is ignored by git.
    commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
    if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then commit="$commit-dirty"; fi
    gen=Sources/TokenmeterDaemon/BuildCommit.generated.swift
    printf '#if TOKENMETER_BUILD_COMMIT\nlet buildGitCommit = "%s"\n#endif\n' "$commit" > "$gen"
    # The Swift runtime is linked in: the service does not depend on where the toolchain is installed.
    swift build -c release --static-swift-stdlib -Xswiftc -DTOKENMETER_BUILD_COMMIT
fi
bin=.build/release/tokenmeter
[ -x "$bin" ] || { echo "install.sh: $bin not found (build failed?)" >&2; exit 1; }

install -D -m 0755 "$bin" "$DESTDIR$PREFIX/bin/tokenmeter"
sed "s#/usr/local/bin/tokenmeter#$PREFIX/bin/tokenmeter#g; s#/usr/local/share/doc#$PREFIX/share/doc#g" \
    systemd/tokenmeter.service > /tmp/tokenmeter.service.$$
install -D -m 0644 /tmp/tokenmeter.service.$$ "$DESTDIR$UNITDIR/tokenmeter.service"
# The alert notifier's unit (docs/notify.md), installed but not enabled.
sed "s#/usr/local/bin/tokenmeter#$PREFIX/bin/tokenmeter#g; s#/usr/local/share/doc#$PREFIX/share/doc#g" \
    systemd/tokenmeter-notify.service > /tmp/tokenmeter.service.$$
install -D -m 0644 /tmp/tokenmeter.service.$$ "$DESTDIR$UNITDIR/tokenmeter-notify.service"
rm -f /tmp/tokenmeter.service.$$
install -D -m 0644 README.md "$DESTDIR$PREFIX/share/doc/tokenmeter/README.md"
install -D -m 0644 -t "$DESTDIR$PREFIX/share/doc/tokenmeter/docs" docs/*.md

if [ -z "$DESTDIR" ] && ! getent group tokenmeter >/dev/null; then
    groupadd --system tokenmeter
fi
if [ -z "$DESTDIR" ] && ! getent passwd tokenmeter >/dev/null; then
    useradd --system --gid tokenmeter --home-dir /var/lib/tokenmeter --no-create-home \
        --shell /usr/sbin/nologin --comment "tokenmeter daemon" tokenmeter
fi

install -d -m 0755 "$DESTDIR/etc/tokenmeter"
group=root
[ -z "$DESTDIR" ] && group=tokenmeter
if [ ! -e "$DESTDIR/etc/tokenmeter/tokenmeter.toml" ]; then
    install -m 0640 -o root -g "$group" config/tokenmeter.toml "$DESTDIR/etc/tokenmeter/tokenmeter.toml"
    echo "install.sh: installed the example config /etc/tokenmeter/tokenmeter.toml: edit it before starting"
else
    echo "install.sh: kept the existing /etc/tokenmeter/tokenmeter.toml"
fi
# The example config includes the price list beside it (include = ["prices.toml"]).
if [ ! -e "$DESTDIR/etc/tokenmeter/prices.toml" ]; then
    install -m 0644 -o root -g root config/prices.toml "$DESTDIR/etc/tokenmeter/prices.toml"
    echo "install.sh: installed the price list /etc/tokenmeter/prices.toml"
else
    echo "install.sh: kept the existing /etc/tokenmeter/prices.toml (the repository's: config/prices.toml)"
fi
if [ ! -e "$DESTDIR/etc/tokenmeter/notify.toml" ]; then
    install -m 0640 -o root -g "$group" config/notify.toml "$DESTDIR/etc/tokenmeter/notify.toml"
fi
# Empty secret files, so that the units' LoadCredential= lines find a file; fill in the ones in use.
for secret in kafka-password slack-url webhook-secret; do
    if [ ! -e "$DESTDIR/etc/tokenmeter/$secret" ]; then
        install -m 0600 -o root -g root /dev/null "$DESTDIR/etc/tokenmeter/$secret"
    fi
done

if [ -z "$DESTDIR" ] && [ -d /run/systemd/system ]; then
    systemctl daemon-reload
fi
echo "install.sh: installed $PREFIX/bin/tokenmeter and $UNITDIR/tokenmeter.service"
echo "install.sh: next: edit /etc/tokenmeter/tokenmeter.toml, then: systemctl enable --now tokenmeter"
