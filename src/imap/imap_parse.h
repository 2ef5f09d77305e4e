/*
 * imap_parse.h: the IMAP command parser (RFC 9051 9 formal syntax, RFC
 * 3501 9, RFC 7888 LITERAL+/LITERAL-, RFC 3516 literal8). It works on one
 * whole command as it came over the wire: the command line with every
 * literal inline ("{n}\r\n" followed by its n bytes), the final CRLF
 * removed. APPEND message literals are the exception: the session streams
 * them to temp files, so the command text holds only their "{n}\r\n"
 * header (imap_parser.ext_literals).
 *
 * Pure: any thread, no I/O, no logging. Each imap_parse_* returns 0 or -1
 * with p->why set to a static text, and advances only on success where
 * noted. Strings returned by the parser are owned by it and freed by
 * imap_parser_release().
 */
#ifndef IMAP_IMAP_PARSE_H
#define IMAP_IMAP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/span.h"

struct buf;

#define IMAP_LINE_MAX (16 * 1024)      /* spec/imap.md 2.1, incl. CRLF */
#define IMAP_LITERAL_MAX (100 * 1024)  /* spec/imap.md 2.1, one literal */
#define IMAP_LITERALS_MAX 1000         /* spec/imap.md 2.1, per command */
#define IMAP_LITERAL_TOTAL_MAX (1024 * 1024) /* spec/imap.md 2.1 */
#define IMAP_TAG_MAX 256
#define IMAP_ATOM_MAX 1024
#define IMAP_NEST_MAX 32               /* parenthesised lists inside lists */
#define IMAP_SEQ_RANGES_MAX 10000      /* ranges in one sequence set */
#define IMAP_KEYWORDS_MAX 1000         /* flags in one flag list */
/* The command text as assembled by the session: lines plus literals. */
#define IMAP_COMMAND_MAX (IMAP_LINE_MAX + IMAP_LITERAL_TOTAL_MAX + 64)

/* Literal announcement at the end of a line: "{n}", "{n+}", "~{n}". */
struct imap_literal_hdr {
	uint64_t size;
	bool sync;   /* "{n}": the client waits for "+ " */
	bool binary; /* "~{n}": literal8 */
};

/* If line ends with a literal announcement, fill *h and return 1; return
 * 0 when it does not; -1 with *why for a malformed one ("{12x}", size
 * over UINT32 range). */
int imap_parse_literal_hdr(struct span line, struct imap_literal_hdr *h,
    const char **why);

struct imap_parser {
	struct scan s;
	bool ext_literals; /* APPEND message literal bytes are not inline */
	bool utf8;         /* UTF8=ACCEPT / IMAP4rev2: 8-bit in quoted */
	const char *why;
	char **allocs;     /* strings handed out; owned */
	size_t nallocs;
	size_t cap;
};

void imap_parser_init(struct imap_parser *p, struct span cmd);
void imap_parser_release(struct imap_parser *p);

bool imap_parse_eof(const struct imap_parser *p);
/* Exactly one SP. */
int imap_parse_sp(struct imap_parser *p);
int imap_parse_char(struct imap_parser *p, char c);
/* Peek at the next byte, -1 at the end. */
int imap_parse_peek(const struct imap_parser *p);
/* Case-insensitive keyword followed by a delimiter (SP, ")", "(", "[",
 * end); advances only when it matches. */
int imap_parse_kw(struct imap_parser *p, const char *kw);
/* Tag: 1..IMAP_TAG_MAX ASTRING-CHARs except "+". */
int imap_parse_tag(struct imap_parser *p, struct span *out);
/* Atom: ATOM-CHARs (RFC 9051 9), at most IMAP_ATOM_MAX. */
int imap_parse_atom(struct imap_parser *p, struct span *out);
/* Command name: letters; "UID SP name" is the caller's. */
int imap_parse_cmdname(struct imap_parser *p, struct span *out);
/* astring / string / nstring (NIL gives NULL). Strings must not hold NUL.
 * *out is NUL-terminated and owned by the parser; *len_out may be NULL. */
int imap_parse_astring(struct imap_parser *p, char **out, size_t *len_out);
int imap_parse_string(struct imap_parser *p, char **out, size_t *len_out);
int imap_parse_nstring(struct imap_parser *p, char **out);
/* list-mailbox: astring or list-chars with '%' and '*'. */
int imap_parse_list_mailbox(struct imap_parser *p, char **out);
int imap_parse_number(struct imap_parser *p, uint32_t *out);   /* u32 */
int imap_parse_nznumber(struct imap_parser *p, uint32_t *out); /* > 0 */
int imap_parse_number64(struct imap_parser *p, uint64_t *out); /* mod-sequence */
/* A literal header whose bytes are outside the text (ext_literals):
 * "{n}" / "{n+}" / "~{n}" then CRLF. */
int imap_parse_ext_literal(struct imap_parser *p, struct imap_literal_hdr *h);

/* ---- sequence sets (RFC 9051 9 sequence-set, RFC 5182 "$") ---- */

#define IMAP_SEQ_STAR 0 /* "*" in a range */

struct imap_range {
	uint32_t a, b; /* as written; IMAP_SEQ_STAR for "*" */
};

struct imap_seqset {
	struct imap_range *v; /* owned */
	size_t n;
	bool dollar;          /* "$": the saved search result */
};

int imap_parse_seqset(struct imap_parser *p, struct imap_seqset *out);
void imap_seqset_release(struct imap_seqset *s);
/* Whether x (with star meaning "largest") is in the set. */
bool imap_seqset_contains(const struct imap_seqset *s, uint32_t x,
    uint32_t star);

/* ---- flags (RFC 9051 2.3.2, 9 flag-list) ---- */

struct imap_flags {
	uint32_t flags;   /* STORE_F_* */
	char *keywords;   /* owned by the parser; lower-cased, space
			   * separated, "" when none */
};

/* "(" [flag *(SP flag)] ")". Unknown system flags ("\Foo") fail. */
int imap_parse_flag_list(struct imap_parser *p, struct imap_flags *out);
/* Flags without parentheses, as STORE allows: flag *(SP flag). */
int imap_parse_flags_bare(struct imap_parser *p, struct imap_flags *out);
/* Map one flag word; 0 with *bit (0 for a keyword) or -1. */
int imap_flag_lookup(struct span word, uint32_t *bit);

/* ---- dates ---- */

/* date-time (RFC 9051 9): "dd-Mon-yyyy hh:mm:ss +zzzz" quoted, day
 * possibly space-padded. *t_out: seconds since the epoch (UTC). */
int imap_parse_date_time(struct imap_parser *p, int64_t *t_out);
/* date (RFC 9051 9): d[d]-Mon-yyyy, quoted or not; midnight UTC. */
int imap_parse_date(struct imap_parser *p, int64_t *t_out);

/* ---- APPEND streaming ---- */

/* For the command text so far ("tag APPEND ...", or "tag [UID] REPLACE
 * n ..." of RFC 8508 with one message), ending in a literal
 * announcement: is that literal a message (1) or a string such as the
 * mailbox name (0)? -1 when the text is not an APPEND or
 * REPLACE or is malformed.
 * Message literals are those after the mailbox and optional flags and
 * date-time (RFC 9051 6.3.12, RFC 3502 MULTIAPPEND, RFC 6855 UTF8). With
 * ext_literals the earlier message literals have no bytes inline. On 1,
 * *mailbox_out gets the decoded mailbox argument (malloc'd, caller frees)
 * when it is the first message. */
int imap_append_literal_is_msg(struct span text, bool utf8,
    char **mailbox_out);

#endif
