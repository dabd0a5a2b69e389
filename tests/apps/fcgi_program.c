/*
 * fcgi_program.c — a tiny libfcgi program for tests/integration/program.sh:
 * it serves on the socket it gets as fd 0, one request at a time, as
 * spawn-fcgi's programs do.
 *   /hello          "hello from PID"
 *   /slow?S         sleeps S seconds, then answers
 *   /echo           the request body back
 *   /stderr         writes a line to its stderr and one FCGI_STDERR record
 *   /exit           answers, then exits 0 (a program ending on its own)
 *   anything else   404
 * Build: cc -o fcgi_program fcgi_program.c -lfcgi
 */
#include <fcgiapp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(void)
{
    FCGX_Request req;
    if (FCGX_Init() != 0 || FCGX_InitRequest(&req, 0, 0) != 0)
        return 1;
    while (FCGX_Accept_r(&req) >= 0) {
        const char *uri = FCGX_GetParam("REQUEST_URI", req.envp);
        const char *qs = FCGX_GetParam("QUERY_STRING", req.envp);
        if (!uri)
            uri = "";
        if (strncmp(uri, "/hello", 6) == 0) {
            FCGX_FPrintF(req.out, "Content-Type: text/plain\r\n\r\nhello from %d\n", (int)getpid());
        } else if (strncmp(uri, "/slow", 5) == 0) {
            sleep(qs && *qs ? (unsigned)atoi(qs) : 2);
            FCGX_FPrintF(req.out, "Content-Type: text/plain\r\n\r\nslow done %d\n", (int)getpid());
        } else if (strncmp(uri, "/echo", 5) == 0) {
            FCGX_FPrintF(req.out, "Content-Type: application/octet-stream\r\n\r\n");
            char buf[8192];
            int n;
            while ((n = FCGX_GetStr(buf, sizeof(buf), req.in)) > 0)
                FCGX_PutStr(buf, n, req.out);
        } else if (strncmp(uri, "/stderr", 7) == 0) {
            fprintf(stderr, "a line on stderr\nwith\x1b an escape\n");
            FCGX_FPrintF(req.err, "a FastCGI stderr record\n");
            FCGX_FPrintF(req.out, "Status: 201 Made\r\nX-Test: yes\r\n\r\nlogged\n");
        } else if (strncmp(uri, "/exit", 5) == 0) {
            FCGX_FPrintF(req.out, "Content-Type: text/plain\r\n\r\nbye\n");
            FCGX_Finish_r(&req);
            return 0;
        } else {
            FCGX_FPrintF(req.out, "Status: 404 Not Found\r\nContent-Type: text/plain\r\n\r\nno\n");
        }
        FCGX_Finish_r(&req);
    }
    return 0;
}
