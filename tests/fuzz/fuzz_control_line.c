/*
 * fuzz_control_line.c — libFuzzer target for the control socket's command
 * line parser (control_parse in src/control.c), which the master runs on
 * every line a client of the control socket sends.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Isrc -Iprotocols \
 *     src/control.c src/json.c src/listen.c src/log.c ... tests/fuzz/fuzz_control_line.c
 *   ./fuzz_control_line tests/fuzz/corpus/control_line
 *
 * The table holds the master's commands as src/master_cmd.c declares them
 * (names, argument kinds, usage), without their run functions: the real
 * table cannot be linked without the whole master, and control_parse only
 * reads those three fields. The parser gets exactly the input bytes (no NUL
 * after them), as a line of the client's buffer would be.
 *
 * Properties: the outcome equals that of a second, simpler reading of the
 * line written here from control.h's contract (a trailing \r dropped,
 * printable ASCII and tabs only, blank-separated name and at most one
 * argument, scale's N, +N or -N from 0 to 65535 in at most 5 digits); a refusal has a message
 * that fits err and is printable; the same line parses the same way with a
 * small err buffer.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "master/control.h"

#include "fuzz_check.h"

/* src/master_cmd.c's master_commands[], run functions left out. */
static const struct control_command commands[] = {
    {.name = "status", .arg = CONTROL_ARG_NONE, .usage = "status"},
    {.name = "workers", .arg = CONTROL_ARG_NONE, .usage = "workers"},
    {.name = "scale", .arg = CONTROL_ARG_SCALE, .usage = "scale N|+N|-N"},
    {.name = "stop", .arg = CONTROL_ARG_NONE, .usage = "stop"},
    {.name = "quit", .arg = CONTROL_ARG_NONE, .usage = "quit"},
    {.name = "reopen-logs", .arg = CONTROL_ARG_NONE, .usage = "reopen-logs"},
    {.name = "reload", .arg = CONTROL_ARG_NONE, .usage = "reload"},
    {.name = "chain-reload", .arg = CONTROL_ARG_NONE, .usage = "chain-reload"},
    {.name = "help", .arg = CONTROL_ARG_NONE, .usage = "help"},
};
#define COUNT (sizeof(commands) / sizeof(commands[0]))

/* The second reading: split into words, then decide. */
static enum control_parse_result expect(const uint8_t *line, size_t len,
                                        struct control_request *want)
{
    memset(want, 0, sizeof(*want));
    if (len && line[len - 1] == '\r')
        len--;
    for (size_t i = 0; i < len; i++)
        if (!(line[i] == '\t' || (line[i] >= 0x20 && line[i] <= 0x7e)))
            return CONTROL_PARSE_BAD;
    const uint8_t *word[3];
    size_t wlen[3], words = 0;
    for (size_t i = 0; i < len;) {
        if (line[i] == ' ' || line[i] == '\t') {
            i++;
            continue;
        }
        size_t start = i;
        while (i < len && line[i] != ' ' && line[i] != '\t')
            i++;
        if (words < 3) {
            word[words] = line + start;
            wlen[words] = i - start;
        }
        words++;
    }
    if (words == 0)
        return CONTROL_PARSE_EMPTY;
    for (size_t c = 0; c < COUNT; c++) {
        if (strlen(commands[c].name) != wlen[0] || memcmp(commands[c].name, word[0], wlen[0]))
            continue;
        want->cmd = &commands[c];
        if (words > 2)
            return CONTROL_PARSE_BAD;
        if (commands[c].arg == CONTROL_ARG_NONE)
            return words == 1 ? CONTROL_PARSE_OK : CONTROL_PARSE_BAD;
        if (words == 1)
            return CONTROL_PARSE_BAD;
        const uint8_t *a = word[1];
        size_t alen = wlen[1];
        want->scale_op = CONTROL_SCALE_SET;
        if (a[0] == '+' || a[0] == '-') {
            want->scale_op = a[0] == '+' ? CONTROL_SCALE_ADD : CONTROL_SCALE_SUB;
            a++;
            alen--;
        }
        unsigned long v = 0;
        /* At most 5 digits: "00007" is 7, "0000007" too long. */
        if (alen == 0 || alen > 5)
            return CONTROL_PARSE_BAD;
        for (size_t i = 0; i < alen; i++) {
            if (a[i] < '0' || a[i] > '9')
                return CONTROL_PARSE_BAD;
            v = v * 10 + (a[i] - '0');
            if (v > 65535)
                return CONTROL_PARSE_BAD;
        }
        want->scale_n = (unsigned)v;
        return CONTROL_PARSE_OK;
    }
    return CONTROL_PARSE_BAD;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A line of the client's buffer: at most CONTROL_LINE_MAX - 1 bytes
     * before the newline. Longer inputs are still parsed (a pure function
     * must not care), just as well. */
    struct control_request got, want;
    char err[512];
    memset(err, 0x7f, sizeof(err));
    enum control_parse_result r =
        control_parse(commands, COUNT, (const char *)data, size, &got, err, sizeof(err));
    enum control_parse_result w = expect(data, size, &want);
    CHECK(r == w);
    switch (r) {
    case CONTROL_PARSE_OK:
        CHECK(got.cmd == want.cmd);
        CHECK(got.cmd->arg != CONTROL_ARG_SCALE ||
              (got.scale_op == want.scale_op && got.scale_n == want.scale_n));
        break;
    case CONTROL_PARSE_EMPTY:
        break;
    case CONTROL_PARSE_BAD: {
        size_t n = strnlen(err, sizeof(err));
        CHECK(n > 0 && n < sizeof(err));
        for (size_t i = 0; i < n; i++)
            CHECK(err[i] >= 0x20 && err[i] < 0x7f);
        break;
    }
    }

    /* A small err buffer changes only the message's length. */
    char small[8];
    struct control_request again;
    enum control_parse_result r2 =
        control_parse(commands, COUNT, (const char *)data, size, &again, small, sizeof(small));
    CHECK(r2 == r);
    CHECK(r != CONTROL_PARSE_BAD || strnlen(small, sizeof(small)) < sizeof(small));
    CHECK(r != CONTROL_PARSE_OK || memcmp(&got, &again, sizeof(got)) == 0);
    return 0;
}
