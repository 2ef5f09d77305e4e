/*
 * log.c: logfmt and human log lines, levels per package (spec/config.md
 * section 8). Levels are atomics read without a lock; the package table
 * only grows (names are never removed, an override may be cleared), so a
 * log_ctx may cache its slot. The sink lock serialises output lines.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "lock.h"
#include "log.h"
#include "timeutil.h"
#include "xmalloc.h"
#include "banned.h"

#define LEVEL_INHERIT (-1)
#define LOG_LINE_MAX (64 * 1024)

struct log_pkg {
	char name[32];
	atomic_int level; /* enum log_level, or LEVEL_INHERIT */
};

static struct {
	struct lock lock; /* guards adding slots and the sink */
	bool ready;
	atomic_int deflevel;
	struct log_pkg pkgs[LOG_PKG_MAX];
	atomic_size_t npkgs;
	enum log_format format;
	log_sink_fn *sink;
	void *sink_arg;
	atomic_uint_fast64_t next_cid;
} reg = { .deflevel = LOG_INFO };

static const char *const level_names[] = {
	[LOG_TRACEDATA] = "tracedata",
	[LOG_TRACEAUTH] = "traceauth",
	[LOG_TRACE] = "trace",
	[LOG_DEBUG] = "debug",
	[LOG_INFO] = "info",
	[LOG_WARN] = "warn",
	[LOG_ERROR] = "error",
	[LOG_FATAL] = "fatal",
	[LOG_PRINT] = "print",
};

void
log_init(void)
{
	if (reg.ready)
		return;
	lock_init(&reg.lock, LOCK_ORDER_LOG, "log");
	atomic_store(&reg.deflevel, LOG_INFO);
	atomic_store(&reg.next_cid, (uint64_t)(time_wall_ns() / NS_PER_MS) << 8);
	reg.format = LOG_FORMAT_LOGFMT;
	reg.ready = true;
}

void
log_shutdown(void)
{
	if (!reg.ready)
		return;
	lock_destroy(&reg.lock);
	reg.ready = false;
}

void
log_set_format(enum log_format f)
{
	reg.format = f;
}

void
log_set_sink(log_sink_fn *fn, void *arg)
{
	log_init();
	lock_take(&reg.lock);
	reg.sink = fn;
	reg.sink_arg = arg;
	lock_release(&reg.lock);
}

static struct log_pkg *
slot_find(const char *pkg, bool create)
{
	size_t n = atomic_load(&reg.npkgs);
	struct log_pkg *p = NULL;

	for (size_t i = 0; i < n; i++)
		if (strcmp(reg.pkgs[i].name, pkg) == 0)
			return &reg.pkgs[i];
	if (!create || strlen(pkg) >= sizeof(reg.pkgs[0].name))
		return NULL;
	log_init();
	lock_take(&reg.lock);
	n = atomic_load(&reg.npkgs);
	for (size_t i = 0; i < n; i++)
		if (strcmp(reg.pkgs[i].name, pkg) == 0) {
			p = &reg.pkgs[i];
			goto out;
		}
	if (n < LOG_PKG_MAX) {
		p = &reg.pkgs[n];
		memcpy(p->name, pkg, strlen(pkg) + 1);
		atomic_store(&p->level, LEVEL_INHERIT);
		atomic_store(&reg.npkgs, n + 1);
	}
out:
	lock_release(&reg.lock);
	return p;
}

int
log_set_level(const char *pkg, enum log_level l)
{
	struct log_pkg *p;

	if (pkg == NULL || *pkg == '\0') {
		atomic_store(&reg.deflevel, (int)l);
		return 0;
	}
	p = slot_find(pkg, true);
	if (p == NULL)
		return -1;
	atomic_store(&p->level, (int)l);
	return 0;
}

void
log_clear_level(const char *pkg)
{
	struct log_pkg *p = slot_find(pkg, false);

	if (p != NULL)
		atomic_store(&p->level, LEVEL_INHERIT);
}

static enum log_level
effective(const struct log_pkg *p)
{
	int l = p != NULL ? atomic_load(&p->level) : LEVEL_INHERIT;

	if (l == LEVEL_INHERIT)
		l = atomic_load(&reg.deflevel);
	return (enum log_level)l;
}

enum log_level
log_get_level(const char *pkg)
{
	return effective(pkg != NULL ? slot_find(pkg, false) : NULL);
}

int
log_level_parse(const char *s, enum log_level *out)
{
	for (size_t i = 0; i < ARRAY_LEN(level_names); i++)
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	return -1;
}

const char *
log_level_name(enum log_level l)
{
	if ((size_t)l >= ARRAY_LEN(level_names))
		return "unknown";
	return level_names[l];
}

void
log_levels_describe(struct buf *out)
{
	size_t n = atomic_load(&reg.npkgs);

	buf_addf(out, "default: %s\n",
	    log_level_name((enum log_level)atomic_load(&reg.deflevel)));
	for (size_t i = 0; i < n; i++) {
		int l = atomic_load(&reg.pkgs[i].level);

		if (l != LEVEL_INHERIT)
			buf_addf(out, "%s: %s\n", reg.pkgs[i].name,
			    log_level_name((enum log_level)l));
	}
}

struct log_ctx
log_ctx_init(const char *pkg, uint64_t cid)
{
	struct log_ctx c = { pkg, cid, NULL };

	if (pkg != NULL)
		c.slot = slot_find(pkg, true);
	return c;
}

uint64_t
log_new_cid(void)
{
	return atomic_fetch_add(&reg.next_cid, 1) + 1;
}

bool
log_enabled(const struct log_ctx *c, enum log_level l)
{
	enum log_level eff = effective(c != NULL ? c->slot : NULL);

	/* Any trace level lets every trace record through; the fields
	 * carrying secrets or data are masked per level when printed. */
	if (l <= LOG_TRACE)
		return eff <= LOG_TRACE;
	return l >= eff;
}

const char *
log_strerror(int e)
{
	const char *s = strerrordesc_np(e);

	return s != NULL ? s : "unknown error";
}

static bool
needs_quote(const char *p, size_t n)
{
	if (n == 0)
		return true;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c <= ' ' || c == '"' || c == '\\' || c == '=' || c >= 0x7f)
			return true;
	}
	return false;
}

/* Append a value, quoting Go-style when needed and cutting at
 * LOG_VALUE_MAX. Non-ASCII bytes are escaped so a line is always ASCII. */
static void
add_quoted(struct buf *out, const char *p, size_t n, bool force)
{
	bool cut = false;

	if (p == NULL) {
		p = "";
		n = 0;
	}
	if (n > LOG_VALUE_MAX) {
		n = LOG_VALUE_MAX;
		cut = true;
	}
	if (!force && !needs_quote(p, n) && !cut) {
		buf_add(out, p, n);
		return;
	}
	buf_addc(out, '"');
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		switch (c) {
		case '"':
			buf_adds(out, "\\\"");
			break;
		case '\\':
			buf_adds(out, "\\\\");
			break;
		case '\n':
			buf_adds(out, "\\n");
			break;
		case '\r':
			buf_adds(out, "\\r");
			break;
		case '\t':
			buf_adds(out, "\\t");
			break;
		default:
			if (c < ' ' || c >= 0x7f)
				buf_addf(out, "\\x%02x", c);
			else
				buf_addc(out, (char)c);
		}
	}
	if (cut)
		buf_adds(out, "...");
	buf_addc(out, '"');
}

static void
add_value(struct buf *out, const char *p, size_t n)
{
	add_quoted(out, p, n, false);
}

static void
add_field(struct buf *out, const struct log_field *f, enum log_level eff,
    const char *sep)
{
	struct buf tmp;

	buf_adds(out, sep);
	buf_adds(out, f->key);
	buf_addc(out, '=');
	switch (f->type) {
	case LFT_STR:
	case LFT_ERR:
		add_value(out, f->s, f->s ? strlen(f->s) : 0);
		break;
	case LFT_STRN:
		add_value(out, f->s, f->n);
		break;
	case LFT_U64:
		buf_addf(out, "%llu", (unsigned long long)f->u);
		break;
	case LFT_I64:
		buf_addf(out, "%lld", (long long)f->i);
		break;
	case LFT_BOOL:
		buf_adds(out, f->u ? "true" : "false");
		break;
	case LFT_HEX:
		buf_addf(out, "%llx", (unsigned long long)f->u);
		break;
	case LFT_DUR:
		buf_init(&tmp, 64);
		time_format_duration(&tmp, f->i);
		buf_add(out, tmp.data, tmp.len);
		buf_release(&tmp);
		break;
	case LFT_SECRET:
		if (eff <= LOG_TRACEAUTH)
			add_value(out, f->s, f->s ? strlen(f->s) : 0);
		else
			buf_adds(out, "********");
		break;
	case LFT_DATA:
		if (eff <= LOG_TRACEDATA)
			add_value(out, f->s, f->n);
		else
			buf_adds(out, "...");
		break;
	case LFT_END:
		break;
	}
}

void
log_format_line(struct buf *out, enum log_format fmt, enum log_level l,
    const char *pkg, uint64_t cid, const char *msg,
    const struct log_field *fields, enum log_level eff)
{
	const struct log_field *f;
	const char *sep = fmt == LOG_FORMAT_LOGFMT ? " " : "; ";

	if (fmt == LOG_FORMAT_LOGFMT) {
		buf_addf(out, "l=%s m=", log_level_name(l));
		add_quoted(out, msg, strlen(msg), true); /* always, as mox */
		for (f = fields; f->type != LFT_END; f++)
			if (f->type == LFT_ERR)
				add_field(out, f, eff, sep);
		if (pkg != NULL) {
			buf_adds(out, " pkg=");
			add_value(out, pkg, strlen(pkg));
		}
	} else {
		buf_addf(out, "%s: %s", log_level_name(l), msg);
		for (f = fields; f->type != LFT_END; f++)
			if (f->type == LFT_ERR && f->s != NULL) {
				buf_adds(out, ": ");
				buf_adds(out, f->s);
			}
	}
	for (f = fields; f->type != LFT_END; f++)
		if (f->type != LFT_ERR)
			add_field(out, f, eff, sep);
	if (cid != 0) {
		buf_adds(out, sep);
		buf_addf(out, "cid=%llx", (unsigned long long)cid);
	}
	buf_addc(out, '\n');
}

void
log_emit(const struct log_ctx *c, enum log_level l, const char *msg,
    const struct log_field *fields)
{
	struct buf line;
	enum log_level eff = effective(c != NULL ? c->slot : NULL);

	log_init();
	buf_init(&line, LOG_LINE_MAX);
	log_format_line(&line, reg.format, l, c != NULL ? c->pkg : NULL,
	    c != NULL ? c->cid : 0, msg, fields, eff);
	if (buf_failed(&line)) {
		buf_reset(&line);
		buf_adds(&line, "l=error m=\"log line too long\"\n");
	}
	lock_take(&reg.lock);
	if (reg.sink != NULL) {
		reg.sink(line.data, line.len, reg.sink_arg);
	} else {
		size_t off = 0;

		while (off < line.len) {
			ssize_t n = write(2, line.data + off, line.len - off);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			off += (size_t)n;
		}
	}
	lock_release(&reg.lock);
	buf_release(&line);
	if (l == LOG_FATAL)
		exit(1);
}
