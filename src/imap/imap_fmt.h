/*
 * imap_fmt.h: IMAP output of strings (RFC 9051 4.3: quoted, literal,
 * NIL, astring), sequence sets (RFC 9051 9 sequence-set) and mailbox names
 * in modified UTF-7 (RFC 3501 5.1.3). Pure: any thread, no I/O.
 */
#ifndef IMAP_IMAP_FMT_H
#define IMAP_IMAP_FMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf;

/* Longest string sent quoted; longer ones go out as literals. */
#define IMAP_FMT_QUOTED_MAX 1024

/* Append p[0..n) as a quoted string when that is possible (RFC 9051 4.3:
 * no NUL, CR or LF; 8-bit only as valid UTF-8 and when utf8_ok, i.e. the
 * client enabled UTF8=ACCEPT or IMAP4rev2; at most IMAP_FMT_QUOTED_MAX),
 * else as a literal "{n}\r\n" + bytes. Failures stick in out. */
void imap_fmt_string(struct buf *out, const char *p, size_t n, bool utf8_ok);
/* NUL-terminated s as a string, or NIL for NULL. */
void imap_fmt_nstring(struct buf *out, const char *s, bool utf8_ok);
/* s as an atom when it is one (RFC 9051 9 astring: ASTRING-CHARs, not
 * empty, not "NIL"), else as a string. */
void imap_fmt_astring(struct buf *out, const char *s, bool utf8_ok);
/* A literal "{n}\r\n" + bytes; with binary and a NUL among the bytes the
 * literal8 form "~{n}\r\n" (RFC 3516 4.2). */
void imap_fmt_literal(struct buf *out, const char *p, size_t n, bool binary);
/* Append a sequence set for the ascending numbers v[0..n) with runs
 * compressed ("1:3,5"); duplicates are allowed. Nothing for n == 0. */
void imap_fmt_seqset(struct buf *out, const uint32_t *v, size_t n);

/* RFC 3501 5.1.3: encode a UTF-8 mailbox name as modified UTF-7,
 * appended to out. Returns 0, or -1 for invalid UTF-8 or when out hit its
 * max. */
int imap_mutf7_encode(const char *utf8, struct buf *out);
/* RFC 3501 5.1.3: decode modified UTF-7 strictly into UTF-8, appended to
 * out. Rejects (-1 with *why static): bytes outside printable ASCII,
 * unterminated or empty shifts other than "&-", invalid base64, leftover
 * bits, odd UTF-16, unpaired surrogates, encoded printable ASCII, an
 * encoded run right after another ("&...-&...-"). */
int imap_mutf7_decode(const char *mutf7, struct buf *out, const char **why);

#endif
