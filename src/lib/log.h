/*
 * log.h: logfmt logging with levels and per-package levels (DESIGN.md,
 * spec/config.md section 8). One call per event: a fixed message and typed
 * fields. Values are quoted and truncated so input cannot forge a line.
 * Any thread; the sink serialises lines.
 */
#ifndef LIB_LOG_H
#define LIB_LOG_H

#include <stdbool.h>
#include <stdint.h>

#include "compat.h"

/* Low to high, as mox orders them. */
enum log_level {
	LOG_TRACEDATA,
	LOG_TRACEAUTH,
	LOG_TRACE,
	LOG_DEBUG,
	LOG_INFO,
	LOG_WARN,
	LOG_ERROR,
	LOG_FATAL,
	LOG_PRINT,
};

#define LOG_VALUE_MAX 1024 /* longer values are cut and marked */
#define LOG_PKG_MAX 64     /* distinct package names */

enum log_field_type {
	LFT_END,
	LFT_STR,
	LFT_STRN,
	LFT_U64,
	LFT_I64,
	LFT_BOOL,
	LFT_DUR,    /* int64 nanoseconds, printed Go style: 12.5ms */
	LFT_ERR,    /* a string printed as err=..., first after the message */
	LFT_SECRET, /* shown only at traceauth or below */
	LFT_DATA,   /* shown only at tracedata */
	LFT_HEX,    /* u64 printed in hex */
};

struct log_field {
	const char *key;
	enum log_field_type type;
	const char *s;
	size_t n;
	uint64_t u;
	int64_t i;
};

#define LF_END ((struct log_field){ .type = LFT_END })
#define LF_STR(k, v) ((struct log_field){ .key = (k), .type = LFT_STR, .s = (v) })
#define LF_STRN(k, p, len) \
	((struct log_field){ .key = (k), .type = LFT_STRN, .s = (p), .n = (len) })
#define LF_U64(k, v) \
	((struct log_field){ .key = (k), .type = LFT_U64, .u = (uint64_t)(v) })
#define LF_I64(k, v) \
	((struct log_field){ .key = (k), .type = LFT_I64, .i = (int64_t)(v) })
#define LF_BOOL(k, v) \
	((struct log_field){ .key = (k), .type = LFT_BOOL, .u = (v) ? 1 : 0 })
#define LF_DUR(k, ns) \
	((struct log_field){ .key = (k), .type = LFT_DUR, .i = (int64_t)(ns) })
#define LF_ERR(v) ((struct log_field){ .key = "err", .type = LFT_ERR, .s = (v) })
#define LF_ERRNO(e) LF_ERR(log_strerror(e))
#define LF_SECRET(k, v) \
	((struct log_field){ .key = (k), .type = LFT_SECRET, .s = (v) })
#define LF_DATA(k, p, len) \
	((struct log_field){ .key = (k), .type = LFT_DATA, .s = (p), .n = (len) })
#define LF_HEX(k, v) \
	((struct log_field){ .key = (k), .type = LFT_HEX, .u = (uint64_t)(v) })

struct log_pkg; /* registry slot of a package's level */

/* Per-session logging context: package and connection id. Plain value;
 * copy it freely. A zero cid is not printed. */
struct log_ctx {
	const char *pkg;
	uint64_t cid;
	struct log_pkg *slot; /* cached by log_ctx_init() */
};

enum log_format {
	LOG_FORMAT_LOGFMT, /* serve, localserve */
	LOG_FORMAT_HUMAN,  /* other commands: "level: message; k=v" */
};

typedef void log_sink_fn(const char *line, size_t len, void *arg);

/* Initialise the registry: default level info, sink stderr. Call once at
 * program start; log_shutdown() frees it. */
void log_init(void);
void log_shutdown(void);
void log_set_format(enum log_format f);
/* Replace the sink (tests); NULL restores stderr. */
void log_set_sink(log_sink_fn *fn, void *arg);

/* pkg NULL sets the default level. Returns 0 or -1 for an unknown
 * package-table overflow. Takes effect for all threads at once. */
int log_set_level(const char *pkg, enum log_level l);
/* Remove a package override. */
void log_clear_level(const char *pkg);
enum log_level log_get_level(const char *pkg);
/* Parse "error", "info", ..., "traceauth", "tracedata" (and warn, fatal,
 * print). Returns 0 or -1. */
int log_level_parse(const char *s, enum log_level *out);
const char *log_level_name(enum log_level l);
/* Write "default=info smtpserver=trace" style listing into out. */
struct buf;
void log_levels_describe(struct buf *out);

struct log_ctx log_ctx_init(const char *pkg, uint64_t cid);
/* A new process-wide unique connection id (non-zero). */
uint64_t log_new_cid(void);
bool log_enabled(const struct log_ctx *c, enum log_level l);
void log_emit(const struct log_ctx *c, enum log_level l, const char *msg,
    const struct log_field *fields);
/* Thread-safe strerror into a static table of known messages. */
const char *log_strerror(int e);
/* Format the fields as a logfmt line into out, without level checks (for
 * tests and for building ctl replies). */
void log_format_line(struct buf *out, enum log_format f, enum log_level l,
    const char *pkg, uint64_t cid, const char *msg,
    const struct log_field *fields, enum log_level effective);

#define LOG_AT_(c, lvl, msg, ...) \
	do { \
		if (log_enabled((c), (lvl))) \
			log_emit((c), (lvl), (msg), \
			    (const struct log_field[]){ \
				__VA_ARGS__ __VA_OPT__(, ) LF_END }); \
	} while (0)

#define log_error(c, msg, ...) LOG_AT_(c, LOG_ERROR, msg, __VA_ARGS__)
#define log_warn(c, msg, ...) LOG_AT_(c, LOG_WARN, msg, __VA_ARGS__)
#define log_info(c, msg, ...) LOG_AT_(c, LOG_INFO, msg, __VA_ARGS__)
#define log_debug(c, msg, ...) LOG_AT_(c, LOG_DEBUG, msg, __VA_ARGS__)
#define log_trace(c, msg, ...) LOG_AT_(c, LOG_TRACE, msg, __VA_ARGS__)
#define log_traceauth(c, msg, ...) LOG_AT_(c, LOG_TRACEAUTH, msg, __VA_ARGS__)
#define log_tracedata(c, msg, ...) LOG_AT_(c, LOG_TRACEDATA, msg, __VA_ARGS__)
#define log_print(c, msg, ...) LOG_AT_(c, LOG_PRINT, msg, __VA_ARGS__)

#endif
