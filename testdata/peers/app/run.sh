#!/bin/sh
set -eu
echo "uid=$(id -u) gid=$(id -g)"
echo "pwd=$(pwd)"
echo "mode=$MODE"
echo "conf=$(cat /etc/app/app.conf)"
# Only the owner may enter the 0700 state directory: this proves the layer's
# owner reached the runtime's file system.
touch /var/lib/app/ok
echo "state=writable"
