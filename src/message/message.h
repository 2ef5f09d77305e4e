/*
 * message.h: the message parser. RFC 5322 header fields, addresses and
 * dates; the MIME part tree (RFC 2045, RFC 2046) with byte offsets and
 * line counts of every part; transfer decoding, RFC 2047 encoded words,
 * RFC 2231 parameters, charset conversion to UTF-8; a compact
 * serialisation of the parsed tree (the store's ParsedBuf); helpers for
 * threading (canonical Message-ID, base subject).
 *
 * Everything here is pure: bytes in, result out, no I/O, no logging, no
 * global state. Any thread may call any function. Input is untrusted
 * message data; every loop is bounded by the input length and the limits
 * below, and no function reads outside the span it is given.
 */
#ifndef MESSAGE_MESSAGE_H
#define MESSAGE_MESSAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/span.h"

struct buf;

/* Limits. Exceeding a structural limit does not fail the parse: the
 * deepest or surplus parts are kept as leaves and the root is flagged
 * MESSAGE_PART_TRUNCATED. */
#define MESSAGE_DEPTH_MAX 50           /* nested multipart/message levels */
#define MESSAGE_PARTS_MAX 10000        /* parts in one message, all levels */
#define MESSAGE_HEADER_FIELDS_MAX 10000 /* fields in one header section */
#define MESSAGE_ADDRS_MAX 10000        /* addresses in one field */
#define MESSAGE_PARAMS_MAX 100         /* parameters of one Content-Type */
#define MESSAGE_RFC2231_SECTIONS_MAX 100 /* RFC 2231 3: continuations */
/* RFC 2046 5.1.1: a boundary is 1 to 70 characters; INTEROP: longer ones
 * come from broken generators and are accepted up to the line length
 * limit of RFC 5322 2.1.1. */
#define MESSAGE_BOUNDARY_MAX 998
/* A decoded header value (subject, display name, parameter). */
#define MESSAGE_VALUE_MAX (256 * 1024)
/* Size of serialised ParsedBuf we accept back. */
#define MESSAGE_SERIAL_MAX (64 * 1024 * 1024)

/* ---- header fields (message_header.c) ---- */

struct message_field {
	struct span name;  /* field name, WSP before ':' removed (RFC 5322 4.5.3) */
	struct span value; /* after ':', folding kept, final line end removed */
	struct span field; /* the whole field including its final line end */
};

struct message_header_iter {
	struct scan s;
	size_t nfields;
};

/* Length of the header section at the start of msg, including the empty
 * line that ends it. Without an empty line the whole input is header.
 * Lines end in LF with an optional CR before it. */
size_t message_header_len(struct span msg);
/* Iterate over the fields of a header section (as returned by
 * message_header_len(), or any prefix of a message). */
void message_header_iter_init(struct message_header_iter *it,
    struct span header);
/* Returns 1 with *f filled, 0 at the end of the section, -1 with *why
 * after MESSAGE_HEADER_FIELDS_MAX fields. A line without a colon becomes
 * a field whose name is the whole line and whose value is empty
 * (INTEROP: Dovecot and others keep such lines in the header). */
int message_header_next(struct message_header_iter *it,
    struct message_field *f, const char **why);
/* First field named name (case-insensitive) in header; 0 with its raw
 * value in *value_out, or -1 if absent. */
int message_header_find(struct span header, const char *name,
    struct span *value_out);
/* RFC 5322 2.2.3: remove CRLF (or LF) before WSP, and trim WSP at both
 * ends. Appends to out; returns 0, or -1 if out hit its max. */
int message_unfold(struct span value, struct buf *out);

/* ---- decoders (message_decode.c) ---- */

/* Base64 (RFC 2045 6.8), lenient: bytes outside the alphabet are
 * skipped, padding is optional, decoding stops at the first "=".
 * Appends to out; -1 only when out hits its max. */
int message_decode_base64(struct span in, struct buf *out);
/* Quoted-printable (RFC 2045 6.7), lenient: an "=" not followed by two
 * hex digits or a line end is kept as it is; trailing WSP on encoded
 * lines is removed. Line ends are kept as they are in the input. Appends
 * to out; -1 only when out hits its max. */
int message_decode_qp(struct span in, struct buf *out);
/* Content-Transfer-Encoding values (lower-case) we know. */
enum message_cte {
	MESSAGE_CTE_7BIT,
	MESSAGE_CTE_8BIT,
	MESSAGE_CTE_BINARY,
	MESSAGE_CTE_QP,
	MESSAGE_CTE_BASE64,
	MESSAGE_CTE_UNKNOWN,
};
/* Map a Content-Transfer-Encoding value (NULL = absent = 7bit). */
enum message_cte message_cte_of(const char *cte);
/* Decode body according to cte. Unknown encodings fail with -1 and
 * *why (IMAP BINARY answers UNKNOWN-CTE); -1 also when out hits max. */
int message_decode_cte(enum message_cte cte, struct span body,
    struct buf *out, const char **why);
/* Convert text in charset to UTF-8, appended to out. NULL, empty,
 * "us-ascii" and "utf-8" need no conversion; invalid bytes become
 * U+FFFD. An unknown charset returns -1 with *why and appends nothing.
 * -1 also when out hits its max. */
int message_charset_to_utf8(const char *charset, struct span in,
    struct buf *out, const char **why);
/* RFC 2047: decode encoded words in an unstructured value (already
 * unfolded or not), appending UTF-8 to out. Whitespace between two
 * adjacent encoded words is dropped (RFC 2047 6.2). Words with an
 * unknown charset or bad encoding are kept as they are. Other bytes are
 * copied; invalid UTF-8 among them becomes U+FFFD. -1 if out hit max. */
int message_decode_words(struct span in, struct buf *out);

/* ---- addresses (message_addr.c) ---- */

/* One entry of an address list, in the shape IMAP ENVELOPE uses (RFC 9051
 * 7.5.2): a mailbox has user (and usually host) set, or, for a display
 * name without an address ("Name <>", "Some Name"), name set and user
 * and host NULL; a group start has group set and user/host NULL; a group
 * end has kind GROUP_END. */
enum message_addr_kind {
	MESSAGE_ADDR_MAILBOX,
	MESSAGE_ADDR_GROUP_START,
	MESSAGE_ADDR_GROUP_END,
};

struct message_address {
	enum message_addr_kind kind;
	char *name;  /* display name (or the comment after an addr-spec
	                without one), RFC 2047 decoded, UTF-8; NULL if none */
	char *adl;   /* obsolete source route ("@a,@b"); NULL if none */
	char *user;  /* localpart, quoting removed (may be ""); NULL for groups
	                and for a name without an address */
	char *host;  /* domain as written; NULL if none */
	char *group; /* group display name, for GROUP_START; else NULL */
};

struct message_addr_list {
	struct message_address *v; /* owned */
	size_t n;
};

/* Parse an address list field value (RFC 5322 3.4, obsolete 4.4, UTF-8
 * per RFC 6532). Lenient: missing angle brackets, bare localparts, stray
 * junk between addresses. Returns 0 and appends to *out (possibly
 * nothing), or -1 with *why for input from which nothing sane comes; on
 * -1 entries already parsed stay in *out. */
int message_addr_parse(struct span value, struct message_addr_list *out,
    const char **why);
void message_addr_list_release(struct message_addr_list *l); /* NULL-safe */
/* First mailbox (not a group marker) in l, or NULL. Borrowed from l. */
const struct message_address *message_addr_first(
    const struct message_addr_list *l);

/* ---- dates (message_date.c) ---- */

/* RFC 5322 3.3 date-time, with obsolete forms (4.3: two- and three-digit
 * years, named and military zones, comments). On success *t_out is
 * seconds since the epoch (UTC) and *off_out the zone offset in minutes
 * east of UTC. Returns 0, or -1 with *why. */
int message_date_parse(struct span value, int64_t *t_out, int *off_out,
    const char **why);
/* Format as RFC 5322 ("Mon, 2 Jan 2006 15:04:05 -0700"); appends. */
int message_date_format(int64_t t, int off, struct buf *out);

/* ---- the part tree (message_mime.c) ---- */

struct message_param {
	char *name;  /* lower-case attribute name, "*" suffixes removed */
	char *value; /* decoded UTF-8 value (RFC 2231, RFC 2047) */
};

struct message_envelope {
	char *date;        /* raw Date value, unfolded; NULL if absent */
	bool date_ok;      /* date parsed into date_t/date_off */
	int64_t date_t;    /* seconds since the epoch, UTC */
	int date_off;      /* minutes east of UTC */
	char *subject;     /* RFC 2047 decoded UTF-8; NULL if absent */
	char *subject_raw; /* unfolded raw Subject; NULL if absent */
	/* each list joins all fields of its name in header order
	 * (INTEROP: RFC 5322 3.6 allows one; Dovecot joins repeats) */
	struct message_addr_list from, sender, reply_to, to, cc, bcc;
	char *in_reply_to; /* raw value, unfolded; NULL if absent */
	char *message_id;  /* raw value, unfolded; NULL if absent */
};

/* Part flags. */
#define MESSAGE_PART_TRUNCATED 0x01 /* a limit cut the tree below here */
#define MESSAGE_PART_NO_END 0x02    /* multipart without close delimiter */
#define MESSAGE_PART_BARE_LF 0x04   /* some line in the part ends in bare LF */
#define MESSAGE_PART_HAS_CTYPE 0x08 /* Content-Type was present and valid */

/*
 * One MIME entity. Offsets are absolute positions in the buffer given to
 * message_parse(): header_off <= body_off <= end_off <= length. The
 * header starts at header_off and includes its terminating empty line;
 * the body is [body_off, end_off). For a part of a multipart the line end
 * before the next boundary belongs to the boundary (RFC 2046 5.1.1), so
 * it is not in the body.
 */
struct message_part {
	char *type;      /* lower-case media type, "text" by default */
	char *subtype;   /* lower-case subtype, "plain" by default */
	struct message_param *params; /* Content-Type parameters; owned */
	size_t nparams;
	char *id;          /* Content-ID, raw unfolded; NULL if absent */
	char *description; /* Content-Description, decoded; NULL if absent */
	char *cte;         /* Content-Transfer-Encoding, lower-case; NULL if absent */
	char *disposition; /* Content-Disposition value, lower-case; NULL if absent */
	struct message_param *disp_params; /* owned */
	size_t ndisp_params;
	char *language;    /* Content-Language, raw unfolded; NULL if absent */
	char *location;    /* Content-Location, unfolded; NULL if absent */
	char *md5;         /* Content-MD5, trimmed; NULL if absent */
	size_t header_off; /* first byte of this part's header */
	size_t body_off;   /* first byte of the body */
	size_t end_off;    /* one past the last byte of the body */
	size_t body_lines; /* lines in the body (a last unterminated line counts) */
	unsigned flags;    /* MESSAGE_PART_* */
	struct message_envelope *envelope; /* the root and message/rfc822 bodies; else NULL */
	struct message_part *parts; /* children of a multipart; owned array */
	size_t nparts;
	struct message_part *message; /* for message/rfc822 (and global): the
	                                 nested message; NULL otherwise */
};

/* Parse a whole message. Never fails on malformed input: whatever is
 * there gets a tree. Returns 0 with a new tree in *root_out (free with
 * message_part_free()), or -1 with *why only for input the limits refuse
 * outright (len beyond what offsets can express). */
int message_parse(const char *msg, size_t len, struct message_part **root_out,
    const char **why);
/* Free a tree from message_parse() or message_deserialise(). NULL-safe. */
void message_part_free(struct message_part *p);
/* Value of parameter name (lower-case) in params, or NULL. Borrowed. */
const char *message_param_get(const struct message_param *params, size_t n,
    const char *name);
/* Charset of a text part: its charset parameter, or "us-ascii" (RFC 2045
 * 5.2). Borrowed from p or static. */
const char *message_part_charset(const struct message_part *p);
/* Whether p is multipart/\*, message/rfc822 (or global), a text leaf. */
bool message_part_is_multipart(const struct message_part *p);
bool message_part_is_message(const struct message_part *p);
bool message_part_is_text(const struct message_part *p);
/* Count of all parts in the tree, root included. */
size_t message_part_count(const struct message_part *p);

/* Decoded, UTF-8 converted text of one text leaf of a tree parsed from
 * msg. Appends to out. Returns 0, or -1 with *why (unknown encoding or
 * charset: then the raw body is appended as text anyway) or when out hit
 * its max. */
int message_part_text(const char *msg, size_t len,
    const struct message_part *p, struct buf *out, const char **why);
/* Called for every text/\* leaf, depth first, descending into message
 * parts, with its decoded UTF-8 text (borrowed for the call). A non-zero
 * return stops the walk and is returned. */
typedef int message_text_fn(const struct message_part *p, struct span text,
    void *arg);
int message_text_walk(const char *msg, size_t len,
    const struct message_part *root, size_t text_max, message_text_fn *fn,
    void *arg);

/* ---- serialisation (message_serial.c) ---- */

/* Serialise a tree (JSON). Appends to out; 0, or -1 if out hit max. */
int message_serialise(const struct message_part *root, struct buf *out);
/* Load a serialised tree and validate it against a message of msg_len
 * bytes (offsets ordered and inside the parent, depth and part limits).
 * Returns 0 with a new tree in *root_out, or -1 with *why. */
int message_deserialise(struct span data, size_t msg_len,
    struct message_part **root_out, const char **why);
/* Deep comparison of two trees (used by tests and verifydata). */
bool message_part_equal(const struct message_part *a,
    const struct message_part *b);

/* ---- threading helpers (message_thread.c) ---- */

/* Canonical Message-ID (spec store.md 3.1): lower-cased, without <>,
 * quoted localpart unquoted when it needs no quotes. Input is a raw
 * Message-ID value. Returns 0 and appends to out, or -1 with *why
 * (missing <>, empty). */
int message_id_canonical(struct span value, struct buf *out,
    const char **why);
/* Message-IDs of a References or In-Reply-To value, in order, each as
 * the text between < and > (not canonicalised). Calls fn for each; a
 * non-zero return stops and is returned. At most MESSAGE_ADDRS_MAX. */
typedef int message_ref_fn(struct span id, void *arg);
int message_refs_walk(struct span value, message_ref_fn *fn, void *arg);
/* Base subject for threading (RFC 5256 2.1; store.md 8): lower-cased,
 * whitespace collapsed, leading re:/fw:/fwd: and [tags] removed,
 * trailing (fwd) and enclosing [fwd: ...] removed. subject is the
 * decoded UTF-8 subject. Appends to out; *is_response_out (may be NULL)
 * tells if a reply or forward prefix was removed. -1 if out hit max. */
int message_subject_base(struct span subject, struct buf *out,
    bool *is_response_out);

#endif
