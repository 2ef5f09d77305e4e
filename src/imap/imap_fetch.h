/*
 * imap_fetch.h: FETCH response items computed from a message and its
 * parsed MIME tree (RFC 9051 6.4.5 and 7.5.2, RFC 3501 7.4.2, RFC 3516
 * BINARY, RFC 8970 PREVIEW): ENVELOPE, BODY and BODYSTRUCTURE, body
 * sections with partials, BINARY decoding. Pure: any thread, no I/O, no
 * logging. The message bytes are the stored file (CRLF line ends); the
 * tree is the one message_parse() or message_deserialise() gave for it.
 */
#ifndef IMAP_IMAP_FETCH_H
#define IMAP_IMAP_FETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/span.h"

struct buf;
struct message_envelope;
struct message_part;

#define IMAP_SECTION_DEPTH_MAX 64   /* part numbers in "1.2.3" */
#define IMAP_SECTION_FIELDS_MAX 256 /* names in HEADER.FIELDS (...) */
#define IMAP_SECTION_FIELD_MAX 998  /* RFC 5322 2.1.1: one line */
#define IMAP_PREVIEW_CHARS 256      /* RFC 8970 3.2: at most 256 characters */

/* Append the ENVELOPE structure "(date subject from ...)" of RFC 9051
 * 7.5.2. Strings with 8-bit content go out quoted only with utf8_ok;
 * without it, decoded non-ASCII display names are sent as RFC 2047
 * encoded words. Failures stick in out. */
void imap_fetch_envelope(struct buf *out, const struct message_envelope *env,
    bool utf8_ok);
/* Append BODYSTRUCTURE (extended) or BODY (not extended) of the tree
 * root, RFC 9051 7.5.2 and RFC 3501 7.4.2. Failures stick in out. */
void imap_fetch_bodystructure(struct buf *out, const struct message_part *root,
    bool extended);

enum imap_section_kind {
	IMAP_SECTION_BODY,        /* "" or bare part numbers */
	IMAP_SECTION_HEADER,      /* HEADER */
	IMAP_SECTION_FIELDS,      /* HEADER.FIELDS (list) */
	IMAP_SECTION_FIELDS_NOT,  /* HEADER.FIELDS.NOT (list) */
	IMAP_SECTION_TEXT,        /* TEXT */
	IMAP_SECTION_MIME,        /* MIME (needs part numbers) */
};

/* A parsed section-spec and partial. Release with imap_section_release(). */
struct imap_section {
	uint32_t part[IMAP_SECTION_DEPTH_MAX]; /* part numbers, each >= 1 */
	size_t npart;
	enum imap_section_kind kind;
	char **fields;        /* FIELDS / FIELDS_NOT names; owned */
	size_t nfields;
	bool partial;         /* "<origin.count>" given */
	uint32_t origin;      /* octet offset of the partial */
	uint32_t count;       /* octets of the partial, >= 1 */
};

/* Parse "[" section-spec "]" [ "<" origin "." count ">" ] at the cursor
 * (RFC 9051 9 section, partial), as it follows BODY, BODY.PEEK, BINARY,
 * BINARY.PEEK or BINARY.SIZE. Field names are astrings; a literal inside
 * the list is accepted inline as "{n}\r\n" + n bytes (also "{n+}").
 * Returns 0 and advances the cursor, or -1 with *why static and nothing
 * consumed; *out needs imap_section_release() in both cases. */
int imap_section_scan(struct scan *s, struct imap_section *out,
    const char **why);
/* Like imap_section_scan() but spec must be exactly the section. */
int imap_section_parse(struct span spec, struct imap_section *out,
    const char **why);
void imap_section_release(struct imap_section *sec); /* NULL-safe */
/* Whether sec is a valid BINARY section (RFC 3516 4.2 section-binary:
 * part numbers only, no partial for BINARY.SIZE is checked by the
 * caller). */
bool imap_section_is_binary(const struct imap_section *sec);
/* Append the response item name: item ("BODY", "BINARY", "BINARY.SIZE")
 * then "[" spec "]", then "<origin>" when partial and with_origin (RFC
 * 9051 7.5.2: BODY[...]<origin>; BINARY[...] responses have none). */
void imap_section_name(struct buf *out, const char *item,
    const struct imap_section *sec, bool with_origin);

/* Set in *why by imap_section_extract() when the content-transfer-
 * encoding of the part cannot be decoded (IMAP: NO [UNKNOWN-CTE]). */
extern const char imap_fetch_err_unknown_cte[];

/* Append the octets of section sec of message msg[0..len) with tree root
 * (RFC 9051 6.4.5): BODY[] whole message, part N of a non-multipart
 * message is its body, HEADER/TEXT/HEADER.FIELDS of the message or of a
 * message/rfc822 part, MIME header of a part, header field names matched
 * case-insensitively with the terminating empty line added; then partial
 * clipping (an origin past the end gives nothing). With binary the part
 * is a leaf and its body is content-transfer-decoded (RFC 3516 4.2);
 * BINARY[] of a single-part message is its header without
 * Content-Transfer-Encoding plus the decoded body. Returns 0, or -1 with
 * *why static: no such part, wrong section for the part,
 * imap_fetch_err_unknown_cte, or out hit its max. */
int imap_section_extract(const char *msg, size_t len,
    const struct message_part *root, const struct imap_section *sec,
    bool binary, struct buf *out, const char **why);
/* BINARY.SIZE (RFC 3516 4.3): decoded size of the section (partial
 * ignored). Returns 0 or -1 as imap_section_extract(). */
int imap_section_binary_size(const char *msg, size_t len,
    const struct message_part *root, const struct imap_section *sec,
    uint64_t *size_out, const char **why);

/* RFC 8970 PREVIEW: up to IMAP_PREVIEW_CHARS characters of the first
 * text/plain part (else the first text/html part, tags removed), in
 * UTF-8, whitespace runs collapsed to one space, trimmed. Appends the
 * plain text (not formatted as a string) to out; nothing when the message
 * has no text. Returns 0, or -1 when out hit its max. */
int imap_fetch_preview(const char *msg, size_t len,
    const struct message_part *root, struct buf *out);

#endif
