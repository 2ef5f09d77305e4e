/*
 * span.h: borrowed views (struct span) and a bounded cursor (struct scan).
 * Each scan_* takes a maximum where a length is read, advances only on
 * success, returns 0 or -1, and so chains with ||. Pure; any thread.
 */
#ifndef LIB_SPAN_H
#define LIB_SPAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf;

struct span {
	const char *p;
	size_t len;
};

struct scan {
	const char *p; /* start of input, borrowed */
	size_t len;    /* input length */
	size_t pos;    /* cursor */
};

struct span span_of(const char *p, size_t len);
struct span span_of_cstr(const char *s);
struct span span_of_buf(const struct buf *b);
bool span_eq(struct span a, struct span b);
bool span_eq_cstr(struct span a, const char *s);
bool span_eq_ci(struct span a, const char *s);
bool span_has_prefix_ci(struct span a, const char *s);
/* Return a NUL-terminated copy (caller frees). */
char *span_dup(struct span a);
/* Strip leading and trailing space and tab. */
struct span span_trim(struct span a);

struct scan scan_of(struct span s);
bool scan_eof(const struct scan *s);
size_t scan_left(const struct scan *s);
struct span scan_rest(const struct scan *s);
/* Next byte or -1 at end (no advance). */
int scan_peek(const struct scan *s);
int scan_char(struct scan *s, char c);
int scan_lit(struct scan *s, const char *lit);
int scan_lit_ci(struct scan *s, const char *lit);
/* Skip spaces (0x20 only); never fails. */
void scan_skip_sp(struct scan *s);
/* One or more SP. */
int scan_sp(struct scan *s);
/* Bytes up to (not including) c, at most max of them; c must be present
 * and is not consumed. */
int scan_until(struct scan *s, char c, size_t max, struct span *out);
/* open, then bytes up to close (at most max), then close. */
int scan_between(struct scan *s, char open, char close, size_t max,
    struct span *out);
/* 1..max bytes for which pred() holds. */
int scan_while(struct scan *s, bool (*pred)(int c), size_t max,
    struct span *out);
/* Decimal digits as an unsigned value <= max (no sign, no overflow). */
int scan_u64(struct scan *s, uint64_t max, uint64_t *out);
/* Optional sign then digits; value within [min, max]. */
int scan_i64(struct scan *s, int64_t min, int64_t max, int64_t *out);

/* Whole-string numeric parse: all of a must be digits. */
int span_u64(struct span a, uint64_t max, uint64_t *out);
int span_i64(struct span a, int64_t min, int64_t max, int64_t *out);

bool char_is_digit(int c);
bool char_is_alpha(int c);
bool char_is_alnum(int c);

/* Validate UTF-8 (no overlongs, no surrogates, max U+10FFFF). */
bool utf8_valid(const char *p, size_t len);

#endif
