#!/bin/sh
set -eu
# The config file is shell assignments, so the image needs no parser.
. /etc/hello/hello.conf
echo "$GREETING, $NAME!"
echo "I am uid $(id -u), gid $(id -g), in $(pwd)."
