/*
 * buf.h: the one growable byte string. Binary safe, always NUL-terminated,
 * data never NULL after buf_init(), hard maximum set at init. An append
 * past max fails and the failure is sticky: check buf_failed() before the
 * content is used. One owner at a time; not locked.
 */
#ifndef LIB_BUF_H
#define LIB_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "compat.h"

#define BUF_NOMAX ((size_t)-1 / 2)

struct buf {
	char *data;   /* NUL-terminated; owned */
	size_t len;   /* bytes used, excluding the NUL */
	size_t cap;   /* bytes allocated */
	size_t max;   /* largest len allowed */
	bool failed;  /* an append exceeded max */
};

/* Prepare b with the given maximum length; allocates nothing yet. */
void buf_init(struct buf *b, size_t max);
/* Free storage; b may be reused after buf_init(). NULL-safe. */
void buf_release(struct buf *b);
/* Make empty, keep storage, clear the failure. */
void buf_reset(struct buf *b);
/* Append; return 0, or -1 when max would be exceeded (sticky). */
int buf_add(struct buf *b, const void *p, size_t n);
int buf_addc(struct buf *b, char c);
int buf_adds(struct buf *b, const char *s);
int buf_addf(struct buf *b, const char *fmt, ...) PRINTF_LIKE(2, 3);
int buf_vaddf(struct buf *b, const char *fmt, va_list ap) PRINTF_LIKE(2, 0);
/* Drop the first n bytes (n <= len). */
void buf_consume(struct buf *b, size_t n);
/* Cut to n bytes (n <= len). */
void buf_truncate(struct buf *b, size_t n);
/* Hand out the NUL-terminated string (caller frees); b becomes empty. */
char *buf_take(struct buf *b);
/* Make room for n more bytes; returns pointer to the free space or NULL if
 * max would be exceeded (sticky). Commit with buf_commit(). */
char *buf_reserve(struct buf *b, size_t n);
void buf_commit(struct buf *b, size_t n);
static inline bool
buf_failed(const struct buf *b)
{
	return b->failed;
}
/* Free the storage when empty, so an idle owner holds no memory. */
void buf_shrink(struct buf *b);

#endif
