#!/bin/sh
exec tool --help
