<?php
// A slow page: sleeps ?s= seconds (default 3).
$s = (int)($_GET['s'] ?? 3);
sleep($s);
header('Content-Type: text/plain');
echo "slow done after $s s pid=" . getmypid() . "\n";
