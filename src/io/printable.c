/* printable.c - escape control, invisible-format and bidirectional-override characters and invalid UTF-8 of
 * untrusted text (see printable.h). */
#include "io/printable.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "util/error.h"

/* Length of the valid UTF-8 sequence at s (1..4) and its code point, or 0 when s starts an invalid one
 * (stray continuation byte, overlong form, surrogate, above U+10FFFF, truncated). */
static int utf8_decode(const unsigned char *s, uint32_t *cp) {
    unsigned char c = s[0];
    int len;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if (c >= 0xc2 && c <= 0xdf) {
        len = 2, v = c & 0x1fu, min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3, v = c & 0x0fu, min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4, v = c & 0x07u, min = 0x10000;
    } else {
        return 0;
    }
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0; /* also stops at the terminating NUL */
        v = v << 6 | (s[i] & 0x3fu);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) return 0;
    *cp = v;
    return len;
}

/* Code points that are invisible or change the direction or layout of the text around them. */
static bool is_hidden_format(uint32_t cp) {
    return (cp >= 0x80 && cp <= 0x9f) || cp == 0xad || cp == 0x61c || cp == 0x180e || (cp >= 0x200b && cp <= 0x200f) ||
           (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2060 && cp <= 0x206f) || cp == 0xfeff ||
           (cp >= 0xfff9 && cp <= 0xfffb);
}

/* The escape for the character at s (written to esc, NUL-terminated) or "" when it is copied as is;
 * *len = its length in bytes. */
static void escape_one(const unsigned char *s, char esc[16], int *len) {
    uint32_t cp = 0;
    int n = utf8_decode(s, &cp);
    esc[0] = '\0';
    if (n == 0) {
        *len = 1;
        snprintf(esc, 16, "\\x%02x", s[0]);
        return;
    }
    *len = n;
    if (cp == '\n') snprintf(esc, 16, "\\n");
    else if (cp == '\r') snprintf(esc, 16, "\\r");
    else if (cp == '\t') snprintf(esc, 16, "\\t");
    else if (cp < 0x20 || cp == 0x7f) snprintf(esc, 16, "\\x%02x", (unsigned)cp);
    else if (is_hidden_format(cp)) snprintf(esc, 16, "\\u{%04x}", (unsigned)cp);
}

const char *qb_printable(const char *s, char *buf, size_t cap) {
    size_t used = 0;
    if (cap == 0) return buf;
    if (!s) s = "(null)";
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        char esc[16];
        int len;
        escape_one(p, esc, &len);
        size_t out_len = esc[0] ? strlen(esc) : (size_t)len;
        if (used + out_len >= cap) break;
        memcpy(buf + used, esc[0] ? esc : (const char *)p, out_len);
        used += out_len;
        p += len;
    }
    buf[used] = '\0';
    return buf;
}

bool qb_is_printable(const char *s) {
    if (!s) return true;
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        char esc[16];
        int len;
        escape_one(p, esc, &len);
        if (esc[0]) return false;
        p += len;
    }
    return true;
}

int qb_error_make_printable(void) {
    const char *msg = qb_last_error();
    if (qb_is_printable(msg)) return -1;
    char clean[QB_ERROR_MAX];
    qb_printable(msg, clean, sizeof clean);
    return qb_errorf("%s", clean);
}
