#!/bin/sh
echo "The tests need cmocka and libfcgi: apt-get install libcmocka-dev libfcgi-dev libfcgi-bin" >&2
echo "(or run tests/run-all.sh, which installs everything)" >&2
exit 1
