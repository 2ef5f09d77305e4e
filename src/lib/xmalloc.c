/*
 * xmalloc.c: allocation that succeeds or aborts; saturating size math.
 * Any thread. Exhaustion is reported with one write(2) to stderr, since
 * the logger itself allocates.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compat.h"
#include "xmalloc.h"
#include "banned.h"

static void NORETURN
oom(void)
{
	static const char msg[] = "l=fatal m=\"out of memory\"\n";
	ssize_t n = write(2, msg, sizeof(msg) - 1);

	(void)n;
	abort();
}

void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		oom();
	return p;
}

void *
xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (p == NULL)
		oom();
	return p;
}

void *
xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (q == NULL)
		oom();
	return q;
}

void *
xreallocarray(void *p, size_t n, size_t size)
{
	return xrealloc(p, size_mul(n, size));
}

char *
xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *
xstrndup(const char *p, size_t n)
{
	size_t len = strnlen(p, n);
	char *s = xmalloc(size_add(len, 1));

	memcpy(s, p, len);
	s[len] = '\0';
	return s;
}

size_t
size_add(size_t a, size_t b)
{
	size_t r;

	if (__builtin_add_overflow(a, b, &r))
		return SIZE_MAX;
	return r;
}

size_t
size_mul(size_t a, size_t b)
{
	size_t r;

	if (__builtin_mul_overflow(a, b, &r))
		return SIZE_MAX;
	return r;
}
