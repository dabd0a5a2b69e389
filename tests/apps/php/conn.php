<?php
// Which connection this request came on (tests/integration/program.sh
// counts them): php-cgi's sockets other than fd 0 (its listening socket),
// by their inode, with its pid.
header('Content-Type: text/plain');
$conns = [];
foreach (scandir('/proc/self/fd') as $fd) {
    if ($fd === '.' || $fd === '..' || $fd === '0') {
        continue;
    }
    $link = @readlink("/proc/self/fd/$fd");
    if ($link !== false && strncmp($link, 'socket:', 7) === 0) {
        $conns[] = $link;
    }
}
echo "pid=" . getmypid() . " conn=" . implode(',', $conns) . "\n";
