<?php
// A form: GET shows it, POST echoes the fields back.
header('Content-Type: text/plain');
if ($_SERVER['REQUEST_METHOD'] === 'POST') {
    echo "name=" . ($_POST['name'] ?? '') . "\n";
    echo "color=" . ($_POST['color'] ?? '') . "\n";
} else {
    echo "<form method=post><input name=name><input name=color></form>\n";
}
