/*
 * sconf.h: mox's "sconf" configuration format (spec/config.md section 1).
 *
 * Two layers. The syntax layer turns text into a tree of nodes (key lines
 * and list items with their values, line numbers and children). The schema
 * layer binds a tree to typed C structures described by tables of field
 * descriptors (struct sconf_type), and drives the writer and the
 * "describe" output from the same tables, so a schema is written once.
 *
 * Pure: no globals, no logging, no clock. Any thread.
 */
#ifndef CONFIG_SCONF_H
#define CONFIG_SCONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/span.h"

struct buf;

#define SCONF_FILE_MAX (16u * 1024 * 1024) /* bytes in one file */
#define SCONF_LINE_MAX (64u * 1024)        /* bytes in one line */
#define SCONF_DEPTH_MAX 32                 /* nesting levels (tabs) */
#define SCONF_NODES_MAX 1000000            /* key and item lines */
#define SCONF_ERRORS_MAX 100               /* errors collected per file */

/*
 * Syntax tree. A node is a "Key: value" line (key set) or a list item
 * "- value" / "-" (key NULL, item true). value is the text after ": " or
 * "- "; it is "" for "Key:" and NULL for a bare "-". Children are the lines
 * indented one more tab.
 */
struct sconf_node {
	char *key;                 /* owned; NULL for list items */
	char *value;               /* owned; NULL for a bare "-" */
	bool item;                 /* a list item line */
	unsigned line;             /* 1-based line number */
	struct sconf_node **kids;  /* owned */
	size_t nkids;
	size_t kcap;               /* allocated slots in kids */
};

/* A parsed file: name (for messages) and the top-level node, whose
 * children are the top-level keys. */
struct sconf_doc {
	char *name;             /* owned; e.g. "mox.conf" */
	struct sconf_node root; /* line 0, no key */
};

/* Parse text into a new tree. name is used in messages ("name:line: ...").
 * Returns 0 with *out set (free with sconf_doc_free()), or -1 with one
 * line "name:line: reason" appended to err. Input is untrusted: limits
 * SCONF_FILE_MAX, SCONF_LINE_MAX and SCONF_DEPTH_MAX apply. */
int sconf_parse(const char *name, struct span text, struct sconf_doc **out,
    struct buf *err);
/* NULL-safe. */
void sconf_doc_free(struct sconf_doc *doc);

/*
 * Schema. C representations per kind:
 *   STR   char *            NULL when absent
 *   BOOL  bool
 *   INT   int64_t
 *   FLOAT double
 *   DUR   int64_t           nanoseconds
 *   BYTES struct sconf_bytes  (base64 in the file)
 *   STRUCT the struct itself, embedded
 *   PTR   pointer to the struct (elem), NULL when absent
 *   LIST  struct { T *v; size_t n; unsigned *lines; }  (SCONF_LIST_OF)
 *   MAP   struct { char **keys; T *vals; size_t n; unsigned *lines; }
 *         (SCONF_MAP_OF), keys in file order
 * lines holds the line number of each list item or map entry.
 * Every STRUCT type has a struct sconf_pos member at pos_offset that the
 * binder fills with line numbers, so checks after binding can name lines.
 */
enum sconf_kind {
	SCONF_STR,
	SCONF_BOOL,
	SCONF_INT,
	SCONF_FLOAT,
	SCONF_DUR,
	SCONF_BYTES,
	SCONF_STRUCT,
	SCONF_PTR,
	SCONF_LIST,
	SCONF_MAP,
};

struct sconf_bytes {
	unsigned char *p; /* owned */
	size_t len;
};

struct sconf_type;

struct sconf_pos {
	unsigned line;   /* line of the key or "-" that opened the struct */
	unsigned *lines; /* owned; per field, 0 when the field was absent */
	const struct sconf_type *type; /* the struct's schema, set by bind */
};

#define SCONF_LIST_OF(T) \
	struct { \
		T *v; \
		size_t n; \
		unsigned *lines; /* per item; NULL when not from a file */ \
	}
#define SCONF_MAP_OF(T) \
	struct { \
		char **keys; \
		T *vals; \
		size_t n; \
		unsigned *lines; /* per entry; NULL when not from a file */ \
	}

/* The string list and string map shapes, named because they are common. */
struct sconf_strlist {
	char **v;
	size_t n;
	unsigned *lines; /* per item; NULL when not from a file */
};

struct sconf_strmap {
	char **keys;
	char **vals;
	size_t n;
	unsigned *lines; /* per entry; NULL when not from a file */
};

struct sconf_field;

struct sconf_type {
	enum sconf_kind kind;
	size_t size;                     /* sizeof one value of this type */
	const struct sconf_field *fields; /* STRUCT */
	size_t nfields;                  /* STRUCT */
	size_t pos_offset;               /* STRUCT: offset of struct sconf_pos */
	const struct sconf_type *elem;   /* PTR: the struct; LIST/MAP: element */
};

struct sconf_field {
	const char *name;              /* key in the file, case-sensitive */
	const struct sconf_type *type;
	size_t offset;                 /* offset in the C struct */
	bool optional;
	const char *doc;               /* for describe; may be NULL */
};

extern const struct sconf_type sconf_type_str;
extern const struct sconf_type sconf_type_bool;
extern const struct sconf_type sconf_type_int;
extern const struct sconf_type sconf_type_float;
extern const struct sconf_type sconf_type_dur;
extern const struct sconf_type sconf_type_bytes;

/* Bind the children of doc's root to the STRUCT type t at obj (zeroed by
 * the caller). Every problem is appended as a line "name:line: Path: what"
 * to err (at most SCONF_ERRORS_MAX). Returns 0, or -1 when any error was
 * found; obj is then partly filled and must still be released with
 * sconf_release(). */
int sconf_bind(const struct sconf_doc *doc, const struct sconf_type *t,
    void *obj, struct buf *err);
/* Free everything the binder allocated inside obj (not obj itself). */
void sconf_release(const struct sconf_type *t, void *obj);

/* Write obj of STRUCT type t as sconf text: keys in schema order, map keys
 * sorted, optional zero fields omitted, durations Go style, floats with 6
 * decimals. Returns 0, or -1 when a value cannot be written (a string with
 * a newline, an empty list in a required field) with a reason in *why. */
int sconf_write(const struct sconf_type *t, const void *obj, struct buf *out,
    const char **why);
/* Write an annotated skeleton of t: every field with its doc as wrapped
 * "#" lines and an "(optional)" marker, maps with a placeholder key "x",
 * lists with one item. The output is valid sconf for sconf_bind(). */
void sconf_describe(const struct sconf_type *t, struct buf *out);

/* Line where field name of the struct with position pos was set; the
 * struct's own line when the field is absent or unknown. */
unsigned sconf_line(const struct sconf_pos *pos, const char *name);
/* Whether field name was present in the file. */
bool sconf_present(const struct sconf_pos *pos, const char *name);

#endif
