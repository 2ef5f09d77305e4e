/*
 * imap_search.h: SEARCH programs (RFC 9051 6.4.4, RFC 3501 6.4.4; RFC
 * 4731 ESEARCH return options; RFC 5182 SEARCHRES "$"; RFC 7162 3.1.5
 * MODSEQ; RFC 5032 WITHIN; RFC 8514 SAVEDATE): parse the criteria once,
 * then match each message. Message contents are fetched through lazy
 * accessors only when a key needs them, so flag, size and date searches
 * never open a file. Pure: any thread, no I/O, no logging, no clock (the
 * caller supplies "now").
 */
#ifndef IMAP_IMAP_SEARCH_H
#define IMAP_IMAP_SEARCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/span.h"

struct buf;
struct message_part;

#define IMAP_SEARCH_DEPTH_MAX 32        /* nested (), NOT and OR */
#define IMAP_SEARCH_KEYS_MAX 1000       /* keys in one program */
#define IMAP_SEARCH_STRING_MAX (100 * 1024) /* spec imap.md 2.1: literal */
#define IMAP_SEARCH_RANGES_MAX 10000    /* ranges in all sequence sets */
#define IMAP_SEARCH_TEXT_MAX (16 * 1024 * 1024) /* decoded text per part */
#define IMAP_SEARCH_ESEARCH_LINE 100    /* numbers per "* SEARCH" line */

/* What the parser needs from the session. */
struct imap_search_ctx {
	uint32_t nmsgs;        /* messages in the mailbox: "*" in MSN sets */
	uint32_t max_uid;      /* highest UID in the mailbox (0 if empty):
	                          "*" in UID sets */
	const uint32_t *saved; /* SEARCHRES result (RFC 5182), UIDs in any
	                          order; borrowed for the parse */
	size_t nsaved;
	int64_t now;           /* unix seconds, for YOUNGER and OLDER */
	bool savedate;         /* the mailbox keeps save dates (RFC 8514) */
};

struct imap_search; /* opaque parsed program */

/* Set in *why when CHARSET names a charset other than US-ASCII or UTF-8
 * (IMAP: NO [BADCHARSET (US-ASCII UTF-8)]). */
extern const char imap_search_err_badcharset[];

/* Parse "[CHARSET astring SP] search-key *(SP search-key)" from the
 * cursor to the end of its input (the SEARCH arguments after any RETURN
 * options, without the final CRLF). Strings are astrings: atoms, quoted
 * strings, or literals that the command reader left inline as "{n}\r\n"
 * (or "{n+}\r\n") followed by the n octets. Strings must be UTF-8. "*" and
 * "$" are resolved with ctx at parse time. Returns 0 with *out (free with
 * imap_search_free()), or -1 with *why static (syntax, limits, bad date,
 * imap_search_err_badcharset); the cursor is then unspecified. */
int imap_search_parse(struct scan *s, const struct imap_search_ctx *ctx,
    struct imap_search **out, const char **why);
void imap_search_free(struct imap_search *q); /* NULL-safe */

/* What evaluation needs beyond the index row. */
#define IMAP_SEARCH_NEED_TREE 0x1  /* parsed tree (header keys, SENT*) */
#define IMAP_SEARCH_NEED_BYTES 0x2 /* message bytes (header, body keys) */
unsigned imap_search_needs(const struct imap_search *q);
/* Whether the program has a MODSEQ key (RFC 7162 3.1.5: the response then
 * carries MODSEQ, and CONDSTORE is enabled). */
bool imap_search_has_modseq(const struct imap_search *q);

/* Lazy accessors: return 0 and fill the output (valid until the matching
 * of this message ends), or -1 if unavailable (the key then fails). The
 * caller caches, so each is cheap when called again. */
typedef int imap_search_bytes_fn(void *arg, struct span *msg_out);
typedef int imap_search_tree_fn(void *arg,
    const struct message_part **root_out);

/* One message as SEARCH sees it. */
struct imap_search_msg {
	uint32_t seq;          /* message sequence number */
	uint32_t uid;
	uint32_t flags;        /* STORE_F_* bits of maildir/store.h */
	const char *keywords;  /* space separated, lower-case; NULL = none */
	int64_t modseq;        /* as the client sees it (stored 0 is 1) */
	int64_t size;          /* RFC822.SIZE */
	int64_t received;      /* internal date, unix seconds */
	int64_t savedate;      /* unix seconds; 0 unknown (received used) */
	imap_search_bytes_fn *get_bytes;
	imap_search_tree_fn *get_tree;
	void *arg;             /* for the accessors */
	/* The header section alone (through its empty line), for header
	 * keys; NULL: taken from get_bytes. */
	imap_search_bytes_fn *get_header;
};

/* Whether m matches q (RFC 9051 6.4.4). Case-insensitive matching folds
 * ASCII letters only. Any thread; q is not modified. */
bool imap_search_match(const struct imap_search *q,
    const struct imap_search_msg *m);

/* ESEARCH return options (RFC 4731 3.1; RFC 5182 SAVE). */
#define IMAP_SEARCH_RET_MIN 0x01
#define IMAP_SEARCH_RET_MAX 0x02
#define IMAP_SEARCH_RET_ALL 0x04
#define IMAP_SEARCH_RET_COUNT 0x08
#define IMAP_SEARCH_RET_SAVE 0x10

/* If the cursor is at "RETURN (...)" (case-insensitive), parse it and the
 * space after it: *opts_out gets the IMAP_SEARCH_RET_* bits ("RETURN ()"
 * is ALL) and *present_out true. Otherwise consume nothing and set
 * *present_out false. Returns 0, or -1 with *why static for an unknown
 * option or bad syntax. */
int imap_search_return_parse(struct scan *s, unsigned *opts_out,
    bool *present_out, const char **why);

/* Append "* ESEARCH (TAG "tag")[ UID][ MIN n][ MAX n][ ALL set][ COUNT n]
 * [ MODSEQ m]\r\n" (RFC 4731 3.1, RFC 7162 3.1.5) for the ascending
 * numbers v[0..n). MIN, MAX, ALL and MODSEQ are left out without
 * matches; modseq <= 0 leaves MODSEQ out. Nothing at all when opts is
 * only SAVE (RFC 5182 2.1). The tag is always a quoted string
 * (INTEROP: Outlook needs it quoted). */
void imap_search_format_esearch(struct buf *out, const char *tag, bool uid,
    unsigned opts, const uint32_t *v, size_t n, int64_t modseq);
/* Append "* SEARCH n n ...\r\n" lines of at most IMAP_SEARCH_ESEARCH_LINE
 * numbers, at least one line; with modseq > 0 each line ends in
 * " (MODSEQ m)" (RFC 7162 3.1.5). */
void imap_search_format_search(struct buf *out, const uint32_t *v, size_t n,
    int64_t modseq);

#endif
