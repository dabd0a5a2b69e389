<?php
// contrib/bench/php.sh's page: the smallest PHP answer.
header('Content-Type: text/plain');
echo "Hello, World!";
