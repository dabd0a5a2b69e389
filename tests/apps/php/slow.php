<?php
// A slow page: sleeps ?s= seconds (default 3), or ?ms= milliseconds.
if (isset($_GET['ms'])) {
    $ms = (int)$_GET['ms'];
    usleep($ms * 1000);
    $took = "$ms ms";
} else {
    $s = (int)($_GET['s'] ?? 3);
    sleep($s);
    $took = "$s s";
}
header('Content-Type: text/plain');
echo "slow done after $took pid=" . getmypid() . "\n";
