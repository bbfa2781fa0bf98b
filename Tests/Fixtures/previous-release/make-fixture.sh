#!/bin/sh
# Makes the state directory in home/ with a released `moat` (the compatibility fixture of issue 14):
# a vault sealed with this fixture's own systemd credential host key, secrets, an owner, an API token,
# a trust change, a server start, and an audit checkpoint kept beside it.
#
#   Tests/Fixtures/previous-release/make-fixture.sh PATH/TO/moat
#
# Every secret here is a test-only value: the host key, the master password, the owner password and the
# API token exist so that the test (Tests/MoatCLITests/PreviousReleaseTests.swift) can open this copy.
set -eu
moat=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
rm -rf home host-key.secret api-token.txt checkpoint.txt
mkdir -m 700 home
export MOAT_HOME="$here/home"
# The seal's machine secret: a host key of this fixture's own (systemd-creds creates it on first use),
# so the fixture unseals on any machine that has systemd-creds, with SYSTEMD_CREDENTIAL_SECRET pointing
# at a copy of this file. Never the machine's /var/lib/systemd/credential.secret.
export SYSTEMD_CREDENTIAL_SECRET="$here/host-key.secret"
unset XDG_CONFIG_HOME XDG_STATE_HOME

"$moat" vault init --password-file master-password.txt
printf '%s' 'ghp_FixtureTokenValue0123456789abcdefXYZ' |
    "$moat" vault add GITHUB_TOKEN --allow-tool http --allow-host api.github.com
printf '%s' 'fixture-smtp-password-4711' | "$moat" vault add SMTP_PASSWORD --allow-tool email
"$moat" owner setup --owner-password-file owner-password.txt
"$moat" token create fixture --scope read --expires never >api-token.txt
"$moat" trust set web suggest --reason "compatibility fixture"
# A server start, so the state holds what a served installation holds (it stops on SIGTERM).
"$moat" serve --port 0 --log-format json 2>serve.log &
server=$!
tries=0
until grep -q '"url"' serve.log 2>/dev/null; do
    tries=$((tries + 1))
    [ "$tries" -lt 300 ] || { kill "$server"; cat serve.log; exit 1; }
    sleep 0.1
done
kill -TERM "$server"
wait "$server"
rm -f serve.log
"$moat" audit checkpoint >checkpoint.txt
# systemd-creds accepts a host key file only with mode 0400 (git keeps 0644: the test sets 0400 on its copy).
chmod 400 host-key.secret
ls -la home
