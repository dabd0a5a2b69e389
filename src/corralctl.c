/*
 * corralctl.c — the control client. The control socket it will talk to is
 * not built yet (see the process-manager issue); for now this program says
 * so honestly and exits non-zero for any command.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0.1.0"
#endif

static void corralctl_usage(FILE *out)
{
    fprintf(out,
            "Usage: corralctl [-s SOCKET] COMMAND [ARGS]\n"
            "\n"
            "Control a running corral server through its control socket.\n"
            "\n"
            "This version has no commands yet: corral does not open a control socket\n"
            "until the control plane is built. Until then, operate corral with signals:\n"
            "  SIGTERM  graceful stop (queued connections are served, in-flight requests\n"
            "           finish, exit status 0)\n"
            "  SIGINT, SIGQUIT  stop now\n"
            "\n"
            "Options:\n"
            "  -s, --socket PATH  the control socket\n"
            "  -h, --help         this text\n"
            "  -V, --version      the version\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"socket", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "s:hV", opts, NULL)) != -1) {
        switch (opt) {
        case 's':
            break;
        case 'h':
            corralctl_usage(stdout);
            return 0;
        case 'V':
            printf("corralctl %s\n", PACKAGE_VERSION);
            return 0;
        default:
            corralctl_usage(stderr);
            return 2;
        }
    }
    if (optind >= argc) {
        corralctl_usage(stderr);
        return 2;
    }
    fprintf(stderr, "corralctl: '%s': no control socket yet in this version of corral\n",
            argv[optind]);
    return 1;
}
