/*
 * xmalloc.h: allocation that succeeds or aborts, and overflow-checked size
 * arithmetic. Any thread.
 */
#ifndef LIB_XMALLOC_H
#define LIB_XMALLOC_H

#include <stddef.h>
#include <stdint.h>

/* Allocate; on exhaustion log to stderr and abort(). Never return NULL. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
/* Copy at most n bytes of p and NUL-terminate. */
char *xstrndup(const char *p, size_t n);
/* Like xrealloc for an array of n elements of size bytes. */
void *xreallocarray(void *p, size_t n, size_t size);

/* a + b and a * b, saturating at SIZE_MAX (which no allocation satisfies). */
size_t size_add(size_t a, size_t b);
size_t size_mul(size_t a, size_t b);

#endif
