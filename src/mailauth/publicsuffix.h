/*
 * publicsuffix.h: the public suffix list (publicsuffix.org), ICANN
 * section only (RFC 7489 erratum 6729), read at run time from a file
 * (Debian package publicsuffix), and organizational domains (RFC 7489
 * 3.2; spec auth.md section 1).
 *
 * A loaded list is immutable: any thread may use it concurrently.
 */
#ifndef MAILAUTH_PUBLICSUFFIX_H
#define MAILAUTH_PUBLICSUFFIX_H

#include <stdbool.h>

struct buf;

#define PUBLICSUFFIX_PATH "/usr/share/publicsuffix/public_suffix_list.dat"
#define PUBLICSUFFIX_FILE_MAX (16 * 1024 * 1024) /* bytes of list file */
#define PUBLICSUFFIX_RULES_MAX 100000            /* rules we keep */

struct publicsuffix_list; /* opaque */

/* Load the list at path (NULL: PUBLICSUFFIX_PATH). Rules are stored in
 * ASCII (A-label) form. Returns the list, or NULL with err. Blocks on
 * disk. */
struct publicsuffix_list *publicsuffix_load(const char *path,
    struct buf *err);
/* Parse list text (the file format). Returns the list or NULL with err. */
struct publicsuffix_list *publicsuffix_parse(const char *text, size_t len,
    struct buf *err);
void publicsuffix_free(struct publicsuffix_list *l); /* NULL-safe */

/* Organizational domain of domain (ASCII or UTF-8, any case, optional
 * final dot), appended to out in lower-case ASCII: an exception rule
 * gives its own labels, another matching rule its labels plus one, no
 * rule the last two labels; a name with fewer labels is itself. Returns
 * 0, or -1 for a name that is not a valid domain. Pure. */
int publicsuffix_org_domain(const struct publicsuffix_list *l,
    const char *domain, struct buf *out);
/* Whether a and b have the same organizational domain. */
bool publicsuffix_same_org(const struct publicsuffix_list *l, const char *a,
    const char *b);

#endif
