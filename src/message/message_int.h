/*
 * message_int.h: helpers the files of src/message share privately. Pure;
 * any thread.
 */
#ifndef MESSAGE_MESSAGE_INT_H
#define MESSAGE_MESSAGE_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/span.h"

struct buf;
struct message_param;

/* Index one past the LF of the line starting at pos, or len. */
size_t msg_line_end(const char *p, size_t len, size_t pos);
/* Unfolded, trimmed copy of a raw field value (cut at MESSAGE_VALUE_MAX). */
char *msg_unfold_dup(struct span value);
/* NUL-terminated copy of b's bytes (caller frees). */
char *msg_buf_dup(const struct buf *b);
/* ASCII lower-case in place. */
void msg_lower(char *s);
/* Length of the valid UTF-8 sequence at p (1..4), or 0 if invalid. */
size_t msg_utf8_seq(const unsigned char *p, size_t n);
/* Append in to out, with invalid UTF-8 replaced by U+FFFD. */
void msg_add_utf8(struct buf *out, struct span in);
/* Parse a Content-Type or Content-Disposition value: the value before the
 * first ";" lower-cased into *value_out (NULL if empty), parameters with
 * RFC 2231 and RFC 2047 decoding. Returns 0; the outputs are owned by the
 * caller (free with msg_params_free()). */
int msg_parse_params(struct span raw, char **value_out,
    struct message_param **params_out, size_t *n_out);
void msg_params_free(struct message_param *v, size_t n);

#endif
