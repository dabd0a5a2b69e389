<?php
// Status: and headers from PHP reach the client.
http_response_code(404);
header('X-From-Php: yes');
echo "not here\n";
