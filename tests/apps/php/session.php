<?php
// A session counter: each request of the same session adds one.
session_start();
$_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1;
header('Content-Type: text/plain');
echo "count=" . $_SESSION['n'] . "\n";
