/* printable.c - escape control characters of untrusted text in one-line messages (see printable.h). */
#include "io/printable.h"

#include "util/error.h"

const char *qb_printable(const char *s, char *buf, size_t cap) {
    static const char hex[] = "0123456789abcdef";
    size_t used = 0;
    if (cap == 0) return buf;
    if (!s) s = "(null)";
    for (; *s && used + 5 < cap; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '\n') buf[used++] = '\\', buf[used++] = 'n';
        else if (ch == '\r') buf[used++] = '\\', buf[used++] = 'r';
        else if (ch == '\t') buf[used++] = '\\', buf[used++] = 't';
        else if (ch < 0x20 || ch == 0x7f) buf[used++] = '\\', buf[used++] = 'x', buf[used++] = hex[ch >> 4], buf[used++] = hex[ch & 15];
        else buf[used++] = (char)ch;
    }
    buf[used] = '\0';
    return buf;
}

int qb_error_make_printable(void) {
    char clean[QB_ERROR_MAX];
    const char *msg = qb_last_error();
    for (const char *p = msg; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            qb_printable(msg, clean, sizeof clean);
            return qb_errorf("%s", clean);
        }
    }
    return -1;
}
