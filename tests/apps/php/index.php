<?php
// A page: who served it (tests/integration/program.sh tells programs apart by pid).
header('Content-Type: text/plain');
echo "hello php pid=" . getmypid() . "\n";
echo "uri=" . $_SERVER['REQUEST_URI'] . "\n";
