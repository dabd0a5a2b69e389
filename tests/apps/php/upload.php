<?php
// A file upload: the sha256 and size of the uploaded file.
header('Content-Type: text/plain');
$f = $_FILES['file'] ?? null;
if (!$f || $f['error'] !== UPLOAD_ERR_OK) {
    http_response_code(400);
    echo "no file\n";
    exit;
}
echo "size=" . filesize($f['tmp_name']) . "\n";
echo "sha256=" . hash_file('sha256', $f['tmp_name']) . "\n";
