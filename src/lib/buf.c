/*
 * buf.c: the growable byte string (buf.h). Not locked: one owner at a time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "xmalloc.h"
#include "banned.h"

static char buf_empty_[1] = "";

void
buf_init(struct buf *b, size_t max)
{
	b->data = buf_empty_;
	b->len = 0;
	b->cap = 0;
	b->max = max > BUF_NOMAX ? BUF_NOMAX : max;
	b->failed = false;
}

void
buf_release(struct buf *b)
{
	if (b == NULL)
		return;
	if (b->cap > 0)
		free(b->data);
	b->data = buf_empty_;
	b->len = 0;
	b->cap = 0;
	b->failed = false;
}

void
buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->cap > 0)
		b->data[0] = '\0';
	b->failed = false;
}

void
buf_shrink(struct buf *b)
{
	if (b->len == 0 && b->cap > 0) {
		free(b->data);
		b->data = buf_empty_;
		b->cap = 0;
	}
}

char *
buf_reserve(struct buf *b, size_t n)
{
	size_t need, ncap;

	if (b->failed)
		return NULL;
	need = size_add(b->len, n);
	if (need > b->max) {
		b->failed = true;
		return NULL;
	}
	if (size_add(need, 1) > b->cap) {
		ncap = b->cap < 64 ? 64 : b->cap;
		while (ncap < size_add(need, 1))
			ncap = size_mul(ncap, 2);
		if (b->cap == 0) {
			b->data = xmalloc(ncap);
			b->data[0] = '\0';
		} else {
			b->data = xrealloc(b->data, ncap);
		}
		b->cap = ncap;
	}
	return b->data + b->len;
}

void
buf_commit(struct buf *b, size_t n)
{
	if (n == 0)
		return;
	b->len += n;
	b->data[b->len] = '\0';
}

int
buf_add(struct buf *b, const void *p, size_t n)
{
	char *d;

	if (n == 0)
		return b->failed ? -1 : 0;
	d = buf_reserve(b, n);
	if (d == NULL)
		return -1;
	memcpy(d, p, n);
	buf_commit(b, n);
	return 0;
}

int
buf_addc(struct buf *b, char c)
{
	return buf_add(b, &c, 1);
}

int
buf_adds(struct buf *b, const char *s)
{
	return buf_add(b, s, strlen(s));
}

int
buf_vaddf(struct buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	char small[256];
	char *d;
	int n;

	if (b->failed)
		return -1;
	va_copy(ap2, ap);
	n = vsnprintf(small, sizeof(small), fmt, ap2);
	va_end(ap2);
	if (n < 0) {
		b->failed = true;
		return -1;
	}
	if ((size_t)n < sizeof(small))
		return buf_add(b, small, (size_t)n);
	d = buf_reserve(b, (size_t)n);
	if (d == NULL)
		return -1;
	vsnprintf(d, (size_t)n + 1, fmt, ap);
	buf_commit(b, (size_t)n);
	return 0;
}

int
buf_addf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = buf_vaddf(b, fmt, ap);
	va_end(ap);
	return rc;
}

void
buf_consume(struct buf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
		if (b->cap > 0)
			b->data[0] = '\0';
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
	b->data[b->len] = '\0';
}

void
buf_truncate(struct buf *b, size_t n)
{
	if (n >= b->len)
		return;
	b->len = n;
	b->data[n] = '\0';
}

char *
buf_take(struct buf *b)
{
	char *s;

	if (b->cap == 0)
		s = xstrdup("");
	else
		s = b->data;
	b->data = buf_empty_;
	b->len = 0;
	b->cap = 0;
	b->failed = false;
	return s;
}
