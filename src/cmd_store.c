/*
 * cmd_store.c: the store commands (spec/store.md 16-19, spec/config.md 7):
 * `backup` (SQLite online backup of every database, hard links of message
 * files), `verifydata` (integrity, files, counts, orphans), `import` and
 * `export` of Maildir (flag letters, dovecot-keywords) and mboxrd,
 * `setaccountpassword` and `gentestdata`. The same handlers run as
 * `mox-backup` and `mox-verifydata`.
 *
 * Trust: the operator runs these; their input files (mbox, Maildir, a
 * backup to verify) may be damaged or hostile, so every read is bounded and
 * every problem becomes a message, never a crash. The tools work on the data
 * directory directly while a server may be running (DESIGN.md "Data
 * directory"): databases are read in snapshots, message files never change.
 * Threads: a command runs on the main thread of its process.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "moxbuild.h"
#include "cli.h"
#include "cmd_store.h"
#include "config/config.h"
#include "lib/buf.h"
#include "lib/io.h"
#include "lib/log.h"
#include "lib/span.h"
#include "lib/timeutil.h"
#include "lib/xmalloc.h"
#include "maildir/store.h"
#include "message/message.h"
#include "queue/queue.h"
#include "lib/banned.h"

#define PATH_MAX_LEN 4096                 /* one path we build */
#define MSG_MAX (256u * 1024 * 1024)       /* one imported/exported message */
#define KWFILE_MAX (64u * 1024)            /* a dovecot-keywords file */
#define IMPORT_BATCH 1000                  /* messages per progress line */
#define SMALLFILE_MAX (64u * 1024 * 1024)  /* a file copied by backup */
#define DB_BUSY_MS 30000                   /* SQLite busy timeout */

/* Well-known keywords that the store keeps as flags (spec/store.md 4),
 * with the names export writes; import also takes them without "$". */
static const struct {
	const char *name; /* as exported */
	uint32_t flag;
} wk_flags[] = {
	{ "$Forwarded", STORE_F_FORWARDED },
	{ "$Junk", STORE_F_JUNK },
	{ "$NotJunk", STORE_F_NOTJUNK },
	{ "$Phishing", STORE_F_PHISHING },
	{ "$MDNSent", STORE_F_MDNSENT },
};

/* ---- small helpers ---- */

static bool
is_dir(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static bool
exists(const char *path)
{
	struct stat sb;

	return lstat(path, &sb) == 0;
}

/* Load the config named by -config; prints the reason on failure. */
static struct config *
load_config(void)
{
	struct config *cfg = NULL;
	struct buf err;

	buf_init(&err, CONFIG_ERR_MAX);
	if (config_load(cli.config_path, &cfg, &err) == -1) {
		cli_errorf("loading config %s:\n%s", cli.config_path, err.data);
		cfg = NULL;
	}
	buf_release(&err);
	return cfg;
}

/* Open store and account NAME (STORE_OPEN_* flags); prints the reason on
 * failure. */
static int
open_account(const char *datadir, const char *name, bool create,
    unsigned flags, struct store **s_out, struct store_account **a_out)
{
	struct store_err err;
	struct store *s;

	s = store_open(datadir, flags, &err);
	if (s == NULL) {
		cli_errorf("open data directory %s: %s", datadir, err.text);
		return -1;
	}
	if (store_account_get(s, name, create, a_out, &err) == -1) {
		cli_errorf("open account %s: %s", name, err.text);
		store_free(s);
		return -1;
	}
	*s_out = s;
	return 0;
}

/* Read an open file into out (bounded by out's max). */
static int
read_fd(int fd, struct buf *out)
{
	for (;;) {
		char *p = buf_reserve(out, 65536);
		ssize_t n;

		if (p == NULL) {
			errno = EFBIG;
			return -1;
		}
		n = read(fd, p, 65536);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -1;
		if (n == 0)
			return 0;
		buf_commit(out, (size_t)n);
	}
}

/* Create path exclusively and write data durably. */
static int
write_new_file(const char *path, const void *data, size_t len,
    int64_t mtime_s, const char **why)
{
	int fd, rc = -1;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
	    0640);
	if (fd == -1) {
		*why = log_strerror(errno);
		return -1;
	}
	if (io_write_all(fd, data, len) == -1 || fsync(fd) == -1) {
		*why = log_strerror(errno);
		goto out;
	}
	if (mtime_s > 0) {
		struct timespec ts[2] = { { mtime_s, 0 }, { mtime_s, 0 } };

		if (futimens(fd, ts) == -1) {
			*why = log_strerror(errno);
			goto out;
		}
	}
	rc = 0;
out:
	if (close(fd) == -1 && rc == 0) {
		*why = log_strerror(errno);
		rc = -1;
	}
	return rc;
}

static int
cmp_str(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

/* Sorted names in dir, dot files left out. Caller frees each and v. */
static int
list_dir(const char *dir, char ***v_out, size_t *n_out)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char **v = NULL;
	size_t n = 0;

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		v = xreallocarray(v, n + 1, sizeof(*v));
		v[n++] = xstrdup(de->d_name);
	}
	closedir(d);
	if (n > 0)
		qsort(v, n, sizeof(*v), cmp_str);
	*v_out = v;
	*n_out = n;
	return 0;
}

static void
free_list(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* ---- formats (pure) ---- */

static uint32_t
wk_flag_of(struct span s)
{
	for (size_t i = 0; i < ARRAY_LEN(wk_flags); i++) {
		if (span_eq_ci(s, wk_flags[i].name) ||
		    span_eq_ci(s, wk_flags[i].name + 1))
			return wk_flags[i].flag;
	}
	/* INTEROP: Thunderbird and Dovecot write NonJunk. */
	if (span_eq_ci(s, "$NonJunk") || span_eq_ci(s, "NonJunk"))
		return STORE_F_NOTJUNK;
	return 0;
}

bool
cmd_store_keyword_valid(struct span s)
{
	if (s.len == 0 || s.len > STORE_KEYWORD_MAX)
		return false;
	for (size_t i = 0; i < s.len; i++) {
		unsigned char c = (unsigned char)s.p[i];

		/* RFC 9051 9: flag-keyword = atom, no atom-specials. */
		if (c < 0x21 || c > 0x7e || strchr("(){%*\"\\]", c) != NULL)
			return false;
	}
	return wk_flag_of(s) == 0;
}

void
cmd_store_kwmap_release(struct cmd_store_kwmap *m)
{
	for (size_t i = 0; i < CMD_STORE_KW_LETTERS; i++) {
		free(m->kw[i]);
		m->kw[i] = NULL;
	}
}

void
cmd_store_kwmap_parse(struct cmd_store_kwmap *m, struct span text)
{
	struct scan s = scan_of(text);

	while (!scan_eof(&s)) {
		struct span line, kw;
		struct scan ls;
		uint64_t idx;

		if (scan_until(&s, '\n', text.len, &line) == -1) {
			line = scan_rest(&s);
			s.pos = s.len;
		} else
			s.pos++;
		if (line.len > 0 && line.p[line.len - 1] == '\r')
			line.len--;
		ls = scan_of(line);
		if (scan_u64(&ls, CMD_STORE_KW_LETTERS - 1, &idx) == -1 ||
		    scan_sp(&ls) == -1)
			continue;
		kw = span_trim(scan_rest(&ls));
		if (kw.len == 0 || kw.len > STORE_KEYWORD_MAX)
			continue;
		free(m->kw[idx]);
		m->kw[idx] = span_dup(kw);
	}
}

void
cmd_store_kwmap_format(const struct cmd_store_kwmap *m, struct buf *out)
{
	for (size_t i = 0; i < CMD_STORE_KW_LETTERS; i++)
		if (m->kw[i] != NULL)
			buf_addf(out, "%zu %s\n", i, m->kw[i]);
}

/* Apply keyword name kw: a well-known one sets its flag, a valid other
 * one is appended (lower-cased) to keywords. */
static void
apply_keyword(struct span kw, uint32_t *flags, struct buf *keywords)
{
	uint32_t f = wk_flag_of(kw);

	if (f != 0) {
		*flags |= f;
		return;
	}
	if (!cmd_store_keyword_valid(kw))
		return;
	if (keywords->len > 0)
		buf_addc(keywords, ' ');
	for (size_t i = 0; i < kw.len; i++) {
		char c = kw.p[i];

		buf_addc(keywords, c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') :
							  c);
	}
}

void
cmd_store_maildir_info_parse(const char *name,
    const struct cmd_store_kwmap *m, uint32_t *flags_out,
    struct buf *keywords)
{
	const char *info = strstr(name, ":2,");
	uint32_t flags = 0;

	if (info != NULL) {
		for (const char *p = info + 3; *p != '\0'; p++) {
			switch (*p) {
			case 'D':
				flags |= STORE_F_DRAFT;
				break;
			case 'F':
				flags |= STORE_F_FLAGGED;
				break;
			case 'R':
				flags |= STORE_F_ANSWERED;
				break;
			case 'S':
				flags |= STORE_F_SEEN;
				break;
			case 'T':
				flags |= STORE_F_DELETED;
				break;
			default:
				if (*p >= 'a' && *p <= 'z' &&
				    m->kw[*p - 'a'] != NULL)
					apply_keyword(
					    span_of_cstr(m->kw[*p - 'a']),
					    &flags, keywords);
				break;
			}
		}
	}
	*flags_out = flags;
}

/* Letter for keyword kw in m, assigned on first use; 0 when full. */
static char
kw_letter(struct cmd_store_kwmap *m, const char *kw)
{
	for (size_t i = 0; i < CMD_STORE_KW_LETTERS; i++)
		if (m->kw[i] != NULL && span_eq_ci(span_of_cstr(kw), m->kw[i]))
			return (char)('a' + i);
	for (size_t i = 0; i < CMD_STORE_KW_LETTERS; i++)
		if (m->kw[i] == NULL) {
			m->kw[i] = xstrdup(kw);
			return (char)('a' + i);
		}
	return 0;
}

void
cmd_store_maildir_info_format(uint32_t flags, const char *keywords,
    struct cmd_store_kwmap *m, struct buf *out)
{
	/* Maildir: info letters in ASCII order; spec/store.md 18.1: D F R S
	 * T only, $Forwarded is a keyword letter like the others. */
	static const struct {
		char c;
		uint32_t flag;
	} std[] = {
		{ 'D', STORE_F_DRAFT },
		{ 'F', STORE_F_FLAGGED },
		{ 'R', STORE_F_ANSWERED },
		{ 'S', STORE_F_SEEN },
		{ 'T', STORE_F_DELETED },
	};
	bool used[CMD_STORE_KW_LETTERS] = { false };
	struct scan s = scan_of(span_of_cstr(keywords != NULL ? keywords : ""));

	buf_adds(out, ":2,");
	for (size_t i = 0; i < ARRAY_LEN(std); i++)
		if (flags & std[i].flag)
			buf_addc(out, std[i].c);
	for (size_t i = 0; i < ARRAY_LEN(wk_flags); i++) {
		char c;

		if (!(flags & wk_flags[i].flag))
			continue;
		c = kw_letter(m, wk_flags[i].name);
		if (c != 0)
			used[c - 'a'] = true;
	}
	while (!scan_eof(&s)) {
		struct span kw;
		char *k, c;

		scan_skip_sp(&s);
		if (scan_until(&s, ' ', STORE_KEYWORDS_MAX, &kw) == -1) {
			kw = scan_rest(&s);
			s.pos = s.len;
		}
		if (kw.len == 0)
			continue;
		k = span_dup(kw);
		c = kw_letter(m, k);
		free(k);
		if (c != 0)
			used[c - 'a'] = true;
	}
	for (size_t i = 0; i < CMD_STORE_KW_LETTERS; i++)
		if (used[i])
			buf_addc(out, (char)('a' + i));
}

void
cmd_store_to_crlf(struct span in, struct buf *out)
{
	size_t start = 0;

	for (size_t i = 0; i < in.len; i++) {
		if (in.p[i] != '\n' || (i > 0 && in.p[i - 1] == '\r'))
			continue;
		buf_add(out, in.p + start, i - start);
		buf_add(out, "\r\n", 2);
		start = i + 1;
	}
	buf_add(out, in.p + start, in.len - start);
}

void
cmd_store_to_lf(struct span in, struct buf *out)
{
	size_t start = 0;

	for (size_t i = 0; i + 1 < in.len; i++) {
		if (in.p[i] != '\r' || in.p[i + 1] != '\n')
			continue;
		buf_add(out, in.p + start, i - start);
		start = i + 1;
	}
	buf_add(out, in.p + start, in.len - start);
}

static const char *const wdays[] = { "Sun", "Mon", "Tue", "Wed", "Thu",
	"Fri", "Sat" };
static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May",
	"Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

static int
name_index(struct span s, const char *const *names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (span_eq_ci(s, names[i]))
			return (int)i;
	return -1;
}

#define FROM_TOKENS_MAX 16

/* Split line into tokens separated by spaces and tabs. */
static size_t
tokens(struct span line, struct span *tok, size_t max)
{
	size_t n = 0, i = 0;

	while (i < line.len && n < max) {
		size_t j;

		while (i < line.len && (line.p[i] == ' ' || line.p[i] == '\t'))
			i++;
		j = i;
		while (j < line.len && line.p[j] != ' ' && line.p[j] != '\t' &&
		    line.p[j] != '\r' && line.p[j] != '\n')
			j++;
		if (j > i)
			tok[n++] = span_of(line.p + i, j - i);
		if (j < line.len && (line.p[j] == '\r' || line.p[j] == '\n'))
			break;
		i = j;
	}
	return n;
}

/* "hh:mm[:ss]" */
static int
parse_clock(struct span s, struct tm *tm)
{
	struct scan c = scan_of(s);
	uint64_t h, m, sec = 0;

	if (scan_u64(&c, 23, &h) == -1 || scan_char(&c, ':') == -1 ||
	    scan_u64(&c, 59, &m) == -1)
		return -1;
	if (scan_char(&c, ':') == 0 && scan_u64(&c, 60, &sec) == -1)
		return -1;
	if (!scan_eof(&c))
		return -1;
	tm->tm_hour = (int)h;
	tm->tm_min = (int)m;
	tm->tm_sec = (int)sec;
	return 0;
}

/* Numeric zone "+hhmm"/"-hhmm" into seconds east of UTC. */
static int
parse_zone(struct span s, int64_t *off)
{
	uint64_t v;

	if (s.len != 5 || (s.p[0] != '+' && s.p[0] != '-') ||
	    span_u64(span_of(s.p + 1, 4), 9999, &v) == -1)
		return -1;
	*off = (int64_t)((v / 100) * 3600 + (v % 100) * 60);
	if (s.p[0] == '-')
		*off = -*off;
	return 0;
}

int
cmd_store_mbox_from_time(struct span line, int64_t *t_out)
{
	struct span tok[FROM_TOKENS_MAX];
	size_t n = tokens(line, tok, FROM_TOKENS_MAX);

	/* "From" sender [weekday] month day time [zone] year [zone] */
	for (size_t i = 2; i + 3 < n; i++) {
		struct tm tm;
		uint64_t day, year;
		int64_t off = 0;
		size_t k;
		int mon;
		time_t t;

		if (name_index(tok[i], wdays, ARRAY_LEN(wdays)) == -1)
			continue;
		memset(&tm, 0, sizeof(tm));
		mon = name_index(tok[i + 1], months, ARRAY_LEN(months));
		if (mon == -1 || i + 4 >= n ||
		    span_u64(tok[i + 2], 31, &day) == -1 || day == 0 ||
		    parse_clock(tok[i + 3], &tm) == -1)
			return -1;
		k = i + 4;
		if (span_u64(tok[k], 9999, &year) == -1) {
			/* Unix date: zone name; Ruby: numeric zone. */
			if (parse_zone(tok[k], &off) == -1)
				off = 0;
			if (k + 1 >= n || span_u64(tok[k + 1], 9999, &year) == -1)
				return -1;
			k++;
		} else if (k + 1 < n) {
			/* INTEROP: some writers put the zone last. */
			if (parse_zone(tok[k + 1], &off) == -1)
				off = 0;
		}
		if (year < 1970)
			return -1;
		tm.tm_year = (int)year - 1900;
		tm.tm_mon = mon;
		tm.tm_mday = (int)day;
		t = timegm(&tm);
		if (t == (time_t)-1)
			return -1;
		*t_out = (int64_t)t - off;
		return 0;
	}
	return -1;
}

void
cmd_store_asctime(int64_t t, struct buf *out)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL) {
		buf_adds(out, "Thu Jan  1 00:00:00 1970");
		return;
	}
	buf_addf(out, "%s %s %2d %02d:%02d:%02d %d", wdays[tm.tm_wday],
	    months[tm.tm_mon], tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	    tm.tm_year + 1900);
}

/* ---- import (spec/store.md 18.2) ---- */

/* One message waiting for its batch; strings owned. */
struct pending {
	char *data;
	size_t len;
	char *parsed;
	size_t parsed_len;
	char *message_id, *subject_base, *from_local, *from_domain;
	char *keywords;
	uint32_t flags;
	int64_t received_ns;
};

struct importer {
	struct store_import *imp; /* the one transaction of the import */
	struct pending *v;      /* the message being added */
	size_t total;           /* added */
};

static void
pending_release(struct pending *p)
{
	free(p->data);
	free(p->parsed);
	free(p->message_id);
	free(p->subject_base);
	free(p->from_local);
	free(p->from_domain);
	free(p->keywords);
	memset(p, 0, sizeof(*p));
}

static char *
lower_dup(const char *s)
{
	char *d = xstrdup(s);

	for (char *p = d; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return d;
}

/* Fields the store indexes (spec/store.md 3.1), from the parsed tree. */
static void
extract_fields(struct pending *p, const struct message_part *root)
{
	const struct message_envelope *env = root->envelope;
	const struct message_address *from;
	struct buf b;
	const char *why;

	if (env == NULL)
		return;
	buf_init(&b, MESSAGE_VALUE_MAX);
	if (env->message_id != NULL &&
	    message_id_canonical(span_of_cstr(env->message_id), &b, &why) == 0 &&
	    !buf_failed(&b))
		p->message_id = buf_take(&b);
	buf_reset(&b);
	if (env->subject != NULL &&
	    message_subject_base(span_of_cstr(env->subject), &b, NULL) == 0 &&
	    !buf_failed(&b))
		p->subject_base = buf_take(&b);
	buf_release(&b);
	from = message_addr_first(&env->from);
	if (from != NULL && from->user != NULL) {
		p->from_local = xstrdup(from->user);
		if (from->host != NULL)
			p->from_domain = lower_dup(from->host);
	}
	if (p->received_ns == 0 && env->date_ok && env->date_t > 0)
		p->received_ns = env->date_t * NS_PER_SEC;
}

/* Add the pending message to the import's transaction. */
static int
import_flush(struct importer *im)
{
	struct pending *p = im->v;
	struct store_msg_fields fields;
	struct store_add add;
	struct store_err err;
	int rc;

	memset(&fields, 0, sizeof(fields));
	memset(&add, 0, sizeof(add));
	fields.message_id = p->message_id;
	fields.subject_base = p->subject_base;
	fields.msgfrom_localpart = p->from_local;
	fields.msgfrom_domain = p->from_domain;
	fields.parsed = p->parsed;
	fields.parsed_len = p->parsed_len;
	add.data = p->data;
	add.len = p->len;
	add.flags = p->flags;
	add.keywords = p->keywords;
	add.received_ns = p->received_ns;
	add.fields = &fields;
	rc = store_import_add(im->imp, &add, NULL, &err);
	if (rc == -1)
		cli_errorf("import of message %zu: %s", im->total + 1, err.text);
	else
		im->total++;
	pending_release(p);
	if (rc == 0 && im->total % IMPORT_BATCH == 0) {
		printf("%zu messages imported...\n", im->total);
		fflush(stdout);
	}
	return rc;
}

/* Parse one message (any line ends) and add it to the import. */
static int
import_add(struct importer *im, struct span raw, uint32_t flags,
    const char *keywords, int64_t received_ns)
{
	struct pending *p = im->v;
	struct message_part *root = NULL;
	struct buf b;
	const char *why;

	buf_init(&b, MSG_MAX);
	cmd_store_to_crlf(raw, &b);
	if (buf_failed(&b)) {
		buf_release(&b);
		cli_errorf("message %zu: larger than %u bytes", im->total + 1,
		    MSG_MAX);
		return -1;
	}
	p->len = b.len;
	p->data = buf_take(&b);
	p->flags = flags;
	p->keywords = xstrdup(keywords != NULL ? keywords : "");
	p->received_ns = received_ns;
	if (message_parse(p->data, p->len, &root, &why) == 0) {
		buf_init(&b, MESSAGE_SERIAL_MAX);
		if (message_serialise(root, &b) == 0 && !buf_failed(&b)) {
			p->parsed_len = b.len;
			p->parsed = buf_take(&b);
		}
		buf_release(&b);
		extract_fields(p, root);
		message_part_free(root);
	}
	return import_flush(im);
}

/* Received time from a Maildir file name ("<unix>.<rest>"), else mtime. */
static int64_t
maildir_received(const char *name, const struct stat *sb)
{
	const char *dot = strchr(name, '.');
	uint64_t t;

	if (dot != NULL &&
	    span_u64(span_of(name, (size_t)(dot - name)), INT64_MAX / NS_PER_SEC,
		&t) == 0)
		return (int64_t)t * NS_PER_SEC;
	return (int64_t)sb->st_mtim.tv_sec * NS_PER_SEC + sb->st_mtim.tv_nsec;
}

static int
import_maildir_dir(struct importer *im, const char *dir,
    const struct cmd_store_kwmap *kw)
{
	struct buf path, data, kws;
	char **names = NULL;
	size_t n = 0;
	int rc = -1;

	buf_init(&path, PATH_MAX_LEN);
	buf_init(&data, MSG_MAX);
	buf_init(&kws, STORE_KEYWORDS_MAX);
	if (list_dir(dir, &names, &n) == -1) {
		cli_errorf("read directory %s: %s", dir, log_strerror(errno));
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		struct stat sb;
		uint32_t flags;
		int fd;

		buf_reset(&path);
		buf_addf(&path, "%s/%s", dir, names[i]);
		/* A FIFO must not block the import: it is skipped. */
		fd = open(path.data,
		    O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
		if (fd == -1 || fstat(fd, &sb) == -1) {
			cli_errorf("open %s: %s", path.data, log_strerror(errno));
			if (fd != -1)
				(void)close(fd);
			goto out;
		}
		if (!S_ISREG(sb.st_mode)) {
			(void)close(fd);
			continue;
		}
		buf_reset(&data);
		if (read_fd(fd, &data) == -1) {
			cli_errorf("read %s: %s", path.data, log_strerror(errno));
			(void)close(fd);
			goto out;
		}
		(void)close(fd);
		buf_reset(&kws);
		cmd_store_maildir_info_parse(names[i], kw, &flags, &kws);
		if (import_add(im, span_of_buf(&data), flags, kws.data,
			maildir_received(names[i], &sb)) == -1)
			goto out;
	}
	rc = 0;
out:
	free_list(names, n);
	buf_release(&path);
	buf_release(&data);
	buf_release(&kws);
	return rc;
}

/* spec/store.md 18.2: new/ then cur/, letters through dovecot-keywords. */
static int
import_maildir(struct importer *im, const char *dir)
{
	struct cmd_store_kwmap kw;
	struct buf path, text, err;
	int rc = -1;

	memset(&kw, 0, sizeof(kw));
	buf_init(&path, PATH_MAX_LEN);
	buf_init(&text, KWFILE_MAX);
	buf_init(&err, 1024);
	buf_addf(&path, "%s/dovecot-keywords", dir);
	if (exists(path.data)) {
		if (io_read_file(path.data, &text, &err) == -1) {
			cli_errorf("%s", err.data);
			goto out;
		}
		cmd_store_kwmap_parse(&kw, span_of_buf(&text));
	}
	buf_reset(&path);
	buf_addf(&path, "%s/new", dir);
	buf_reset(&text);
	buf_addf(&text, "%s/cur", dir);
	if (!is_dir(path.data) && !is_dir(text.data)) {
		cli_errorf("%s: not a maildir (no new/ or cur/)", dir);
		goto out;
	}
	if ((is_dir(path.data) && import_maildir_dir(im, path.data, &kw) == -1) ||
	    (is_dir(text.data) && import_maildir_dir(im, text.data, &kw) == -1))
		goto out;
	rc = 0;
out:
	cmd_store_kwmap_release(&kw);
	buf_release(&path);
	buf_release(&text);
	buf_release(&err);
	return rc;
}

/* The header fields mbox uses for flags; export regenerates them. */
static bool
mbox_flag_field(struct span name)
{
	return span_eq_ci(name, "Status") || span_eq_ci(name, "X-Status") ||
	    span_eq_ci(name, "X-Keywords") || span_eq_ci(name, "Content-Length");
}

/* Flags from Status, X-Status and X-Keywords; those fields (and
 * Content-Length) are left out of the stored message. */
static void
mbox_header_flags(struct span msg, struct buf *out, uint32_t *flags,
    struct buf *keywords)
{
	struct span hdr = span_of(msg.p, message_header_len(msg));
	struct message_header_iter it;
	struct message_field f;
	const char *why;
	size_t end = 0; /* after the last field */

	*flags = 0;
	message_header_iter_init(&it, hdr);
	while (message_header_next(&it, &f, &why) == 1) {
		struct span v = span_trim(f.value);

		end = (size_t)(f.field.p - msg.p) + f.field.len;

		if (!mbox_flag_field(f.name)) {
			buf_add(out, f.field.p, f.field.len);
			continue;
		}
		for (size_t i = 0; i < v.len; i++) {
			char c = v.p[i];

			if (span_eq_ci(f.name, "Status") && c == 'R')
				*flags |= STORE_F_SEEN;
			else if (span_eq_ci(f.name, "X-Status") && c == 'A')
				*flags |= STORE_F_ANSWERED;
			else if (span_eq_ci(f.name, "X-Status") && c == 'F')
				*flags |= STORE_F_FLAGGED;
			else if (span_eq_ci(f.name, "X-Status") && c == 'T')
				*flags |= STORE_F_DRAFT;
			else if (span_eq_ci(f.name, "X-Status") && c == 'D')
				*flags |= STORE_F_DELETED;
		}
		if (span_eq_ci(f.name, "X-Keywords")) {
			size_t start = 0;

			for (size_t i = 0; i <= v.len; i++) {
				if (i < v.len && v.p[i] != ',' && v.p[i] != ' ')
					continue;
				if (i > start)
					apply_keyword(span_of(v.p + start,
							  i - start),
					    flags, keywords);
				start = i + 1;
			}
		}
	}
	/* The rest: the empty line and the body. */
	buf_add(out, msg.p + end, msg.len - end);
}

static int
mbox_finish(struct importer *im, struct buf *msg, int64_t t)
{
	struct buf body, kws;
	uint32_t flags;
	int rc;

	/* mboxrd: the empty line before the next From line is not part of
	 * the message. */
	if (msg->len >= 2 && msg->data[msg->len - 1] == '\n' &&
	    msg->data[msg->len - 2] == '\n')
		buf_truncate(msg, msg->len - 1);
	else if (msg->len >= 4 &&
	    memcmp(msg->data + msg->len - 4, "\r\n\r\n", 4) == 0)
		buf_truncate(msg, msg->len - 2);
	buf_init(&body, MSG_MAX);
	buf_init(&kws, STORE_KEYWORDS_MAX);
	mbox_header_flags(span_of_buf(msg), &body, &flags, &kws);
	rc = import_add(im, span_of_buf(&body), flags, kws.data,
	    t > 0 ? t * NS_PER_SEC : 0);
	buf_release(&body);
	buf_release(&kws);
	buf_reset(msg);
	return rc;
}

static bool
is_empty_line(const char *l, size_t n)
{
	return (n == 1 && l[0] == '\n') || (n == 2 && l[0] == '\r' && l[1] == '\n');
}

/* spec/store.md 18.2: a message starts at a "From " line after an empty
 * line; one '>' is removed from ">+From " lines (mboxrd). */
static int
import_mbox(struct importer *im, const char *path)
{
	FILE *f = fopen(path, "re");
	struct buf msg;
	char *line = NULL;
	size_t cap = 0, lineno = 0;
	ssize_t n;
	bool prev_empty = true, in_msg = false;
	int64_t t = 0;
	int rc = -1;

	if (f == NULL) {
		cli_errorf("open %s: %s", path, log_strerror(errno));
		return -1;
	}
	buf_init(&msg, MSG_MAX);
	while ((n = getline(&line, &cap, f)) != -1) {
		size_t len = (size_t)n, q = 0;

		lineno++;
		if (prev_empty && len >= 5 && memcmp(line, "From ", 5) == 0) {
			if (in_msg && mbox_finish(im, &msg, t) == -1)
				goto out;
			in_msg = true;
			if (cmd_store_mbox_from_time(span_of(line, len), &t) == -1)
				t = 0;
			prev_empty = false;
			continue;
		}
		if (!in_msg) {
			cli_errorf("%s:%zu: not an mbox file (no From line)",
			    path, lineno);
			goto out;
		}
		prev_empty = is_empty_line(line, len);
		while (q < len && line[q] == '>')
			q++;
		if (q > 0 && len - q >= 5 && memcmp(line + q, "From ", 5) == 0)
			buf_add(&msg, line + 1, len - 1);
		else
			buf_add(&msg, line, len);
		if (buf_failed(&msg)) {
			cli_errorf("%s:%zu: message larger than %u bytes", path,
			    lineno, MSG_MAX);
			goto out;
		}
	}
	if (ferror(f)) {
		cli_errorf("read %s: %s", path, log_strerror(errno));
		goto out;
	}
	if (in_msg && mbox_finish(im, &msg, t) == -1)
		goto out;
	rc = 0;
out:
	free(line);
	buf_release(&msg);
	fclose(f);
	return rc;
}

int
cmd_import(int argc, char **argv)
{
	static const char args[] = "ACCOUNT MAILBOX PATH";
	struct config *cfg = NULL;
	struct store *s = NULL;
	struct store_account *a = NULL;
	struct store_err err;
	struct importer im;
	struct pending one;
	char *datadir = NULL;
	bool maildir;
	int rc = 1;

	if (argc != 5 ||
	    (strcmp(argv[1], "maildir") != 0 && strcmp(argv[1], "mbox") != 0))
		return cli_usage(argc >= 2 && strcmp(argv[1], "mbox") == 0 ?
			"import mbox" : "import maildir", args);
	maildir = strcmp(argv[1], "maildir") == 0;
	memset(&im, 0, sizeof(im));
	memset(&one, 0, sizeof(one));
	im.v = &one;
	cfg = load_config();
	if (cfg == NULL)
		goto out;
	if (config_account_find(cfg, argv[2]) == NULL) {
		cli_errorf("account %s not configured", argv[2]);
		goto out;
	}
	datadir = config_path(cfg, cfg->st->data_dir);
	if (open_account(datadir, argv[2], true, 0, &s, &a) == -1)
		goto out;
	/* spec/store.md 18.2: one transaction (so one modseq) for the whole
	 * import, the mailbox created in it: a failure leaves nothing, and
	 * running the import again does not duplicate. */
	im.imp = store_import_begin(a, argv[3], true, &err);
	if (im.imp == NULL) {
		cli_errorf("mailbox %s: %s", argv[3], err.text);
		goto out;
	}
	if ((maildir ? import_maildir(&im, argv[4]) :
		       import_mbox(&im, argv[4])) == -1) {
		cli_errorf("nothing imported");
		goto out;
	}
	rc = store_import_commit(im.imp, &err) == 0 ? 0 : 1;
	im.imp = NULL;
	if (rc != 0) {
		cli_errorf("import: %s; nothing imported", err.text);
		goto out;
	}
	printf("%zu messages imported\n", im.total);
out:
	store_import_abort(im.imp);
	pending_release(&one);
	store_account_put(a);
	store_free(s);
	free(datadir);
	config_free(cfg);
	return rc;
}

/* ---- export (spec/store.md 18.1) ---- */

struct exporter {
	struct store_account *a;
	const char *dst;
	bool mbox;
	struct buf errors; /* lines for errors.txt */
	size_t count;
};

/* Read a live message into out. */
static int
export_read(struct exporter *ex, const struct store_mailbox *mb,
    const struct store_msg *m, struct buf *out)
{
	struct store_err err;
	int fd;

	if (store_msg_open(ex->a, mb->id, m->uid, &fd, &err) == -1) {
		buf_addf(&ex->errors, "%s: uid %u: %s\n", mb->name, m->uid,
		    err.text);
		return -1;
	}
	if (read_fd(fd, out) == -1) {
		buf_addf(&ex->errors, "%s: uid %u: read: %s\n", mb->name,
		    m->uid, log_strerror(errno));
		(void)close(fd);
		return -1;
	}
	(void)close(fd);
	return 0;
}

static int
export_maildir_mb(struct exporter *ex, const struct store_mailbox *mb,
    const char *name, const struct store_msg_list *l)
{
	struct cmd_store_kwmap kw;
	struct buf dir, path, data, lf, info;
	const char *why;
	int rc = -1;

	memset(&kw, 0, sizeof(kw));
	buf_init(&dir, PATH_MAX_LEN);
	buf_init(&path, PATH_MAX_LEN);
	buf_init(&data, MSG_MAX);
	buf_init(&lf, MSG_MAX);
	buf_init(&info, 256);
	buf_addf(&dir, "%s/%s", ex->dst, name);
	for (int i = 0; i < 3; i++) {
		buf_reset(&path);
		buf_addf(&path, "%s/%s", dir.data,
		    i == 0 ? "new" : i == 1 ? "cur" : "tmp");
		if (buf_failed(&path) || io_mkdir_p(path.data, 0750) == -1) {
			cli_errorf("mkdir %s: %s", path.data,
			    log_strerror(errno));
			goto out;
		}
	}
	for (size_t i = 0; i < l->n; i++) {
		const struct store_msg *m = &l->v[i];
		int64_t t = m->received_ns / NS_PER_SEC;

		buf_reset(&data);
		buf_reset(&lf);
		buf_reset(&info);
		if (export_read(ex, mb, m, &data) == -1)
			continue;
		cmd_store_to_lf(span_of_buf(&data), &lf);
		cmd_store_maildir_info_format(m->flags, m->keywords, &kw, &info);
		buf_reset(&path);
		/* spec/store.md 18.1: unseen in new/, seen in cur/. */
		buf_addf(&path, "%s/%s/%lld.%lld.mox%s", dir.data,
		    (m->flags & STORE_F_SEEN) ? "cur" : "new", (long long)t,
		    (long long)m->id, info.data);
		if (buf_failed(&path) ||
		    write_new_file(path.data, lf.data, lf.len, t, &why) == -1) {
			cli_errorf("write %s: %s", path.data,
			    buf_failed(&path) ? "path too long" : why);
			goto out;
		}
		ex->count++;
	}
	buf_reset(&data);
	cmd_store_kwmap_format(&kw, &data);
	if (data.len > 0) {
		buf_reset(&path);
		buf_addf(&path, "%s/dovecot-keywords", dir.data);
		if (write_new_file(path.data, data.data, data.len, 0, &why) ==
		    -1) {
			cli_errorf("write %s: %s", path.data, why);
			goto out;
		}
	}
	rc = 0;
out:
	cmd_store_kwmap_release(&kw);
	buf_release(&dir);
	buf_release(&path);
	buf_release(&data);
	buf_release(&lf);
	buf_release(&info);
	return rc;
}

/* A MAIL FROM usable as the one word of a From line. */
static bool
from_word_ok(const char *s)
{
	if (s == NULL || s[0] == '\0' || strlen(s) > 256)
		return false;
	for (const char *p = s; *p != '\0'; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			return false;
	return true;
}

void
cmd_store_mbox_message(const struct store_msg *m, const char *mailfrom,
    struct span msg, struct buf *out)
{
	struct span hdr = span_of(msg.p, message_header_len(msg));
	struct message_header_iter it;
	struct message_field f;
	struct buf lf;
	const char *why;
	size_t end = 0, i;
	bool first = true;

	/* spec/store.md 18.1: From <mailfrom or "mox"> <asctime>. */
	buf_addf(out, "From %s ", from_word_ok(mailfrom) ? mailfrom : "mox");
	cmd_store_asctime(m->received_ns / NS_PER_SEC, out);
	buf_addc(out, '\n');
	if (m->flags & STORE_F_SEEN)
		buf_adds(out, "Status: R\n");
	if (m->flags & (STORE_F_ANSWERED | STORE_F_FLAGGED | STORE_F_DRAFT |
			   STORE_F_DELETED)) {
		buf_adds(out, "X-Status: ");
		if (m->flags & STORE_F_ANSWERED)
			buf_addc(out, 'A');
		if (m->flags & STORE_F_FLAGGED)
			buf_addc(out, 'F');
		if (m->flags & STORE_F_DRAFT)
			buf_addc(out, 'T');
		if (m->flags & STORE_F_DELETED)
			buf_addc(out, 'D');
		buf_addc(out, '\n');
	}
	for (i = 0; i < ARRAY_LEN(wk_flags); i++) {
		uint32_t jn = STORE_F_JUNK | STORE_F_NOTJUNK;

		if (!(m->flags & wk_flags[i].flag))
			continue;
		/* spec/store.md 18.1: $Junk only if not also $NotJunk, and
		 * the other way round. */
		if ((wk_flags[i].flag & jn) && (m->flags & jn) == jn)
			continue;
		buf_adds(out, first ? "X-Keywords: " : ",");
		buf_adds(out, wk_flags[i].name);
		first = false;
	}
	/* Ours also exports custom keywords (spec/store.md 18.1). */
	for (const char *k = m->keywords; k != NULL && *k != '\0'; k++) {
		if (*k == ' ')
			continue;
		buf_adds(out, first ? "X-Keywords: " : ",");
		first = false;
		while (*k != '\0' && *k != ' ')
			buf_addc(out, *k++);
		if (*k == '\0')
			break;
	}
	if (!first)
		buf_addc(out, '\n');
	buf_init(&lf, MSG_MAX);
	message_header_iter_init(&it, hdr);
	while (message_header_next(&it, &f, &why) == 1) {
		end = (size_t)(f.field.p - msg.p) + f.field.len;
		if (!mbox_flag_field(f.name))
			buf_add(&lf, f.field.p, f.field.len);
	}
	buf_add(&lf, msg.p + end, msg.len - end);
	/* One more '>' on every line matching ^>*From (mboxrd), CRLF->LF. */
	i = 0;
	while (i < lf.len) {
		const char *nl = memchr(lf.data + i, '\n', lf.len - i);
		size_t n = nl != NULL ? (size_t)(nl - (lf.data + i)) + 1 : lf.len - i;
		size_t q = 0, len = n;

		while (q < n && lf.data[i + q] == '>')
			q++;
		if (n - q >= 5 && memcmp(lf.data + i + q, "From ", 5) == 0)
			buf_addc(out, '>');
		if (len >= 2 && lf.data[i + len - 2] == '\r' &&
		    lf.data[i + len - 1] == '\n') {
			buf_add(out, lf.data + i, len - 2);
			buf_addc(out, '\n');
		} else
			buf_add(out, lf.data + i, len);
		i += n;
	}
	if (out->len > 0 && out->data[out->len - 1] != '\n')
		buf_addc(out, '\n');
	buf_addc(out, '\n');
	buf_release(&lf);
}

static int
export_mbox_mb(struct exporter *ex, const struct store_mailbox *mb,
    const char *name, const struct store_msg_list *l)
{
	struct buf path, dir, data, out, from;
	struct store_err err;
	int fd = -1, rc = -1;

	buf_init(&path, PATH_MAX_LEN);
	buf_init(&dir, PATH_MAX_LEN);
	buf_init(&data, MSG_MAX);
	buf_init(&out, BUF_NOMAX);
	buf_init(&from, 1024);
	buf_addf(&path, "%s/%s.mbox", ex->dst, name);
	io_dirname(path.data, &dir);
	if (buf_failed(&path) || io_mkdir_p(dir.data, 0750) == -1) {
		cli_errorf("mkdir %s: %s", dir.data, log_strerror(errno));
		goto out;
	}
	fd = open(path.data, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
	    0640);
	if (fd == -1) {
		cli_errorf("create %s: %s", path.data, log_strerror(errno));
		goto out;
	}
	for (size_t i = 0; i < l->n; i++) {
		buf_reset(&data);
		buf_reset(&out);
		if (export_read(ex, mb, &l->v[i], &data) == -1)
			continue;
		buf_reset(&from);
		if (store_msg_mailfrom(ex->a, l->v[i].id, &from, &err) == -1 ||
		    buf_failed(&from))
			buf_reset(&from);
		cmd_store_mbox_message(&l->v[i], from.data, span_of_buf(&data),
		    &out);
		if (io_write_all(fd, out.data, out.len) == -1) {
			cli_errorf("write %s: %s", path.data,
			    log_strerror(errno));
			goto out;
		}
		ex->count++;
	}
	if (fsync(fd) == -1) {
		cli_errorf("fsync %s: %s", path.data, log_strerror(errno));
		goto out;
	}
	rc = 0;
out:
	if (fd != -1 && close(fd) == -1 && rc == 0) {
		cli_errorf("close %s: %s", path.data, log_strerror(errno));
		rc = -1;
	}
	buf_release(&path);
	buf_release(&dir);
	buf_release(&data);
	buf_release(&out);
	buf_release(&from);
	return rc;
}

/* The account argument: a name from the config, or (with a '/') the path
 * of an account directory <datadir>/accounts/<name> as mox takes it. */
static int
export_resolve(const char *arg, char **datadir_out, char **name_out)
{
	struct config *cfg;
	const char *slash = strrchr(arg, '/');

	if (slash != NULL) {
		struct buf acc, dd;
		char *p = xstrdup(arg);
		size_t n = strlen(p);

		while (n > 1 && p[n - 1] == '/')
			p[--n] = '\0';
		slash = strrchr(p, '/');
		*name_out = xstrdup(slash != NULL ? slash + 1 : p);
		buf_init(&acc, PATH_MAX_LEN);
		buf_init(&dd, PATH_MAX_LEN);
		io_dirname(p, &acc);
		io_dirname(acc.data, &dd);
		*datadir_out = buf_take(&dd);
		buf_release(&acc);
		free(p);
		return 0;
	}
	cfg = load_config();
	if (cfg == NULL)
		return -1;
	if (config_account_find(cfg, arg) == NULL) {
		cli_errorf("account %s not configured", arg);
		config_free(cfg);
		return -1;
	}
	*datadir_out = config_path(cfg, cfg->st->data_dir);
	*name_out = xstrdup(arg);
	config_free(cfg);
	return 0;
}

static int
export_mailboxes(struct exporter *ex, const char *only, bool single)
{
	struct store_mailbox *mbs = NULL;
	struct store_err err;
	size_t n = 0, done = 0, strip = 0;
	const char *slash;
	int rc = -1;

	if (store_mailbox_list(ex->a, &mbs, &n, &err) == -1) {
		cli_errorf("list mailboxes: %s", err.text);
		return -1;
	}
	/* spec/store.md 18.1: the parent path of the named mailbox is
	 * stripped from exported names. */
	slash = only != NULL ? strrchr(only, '/') : NULL;
	if (slash != NULL)
		strip = (size_t)(slash - only) + 1;
	for (size_t i = 0; i < n; i++) {
		struct store_msg_list l = { NULL, 0 };
		size_t len = only != NULL ? strlen(only) : 0;
		int r;

		if (only != NULL && strcmp(mbs[i].name, only) != 0 &&
		    (single || strncmp(mbs[i].name, only, len) != 0 ||
			mbs[i].name[len] != '/'))
			continue;
		if (store_list(ex->a, mbs[i].id, &l, &err) == -1) {
			buf_addf(&ex->errors, "%s: list messages: %s\n",
			    mbs[i].name, err.text);
			continue;
		}
		r = ex->mbox ? export_mbox_mb(ex, &mbs[i], mbs[i].name + strip, &l) :
			       export_maildir_mb(ex, &mbs[i], mbs[i].name + strip, &l);
		store_msg_list_release(&l);
		if (r == -1)
			goto out;
		done++;
	}
	if (only != NULL && done == 0) {
		cli_errorf("mailbox %s not found", only);
		goto out;
	}
	rc = 0;
out:
	store_mailbox_list_free(mbs, n);
	return rc;
}

int
cmd_export(int argc, char **argv)
{
	static const char args[] = "[-single] DESTDIR ACCOUNT [MAILBOX]";
	struct store *s = NULL;
	struct store_account *a = NULL;
	struct exporter ex;
	struct buf canon;
	char *datadir = NULL, *name = NULL;
	const char *only = NULL, *why;
	bool single = false;
	int i = 2, rc = 1;

	if (argc < 2 ||
	    (strcmp(argv[1], "maildir") != 0 && strcmp(argv[1], "mbox") != 0))
		return cli_usage("export maildir", args);
	if (i < argc && strcmp(argv[i], "-single") == 0) {
		single = true;
		i++;
	}
	if (argc - i < 2 || argc - i > 3 || argv[i][0] == '-')
		return cli_usage(strcmp(argv[1], "mbox") == 0 ? "export mbox" :
			"export maildir", args);
	memset(&ex, 0, sizeof(ex));
	ex.mbox = strcmp(argv[1], "mbox") == 0;
	ex.dst = argv[i];
	buf_init(&ex.errors, 16 * 1024 * 1024);
	buf_init(&canon, STORE_MAILBOX_NAME_MAX + 8);
	if (argc - i == 3) {
		if (store_mailbox_name_check(argv[i + 2], &canon, &why) == -1) {
			cli_errorf("mailbox %s: %s", argv[i + 2], why);
			goto out;
		}
		only = canon.data;
	}
	if (export_resolve(argv[i + 1], &datadir, &name) == -1 ||
	    open_account(datadir, name, false, STORE_OPEN_READONLY, &s, &a) ==
		-1)
		goto out;
	if (io_mkdir_p(ex.dst, 0750) == -1) {
		cli_errorf("mkdir %s: %s", ex.dst, log_strerror(errno));
		goto out;
	}
	ex.a = a;
	if (export_mailboxes(&ex, only, single) == -1)
		goto out;
	if (ex.errors.len > 0) {
		struct buf p;

		buf_init(&p, PATH_MAX_LEN);
		buf_addf(&p, "%s/errors.txt", ex.dst);
		if (write_new_file(p.data, ex.errors.data, ex.errors.len, 0,
			&why) == -1)
			cli_errorf("write %s: %s", p.data, why);
		cli_errorf("some messages could not be exported, see %s", p.data);
		buf_release(&p);
		goto out;
	}
	rc = 0;
out:
	store_account_put(a);
	store_free(s);
	free(datadir);
	free(name);
	buf_release(&ex.errors);
	buf_release(&canon);
	return rc;
}

/* ---- backup (spec/store.md 16) ---- */

/* Global databases, relative to the data directory. */
static const char *const global_dbs[] = {
	"queue/index.db", "reports.db", "mtasts.db", "auth.db", "dmarcrpt.db",
	"dmarceval.db", "tlsrpt.db", "tlsrptresult.db",
};

/* Plain files copied as they are. */
static const char *const small_files[] = {
	"receivedid.key", "lastknownversion",
};

struct backup {
	const char *src;  /* data directory */
	const char *dst;
	bool verbose;
	size_t errors;
	size_t warnings;
};

static void PRINTF_LIKE(2, 3)
backup_error(struct backup *b, const char *fmt, ...)
{
	va_list ap;

	b->errors++;
	fprintf(stderr, "%s: ", cli.prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void PRINTF_LIKE(2, 3)
backup_warn(struct backup *b, const char *fmt, ...)
{
	va_list ap;

	b->warnings++;
	fprintf(stderr, "%s: warning: ", cli.prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void
backup_step(struct backup *b, const char *what, int64_t start_ns)
{
	struct buf d;

	if (!b->verbose)
		return;
	buf_init(&d, 64);
	time_format_duration(&d, time_mono_ns() - start_ns);
	printf("%s (%s)\n", what, d.data);
	fflush(stdout);
	buf_release(&d);
}

/* Copy database src into the new file dst through the online backup
 * API: one step, so the copy is one read snapshot of src. */
static int
db_copy(const char *src, const char *dst, const char **why)
{
	sqlite3 *from = NULL, *to = NULL;
	sqlite3_backup *bk;
	int fd, r, rc = -1;

	*why = "out of memory";
	fd = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	if (fd == -1 || close(fd) == -1) {
		*why = log_strerror(errno);
		return -1;
	}
	if (sqlite3_open_v2(src, &from, SQLITE_OPEN_READONLY, NULL) !=
	    SQLITE_OK) {
		*why = from != NULL ? sqlite3_errmsg(from) : *why;
		goto out;
	}
	sqlite3_busy_timeout(from, DB_BUSY_MS);
	if (sqlite3_open_v2(dst, &to, SQLITE_OPEN_READWRITE, NULL) !=
	    SQLITE_OK) {
		*why = to != NULL ? sqlite3_errmsg(to) : *why;
		goto out;
	}
	bk = sqlite3_backup_init(to, "main", from, "main");
	if (bk == NULL) {
		*why = sqlite3_errmsg(to);
		goto out;
	}
	for (int tries = 0; tries < DB_BUSY_MS / 10; tries++) {
		r = sqlite3_backup_step(bk, -1);
		if (r != SQLITE_BUSY && r != SQLITE_LOCKED)
			break;
		sqlite3_sleep(10);
	}
	if (sqlite3_backup_finish(bk) != SQLITE_OK || r != SQLITE_DONE) {
		*why = sqlite3_errmsg(to);
		goto out;
	}
	rc = 0;
out:
	if (to != NULL && sqlite3_close(to) != SQLITE_OK && rc == 0) {
		*why = "close failed";
		rc = -1;
	}
	sqlite3_close(from);
	return rc;
}

/* Hard-link src to dst, copying across file systems. An existing dst
 * counts as done. Sets errno on -1. */
static int
link_or_copy(const char *src, const char *dst, struct backup *b,
    bool *warned)
{
	struct buf data, err;
	const char *why;
	int rc = -1;

	if (link(src, dst) == 0 || errno == EEXIST)
		return 0;
	if (errno != EXDEV && errno != EPERM && errno != EMLINK)
		return -1;
	if (!*warned) {
		backup_warn(b, "hard links from %s to %s failed (%s), copying "
			       "instead; with systemd, ReadWritePaths creates "
			       "separate mount points", src, dst,
		    log_strerror(errno));
		*warned = true;
	}
	buf_init(&data, MSG_MAX);
	buf_init(&err, 1024);
	if (io_read_file(src, &data, &err) == 0 &&
	    write_new_file(dst, data.data, data.len, 0, &why) == 0)
		rc = 0;
	buf_release(&data);
	buf_release(&err);
	if (rc == -1)
		errno = EIO;
	return rc;
}

/* Copy a plain file (same relative path), creating parents. */
static void
backup_copy_file(struct backup *b, const char *rel)
{
	struct buf src, dst, dir, data, err;
	const char *why;

	buf_init(&src, PATH_MAX_LEN);
	buf_init(&dst, PATH_MAX_LEN);
	buf_init(&dir, PATH_MAX_LEN);
	buf_init(&data, SMALLFILE_MAX);
	buf_init(&err, 1024);
	buf_addf(&src, "%s/%s", b->src, rel);
	buf_addf(&dst, "%s/%s", b->dst, rel);
	io_dirname(dst.data, &dir);
	if (io_mkdir_p(dir.data, 0750) == -1)
		backup_error(b, "mkdir %s: %s", dir.data, log_strerror(errno));
	else if (io_read_file(src.data, &data, &err) == -1)
		backup_error(b, "%s", err.data);
	else if (write_new_file(dst.data, data.data, data.len, 0, &why) == -1)
		backup_error(b, "write %s: %s", dst.data, why);
	buf_release(&src);
	buf_release(&dst);
	buf_release(&dir);
	buf_release(&data);
	buf_release(&err);
}

/* Copy a directory tree of plain files (acme/, unknown entries). */
static void
backup_copy_tree(struct backup *b, const char *rel)
{
	struct buf src, sub;
	char **names = NULL;
	size_t n = 0;

	buf_init(&src, PATH_MAX_LEN);
	buf_init(&sub, PATH_MAX_LEN);
	buf_addf(&src, "%s/%s", b->src, rel);
	if (list_dir(src.data, &names, &n) == -1) {
		backup_error(b, "read directory %s: %s", src.data,
		    log_strerror(errno));
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		struct stat sb;

		buf_reset(&sub);
		buf_addf(&sub, "%s/%s/%s", b->src, rel, names[i]);
		if (lstat(sub.data, &sb) == -1)
			continue;
		buf_reset(&sub);
		buf_addf(&sub, "%s/%s", rel, names[i]);
		if (S_ISDIR(sb.st_mode))
			backup_copy_tree(b, sub.data);
		else if (S_ISREG(sb.st_mode))
			backup_copy_file(b, sub.data);
	}
out:
	free_list(names, n);
	buf_release(&src);
	buf_release(&sub);
}

/* A file or a tree of files at rel. */
static void
backup_copy_any(struct backup *b, const char *rel)
{
	struct buf p;
	struct stat sb;

	buf_init(&p, PATH_MAX_LEN);
	buf_addf(&p, "%s/%s", b->src, rel);
	if (lstat(p.data, &sb) == 0 && S_ISDIR(sb.st_mode))
		backup_copy_tree(b, rel);
	else if (lstat(p.data, &sb) == 0 && S_ISREG(sb.st_mode))
		backup_copy_file(b, rel);
	buf_release(&p);
}

static void
backup_db(struct backup *b, const char *rel)
{
	struct buf src, dst, dir;
	const char *why;
	int64_t t0 = time_mono_ns();

	buf_init(&src, PATH_MAX_LEN);
	buf_init(&dst, PATH_MAX_LEN);
	buf_init(&dir, PATH_MAX_LEN);
	buf_addf(&src, "%s/%s", b->src, rel);
	buf_addf(&dst, "%s/%s", b->dst, rel);
	io_dirname(dst.data, &dir);
	if (io_mkdir_p(dir.data, 0750) == -1)
		backup_error(b, "mkdir %s: %s", dir.data, log_strerror(errno));
	else if (db_copy(src.data, dst.data, &why) == -1)
		backup_error(b, "backup %s: %s", rel, why);
	else
		backup_step(b, rel, t0);
	buf_release(&src);
	buf_release(&dst);
	buf_release(&dir);
}

/* Link every file of queue/msg/ (before the snapshot, so rows of the
 * snapshot whose delivery finishes meanwhile keep their file). */
static void
backup_queue_prelink(struct backup *b, bool *warned)
{
	struct buf src, dst;
	char **names = NULL;
	size_t n = 0;

	buf_init(&src, PATH_MAX_LEN);
	buf_init(&dst, PATH_MAX_LEN);
	buf_addf(&src, "%s/queue/msg", b->src);
	buf_addf(&dst, "%s/queue/msg", b->dst);
	if (list_dir(src.data, &names, &n) == -1)
		goto out;
	if (io_mkdir_p(dst.data, 0750) == -1) {
		backup_error(b, "mkdir %s: %s", dst.data, log_strerror(errno));
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		buf_reset(&src);
		buf_reset(&dst);
		buf_addf(&src, "%s/queue/msg/%s", b->src, names[i]);
		buf_addf(&dst, "%s/queue/msg/%s", b->dst, names[i]);
		if (link_or_copy(src.data, dst.data, b, warned) == -1 &&
		    errno != ENOENT)
			backup_error(b, "link %s: %s", src.data,
			    log_strerror(errno));
	}
out:
	free_list(names, n);
	buf_release(&src);
	buf_release(&dst);
}

/* After the snapshot: link files of rows added since the first pass, and
 * drop linked files the snapshot has no row for. */
static void
backup_queue_files(struct backup *b, bool *warned)
{
	struct buf p, src, dst;
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int64_t *ids = NULL;
	size_t nids = 0, n = 0;
	char **names = NULL;

	buf_init(&p, PATH_MAX_LEN);
	buf_init(&src, PATH_MAX_LEN);
	buf_init(&dst, PATH_MAX_LEN);
	buf_addf(&p, "%s/queue/index.db", b->dst);
	if (sqlite3_open_v2(p.data, &db, SQLITE_OPEN_READONLY, NULL) !=
		SQLITE_OK ||
	    sqlite3_prepare_v2(db, "SELECT id FROM msg ORDER BY id", -1, &st,
		NULL) != SQLITE_OK) {
		backup_error(b, "queue/index.db copy: %s",
		    db != NULL ? sqlite3_errmsg(db) : "open failed");
		goto out;
	}
	while (sqlite3_step(st) == SQLITE_ROW) {
		ids = xreallocarray(ids, nids + 1, sizeof(*ids));
		ids[nids++] = sqlite3_column_int64(st, 0);
	}
	buf_reset(&dst);
	buf_addf(&dst, "%s/queue/msg", b->dst);
	if (io_mkdir_p(dst.data, 0750) == -1) {
		backup_error(b, "mkdir %s: %s", dst.data, log_strerror(errno));
		goto out;
	}
	for (size_t i = 0; i < nids; i++) {
		buf_reset(&src);
		buf_reset(&dst);
		buf_addf(&src, "%s/queue/msg/%lld", b->src, (long long)ids[i]);
		buf_addf(&dst, "%s/queue/msg/%lld", b->dst, (long long)ids[i]);
		if (link_or_copy(src.data, dst.data, b, warned) == -1)
			backup_error(b, "queue message %lld: %s",
			    (long long)ids[i], log_strerror(errno));
	}
	buf_reset(&dst);
	buf_addf(&dst, "%s/queue/msg", b->dst);
	if (list_dir(dst.data, &names, &n) == 0) {
		for (size_t i = 0; i < n; i++) {
			uint64_t id;
			bool keep = false;

			if (span_u64(span_of_cstr(names[i]), INT64_MAX, &id) == 0)
				for (size_t k = 0; k < nids && !keep; k++)
					keep = ids[k] == (int64_t)id;
			buf_reset(&p);
			buf_addf(&p, "%s/queue/msg/%s", b->dst, names[i]);
			if (!keep && unlink(p.data) == -1)
				backup_error(b, "unlink %s: %s", p.data,
				    log_strerror(errno));
		}
	}
out:
	free_list(names, n);
	free(ids);
	sqlite3_finalize(st);
	sqlite3_close(db);
	buf_release(&p);
	buf_release(&src);
	buf_release(&dst);
}

static void
backup_queue(struct backup *b)
{
	struct buf p;
	bool warned = false;
	int64_t t0 = time_mono_ns();

	buf_init(&p, PATH_MAX_LEN);
	buf_addf(&p, "%s/queue/index.db", b->src);
	if (exists(p.data)) {
		backup_queue_prelink(b, &warned);
		backup_db(b, "queue/index.db");
		backup_queue_files(b, &warned);
		backup_step(b, "queue message files", t0);
	}
	buf_release(&p);
}

/* The account's other files: junkfilter.db (a database), the rest copied;
 * index.db and maildir/ are store_backup_account()'s. */
static void
backup_account_extra(struct backup *b, const char *name)
{
	struct buf dir, rel;
	char **names = NULL;
	size_t n = 0;

	buf_init(&dir, PATH_MAX_LEN);
	buf_init(&rel, PATH_MAX_LEN);
	buf_addf(&dir, "%s/accounts/%s", b->src, name);
	if (list_dir(dir.data, &names, &n) == -1)
		goto out;
	for (size_t i = 0; i < n; i++) {
		const char *f = names[i];
		size_t len = strlen(f);

		if (strcmp(f, "index.db") == 0 || strcmp(f, "maildir") == 0 ||
		    (len > 4 && (strcmp(f + len - 4, "-wal") == 0 ||
				    strcmp(f + len - 4, "-shm") == 0)) ||
		    (len > 8 && strcmp(f + len - 8, "-journal") == 0))
			continue;
		buf_reset(&rel);
		buf_addf(&rel, "accounts/%s/%s", name, f);
		if (strcmp(f, "junkfilter.db") == 0) {
			backup_db(b, rel.data);
			continue;
		}
		if (strcmp(f, "junkfilter.bloom") != 0)
			backup_warn(b, "unrecognised file %s, copying", rel.data);
		backup_copy_any(b, rel.data);
	}
out:
	free_list(names, n);
	buf_release(&dir);
	buf_release(&rel);
}

static void
backup_accounts(struct backup *b, const struct config *cfg)
{
	struct store *s = NULL;
	struct store_err err;
	struct buf p;
	char **names = NULL;
	size_t n = 0;

	buf_init(&p, PATH_MAX_LEN);
	buf_addf(&p, "%s/accounts", b->src);
	if (!is_dir(p.data))
		goto out;
	if (list_dir(p.data, &names, &n) == -1) {
		backup_error(b, "read directory %s: %s", p.data,
		    log_strerror(errno));
		goto out;
	}
	/* Read-only: the backup writes nothing in the data directory. */
	s = store_open(b->src, STORE_OPEN_READONLY, &err);
	if (s == NULL) {
		backup_error(b, "open data directory: %s", err.text);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		struct store_account *a = NULL;
		int64_t t0 = time_mono_ns();

		buf_reset(&p);
		buf_addf(&p, "accounts/%s", names[i]);
		if (config_account_find(cfg, names[i]) == NULL)
			backup_warn(b, "account %s is not in the config, backing "
				       "it up anyway", names[i]);
		if (!store_account_name_valid(names[i]) ||
		    store_account_get(s, names[i], false, &a, &err) == -1) {
			/* spec/store.md 16: accounts that cannot be opened
			 * are copied as plain files. */
			backup_warn(b, "account %s cannot be opened (%s), "
				       "copying its files", names[i],
			    store_account_name_valid(names[i]) ? err.text :
								  "invalid name");
			backup_copy_tree(b, p.data);
			continue;
		}
		if (store_backup_account(a, b->dst, &err) == -1)
			backup_error(b, "account %s: %s", names[i], err.text);
		else
			backup_step(b, p.data, t0);
		store_account_put(a);
		backup_account_extra(b, names[i]);
	}
out:
	store_free(s);
	free_list(names, n);
	buf_release(&p);
}

static bool
name_in(const char *name, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(name, list[i]) == 0)
			return true;
	return false;
}

/* spec/store.md 16 step 6: other entries of the data directory. */
static void
backup_others(struct backup *b)
{
	static const char *const skip[] = { "queue", "accounts", "tmp", "ctl",
		"moved", "moxversion" };
	char **names = NULL;
	size_t n = 0;

	if (list_dir(b->src, &names, &n) == -1) {
		backup_error(b, "read directory %s: %s", b->src,
		    log_strerror(errno));
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const char *f = names[i];
		size_t len = strlen(f);

		if (name_in(f, skip, ARRAY_LEN(skip)) ||
		    name_in(f, global_dbs, ARRAY_LEN(global_dbs)) ||
		    (len > 4 && (strcmp(f + len - 4, "-wal") == 0 ||
				    strcmp(f + len - 4, "-shm") == 0)) ||
		    (len > 8 && strcmp(f + len - 8, "-journal") == 0))
			continue;
		if (strcmp(f, "acme") == 0) {
			backup_copy_tree(b, f);
			continue;
		}
		if (!name_in(f, small_files, ARRAY_LEN(small_files)))
			backup_warn(b, "unrecognised entry %s, copying", f);
		backup_copy_any(b, f);
	}
	free_list(names, n);
}

/* DESTDIR must not exist or be an empty directory. */
static int
backup_prepare_dst(const char *dst)
{
	char **names = NULL;
	size_t n = 0;

	if (exists(dst)) {
		if (!is_dir(dst)) {
			cli_errorf("%s exists and is not a directory", dst);
			return -1;
		}
		if (list_dir(dst, &names, &n) == -1) {
			cli_errorf("read directory %s: %s", dst,
			    log_strerror(errno));
			return -1;
		}
		free_list(names, n);
		if (n > 0) {
			cli_errorf("destination %s is not empty", dst);
			return -1;
		}
		return 0;
	}
	if (io_mkdir_p(dst, 0750) == -1) {
		cli_errorf("mkdir %s: %s", dst, log_strerror(errno));
		return -1;
	}
	return 0;
}

int
cmd_backup(int argc, char **argv)
{
	static const char args[] = "[-verbose] DESTDIR";
	struct config *cfg = NULL;
	struct backup b;
	struct buf p, v;
	char *datadir = NULL;
	const char *why;
	int i = 1, rc = 1;
	int64_t t0 = time_mono_ns();

	memset(&b, 0, sizeof(b));
	if (i < argc && strcmp(argv[i], "-verbose") == 0) {
		b.verbose = true;
		i++;
	}
	if (argc - i != 1 || argv[i][0] == '-')
		return cli_usage("backup", args);
	b.dst = argv[i];
	buf_init(&p, PATH_MAX_LEN);
	buf_init(&v, 256);
	cfg = load_config();
	if (cfg == NULL)
		goto out;
	datadir = config_path(cfg, cfg->st->data_dir);
	b.src = datadir;
	if (!is_dir(datadir)) {
		cli_errorf("data directory %s: not a directory", datadir);
		goto out;
	}
	if (backup_prepare_dst(b.dst) == -1)
		goto out;
	buf_addf(&p, "%s/moxversion", b.dst);
	buf_addf(&v, "%s\n", PACKAGE_VERSION);
	if (write_new_file(p.data, v.data, v.len, 0, &why) == -1) {
		cli_errorf("write %s: %s", p.data, why);
		goto out;
	}
	for (size_t k = 0; k < ARRAY_LEN(global_dbs); k++) {
		buf_reset(&p);
		buf_addf(&p, "%s/%s", datadir, global_dbs[k]);
		if (strcmp(global_dbs[k], "queue/index.db") != 0 &&
		    exists(p.data))
			backup_db(&b, global_dbs[k]);
	}
	backup_queue(&b);
	backup_accounts(&b, cfg);
	backup_others(&b);
	if (io_fsync_dir(b.dst) == -1)
		backup_error(&b, "fsync %s: %s", b.dst, log_strerror(errno));
	backup_step(&b, "backup finished", t0);
	if (b.errors > 0) {
		cli_errorf("errors were encountered during backup");
		goto out;
	}
	rc = 0;
out:
	free(datadir);
	config_free(cfg);
	buf_release(&p);
	buf_release(&v);
	return rc;
}

/* ---- verifydata (spec/store.md 17) ---- */

struct verify {
	const char *dir;
	bool fix;
	bool skip_size;
	size_t problems; /* not fixed */
};

static void PRINTF_LIKE(3, 4)
verify_problem(struct verify *v, bool fixed, const char *fmt, ...)
{
	va_list ap;

	if (!fixed)
		v->problems++;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("%s\n", fixed ? " (fixed)" : "");
}

/* Integrity check, then every row of every table read once. */
static void
verify_db(struct verify *v, const char *rel)
{
	struct buf p;
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL, *rows = NULL;
	int r;

	buf_init(&p, PATH_MAX_LEN);
	buf_addf(&p, "%s/%s", v->dir, rel);
	if (sqlite3_open_v2(p.data, &db, SQLITE_OPEN_READWRITE, NULL) !=
	    SQLITE_OK) {
		verify_problem(v, false, "%s: open: %s", rel,
		    db != NULL ? sqlite3_errmsg(db) : "out of memory");
		goto out;
	}
	sqlite3_busy_timeout(db, DB_BUSY_MS);
	if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) !=
	    SQLITE_OK) {
		verify_problem(v, false, "%s: %s", rel, sqlite3_errmsg(db));
		goto out;
	}
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		const char *s = (const char *)sqlite3_column_text(st, 0);

		if (s != NULL && strcmp(s, "ok") != 0)
			verify_problem(v, false, "%s: integrity check: %s", rel,
			    s);
	}
	if (r != SQLITE_DONE)
		verify_problem(v, false, "%s: integrity check: %s", rel,
		    sqlite3_errmsg(db));
	sqlite3_finalize(st);
	st = NULL;
	if (sqlite3_prepare_v2(db,
		"SELECT name FROM sqlite_master WHERE type = 'table'", -1, &st,
		NULL) != SQLITE_OK) {
		verify_problem(v, false, "%s: %s", rel, sqlite3_errmsg(db));
		goto out;
	}
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *t = (const char *)sqlite3_column_text(st, 0);
		char *q = sqlite3_mprintf("SELECT * FROM \"%w\"", t);

		if (q == NULL ||
		    sqlite3_prepare_v2(db, q, -1, &rows, NULL) != SQLITE_OK) {
			verify_problem(v, false, "%s: table %s: %s", rel, t,
			    sqlite3_errmsg(db));
			sqlite3_free(q);
			continue;
		}
		sqlite3_free(q);
		while ((r = sqlite3_step(rows)) == SQLITE_ROW)
			;
		if (r != SQLITE_DONE)
			verify_problem(v, false, "%s: table %s: %s", rel, t,
			    sqlite3_errmsg(db));
		sqlite3_finalize(rows);
		rows = NULL;
	}
out:
	sqlite3_finalize(st);
	sqlite3_close(db);
	buf_release(&p);
}

/* Move a stray file to moved/<rel>. */
static int
verify_move(struct verify *v, const char *rel)
{
	struct buf src, dst, dir;
	int rc = -1;

	buf_init(&src, PATH_MAX_LEN);
	buf_init(&dst, PATH_MAX_LEN);
	buf_init(&dir, PATH_MAX_LEN);
	buf_addf(&src, "%s/%s", v->dir, rel);
	buf_addf(&dst, "%s/moved/%s", v->dir, rel);
	io_dirname(dst.data, &dir);
	if (!buf_failed(&dst) && io_mkdir_p(dir.data, 0750) == 0 &&
	    !exists(dst.data) && rename(src.data, dst.data) == 0)
		rc = 0;
	buf_release(&src);
	buf_release(&dst);
	buf_release(&dir);
	return rc;
}

struct qrow {
	int64_t id;
	int64_t size;
	int64_t prefix;
};

/* spec/store.md 17: every queued message has its file with the right
 * size; files without a row are errors (moved away with -fix). */
static void
verify_queue(struct verify *v)
{
	struct buf p, rel;
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	struct qrow *rows = NULL;
	size_t nrows = 0, n = 0;
	char **names = NULL;

	buf_init(&p, PATH_MAX_LEN);
	buf_init(&rel, PATH_MAX_LEN);
	buf_addf(&p, "%s/queue/index.db", v->dir);
	if (sqlite3_open_v2(p.data, &db, SQLITE_OPEN_READONLY, NULL) !=
		SQLITE_OK ||
	    sqlite3_prepare_v2(db,
		"SELECT id, size, length(msg_prefix) FROM msg ORDER BY id", -1,
		&st, NULL) != SQLITE_OK) {
		verify_problem(v, false, "queue/index.db: %s",
		    db != NULL ? sqlite3_errmsg(db) : "open failed");
		goto out;
	}
	while (sqlite3_step(st) == SQLITE_ROW) {
		rows = xreallocarray(rows, nrows + 1, sizeof(*rows));
		rows[nrows].id = sqlite3_column_int64(st, 0);
		rows[nrows].size = sqlite3_column_int64(st, 1);
		rows[nrows].prefix = sqlite3_column_int64(st, 2);
		nrows++;
	}
	for (size_t i = 0; i < nrows; i++) {
		struct stat sb;

		buf_reset(&p);
		buf_addf(&p, "%s/queue/msg/%lld", v->dir, (long long)rows[i].id);
		if (stat(p.data, &sb) == -1)
			verify_problem(v, false, "queue message %lld: file "
						 "missing: %s",
			    (long long)rows[i].id, p.data);
		else if (!v->skip_size &&
		    (int64_t)sb.st_size + rows[i].prefix != rows[i].size)
			verify_problem(v, false, "queue message %lld: size %lld, "
						 "prefix and file have %lld",
			    (long long)rows[i].id, (long long)rows[i].size,
			    (long long)(sb.st_size + rows[i].prefix));
	}
	buf_reset(&p);
	buf_addf(&p, "%s/queue/msg", v->dir);
	if (list_dir(p.data, &names, &n) == -1)
		goto out;
	for (size_t i = 0; i < n; i++) {
		uint64_t id;
		bool known = false;

		if (span_u64(span_of_cstr(names[i]), INT64_MAX, &id) == 0)
			for (size_t k = 0; k < nrows && !known; k++)
				known = rows[k].id == (int64_t)id;
		if (known)
			continue;
		buf_reset(&rel);
		buf_addf(&rel, "queue/msg/%s", names[i]);
		verify_problem(v, v->fix && verify_move(v, rel.data) == 0,
		    "%s: file without queue record (may interfere with "
		    "messages enqueued in the future)",
		    rel.data);
	}
out:
	free_list(names, n);
	free(rows);
	sqlite3_finalize(st);
	sqlite3_close(db);
	buf_release(&p);
	buf_release(&rel);
}

/* Report lines of the account checker; size lines dropped with
 * -skip-size-check. Lines ending in "(fixed)" are not problems. */
static void
verify_accounts(struct verify *v)
{
	struct buf report;
	int rc;
	size_t shown = 0;
	const char *p, *e;

	buf_init(&report, BUF_NOMAX);
	rc = store_verify_datadir(v->dir, v->fix, &report);
	for (p = report.data; *p != '\0'; p = *e != '\0' ? e + 1 : e) {
		struct span line;

		e = strchr(p, '\n');
		if (e == NULL)
			e = p + strlen(p);
		line = span_of(p, (size_t)(e - p));
		if (line.len == 0)
			continue;
		if (v->skip_size && memmem(line.p, line.len, ": size ", 7) != NULL &&
		    memmem(line.p, line.len, ", file has ", 11) != NULL)
			continue;
		printf("%.*s\n", (int)line.len, line.p);
		shown++;
		if (line.len < 8 ||
		    memcmp(line.p + line.len - 8, " (fixed)", 8) != 0)
			v->problems++;
	}
	/* The checker failed without saying why on a line we kept. */
	if (rc == -1 && shown == 0 && !v->skip_size) {
		printf("accounts: check failed\n");
		v->problems++;
	}
	buf_release(&report);
}

/* Each account's junk filter database, when it has one. */
static void
verify_junkfilters(struct verify *v)
{
	struct buf p;
	char **names = NULL;
	size_t n = 0;

	buf_init(&p, PATH_MAX_LEN);
	buf_addf(&p, "%s/accounts", v->dir);
	if (list_dir(p.data, &names, &n) == 0) {
		for (size_t i = 0; i < n; i++) {
			buf_reset(&p);
			buf_addf(&p, "%s/accounts/%s/junkfilter.db", v->dir,
			    names[i]);
			if (!exists(p.data))
				continue;
			buf_reset(&p);
			buf_addf(&p, "accounts/%s/junkfilter.db", names[i]);
			verify_db(v, p.data);
		}
	}
	free_list(names, n);
	buf_release(&p);
}

/* spec/store.md 17: other entries; known ones pass, unknown ones warn. */
static void
verify_others(struct verify *v)
{
	static const char *const known[] = { "accounts", "queue", "acme",
		"tmp", "moved", "ctl", "moxversion", "lastknownversion",
		"receivedid.key" };
	char **names = NULL;
	size_t n = 0;

	if (list_dir(v->dir, &names, &n) == -1)
		return;
	for (size_t i = 0; i < n; i++) {
		const char *f = names[i];
		size_t len = strlen(f);

		if (name_in(f, known, ARRAY_LEN(known)) ||
		    name_in(f, global_dbs, ARRAY_LEN(global_dbs)) ||
		    (len > 4 && (strcmp(f + len - 4, "-wal") == 0 ||
				    strcmp(f + len - 4, "-shm") == 0)))
			continue;
		fprintf(stderr, "%s: warning: unrecognised entry %s\n", cli.prog,
		    f);
	}
	free_list(names, n);
}

static void
verify_version(struct verify *v)
{
	struct buf p, text, err;

	buf_init(&p, PATH_MAX_LEN);
	buf_init(&text, 1024);
	buf_init(&err, 1024);
	buf_addf(&p, "%s/moxversion", v->dir);
	if (exists(p.data) && io_read_file(p.data, &text, &err) == 0) {
		struct span s = span_trim(span_of_buf(&text));

		while (s.len > 0 && (s.p[s.len - 1] == '\n' ||
					s.p[s.len - 1] == '\r'))
			s.len--;
		if (!span_eq_cstr(s, PACKAGE_VERSION))
			fprintf(stderr,
			    "%s: warning: data made by version %.*s, this is "
			    "%s: opening the databases may have upgraded them; "
			    "make a fresh backup before upgrading\n",
			    cli.prog, (int)s.len, s.p, PACKAGE_VERSION);
	}
	buf_release(&p);
	buf_release(&text);
	buf_release(&err);
}

int
cmd_verifydata(int argc, char **argv)
{
	static const char args[] = "[-fix] [-skip-size-check] DATADIR";
	struct verify v;
	struct buf p;
	int i = 1;

	memset(&v, 0, sizeof(v));
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "-fix") == 0)
			v.fix = true;
		else if (strcmp(argv[i], "-skip-size-check") == 0)
			v.skip_size = true;
		else
			return cli_usage("verifydata", args);
	}
	if (argc - i != 1)
		return cli_usage("verifydata", args);
	v.dir = argv[i];
	if (!is_dir(v.dir)) {
		cli_errorf("%s: not a directory", v.dir);
		return 1;
	}
	buf_init(&p, PATH_MAX_LEN);
	verify_version(&v);
	for (size_t k = 0; k < ARRAY_LEN(global_dbs); k++) {
		buf_reset(&p);
		buf_addf(&p, "%s/%s", v.dir, global_dbs[k]);
		if (exists(p.data))
			verify_db(&v, global_dbs[k]);
	}
	buf_reset(&p);
	buf_addf(&p, "%s/queue/index.db", v.dir);
	if (exists(p.data))
		verify_queue(&v);
	verify_accounts(&v);
	verify_junkfilters(&v);
	verify_others(&v);
	buf_release(&p);
	fflush(stdout);
	if (v.problems > 0) {
		cli_errorf("errors were found");
		return 1;
	}
	printf("%s: OK\n", v.dir);
	return 0;
}

/* ---- setaccountpassword (spec/store.md 10) ---- */

int
cmd_setaccountpassword(int argc, char **argv)
{
	struct config *cfg = NULL;
	struct store *s = NULL;
	struct store_account *a = NULL;
	struct store_err err;
	char pw[STORE_PASSWORD_MAX + 3];
	char *datadir = NULL;
	size_t len;
	int rc = 1;

	if (argc != 2)
		return cli_usage("setaccountpassword", "ACCOUNT");
	memset(pw, 0, sizeof(pw));
	cfg = load_config();
	if (cfg == NULL)
		goto out;
	if (config_account_find(cfg, argv[1]) == NULL) {
		cli_errorf("account %s not configured", argv[1]);
		goto out;
	}
	/* DESIGN.md: no prompt unless a terminal is attached. */
	if (isatty(STDIN_FILENO)) {
		fprintf(stderr, "Type new password for %s (will echo): ",
		    argv[1]);
		fflush(stderr);
	}
	/* read(2) into our buffer, which is wiped: stdio would keep a copy
	 * of the password in its own buffer. One line, at most
	 * STORE_PASSWORD_MAX octets. */
	len = 0;
	for (;;) {
		ssize_t r;

		if (len == sizeof(pw) - 1) {
			cli_errorf("password longer than %d bytes (bcrypt "
				   "checks only %d)",
			    STORE_PASSWORD_MAX, STORE_PASSWORD_MAX);
			goto out;
		}
		r = read(STDIN_FILENO, pw + len, 1);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			cli_errorf("reading password from stdin: %s",
			    log_strerror(errno));
			goto out;
		}
		if (r == 0 || pw[len] == '\n')
			break;
		len++;
	}
	pw[len] = '\0';
	if (len == 0) {
		cli_errorf("reading password from stdin: no input");
		goto out;
	}
	if (len > 0 && pw[len - 1] == '\r')
		pw[--len] = '\0';
	if (len < STORE_PASSWORD_MIN) {
		cli_errorf("password must be at least %d characters",
		    STORE_PASSWORD_MIN);
		goto out;
	}
	datadir = config_path(cfg, cfg->st->data_dir);
	if (open_account(datadir, argv[1], true, 0, &s, &a) == -1)
		goto out;
	if (store_password_set(a, pw, &err) == -1) {
		cli_errorf("setting password: %s", err.text);
		goto out;
	}
	rc = 0;
out:
	explicit_bzero(pw, sizeof(pw));
	store_account_put(a);
	store_free(s);
	free(datadir);
	config_free(cfg);
	return rc;
}

/* ---- gentestdata (spec/store.md 19) ---- */

#define GEN_T0 INT64_C(1704164645) /* 2024-01-02T03:04:05Z */

static const char gen_moxconf[] =
    "# mox.conf written by mox gentestdata: test data for upgrade tests.\n"
    "DataDir: ../data\n"
    "LogLevel: info\n"
    "User: %u\n"
    "Hostname: mox.example\n"
    "Listeners:\n"
    "\tlocal:\n"
    "\t\tIPs:\n"
    "\t\t\t- 127.0.0.1\n"
    "Postmaster:\n"
    "\tAccount: test0\n"
    "\tMailbox: Inbox\n";

static const char gen_domainsconf[] =
    "# domains.conf written by mox gentestdata.\n"
    "Domains:\n"
    "\tmox.example: nil\n"
    "\tm\xc3\xb8x.example: nil\n"
    "Accounts:\n"
    "\ttest0:\n"
    "\t\tDomain: mox.example\n"
    "\t\tDestinations:\n"
    "\t\t\ttest0@mox.example: nil\n"
    "\ttest1:\n"
    "\t\tDomain: mox.example\n"
    "\t\tDestinations:\n"
    "\t\t\ttest1@mox.example: nil\n"
    "\ttest2:\n"
    "\t\tDomain: m\xc3\xb8x.example\n"
    "\t\tDestinations:\n"
    "\t\t\ttest2@m\xc3\xb8x.example: nil\n"
    "\t\tJunkFilter:\n"
    "\t\t\tThreshold: 0.950000\n"
    "\t\t\tParams:\n"
    "\t\t\t\tOnegrams: true\n"
    "\t\t\t\tMaxPower: 0.010000\n"
    "\t\t\t\tTopWords: 10\n"
    "\t\t\t\tIgnoreWords: 0.100000\n"
    "\t\t\t\tRareWords: 2\n";

static const char gen_msg[] =
    "Received: from remote.example (remote.example [198.51.100.1])\r\n"
    "\tby mox.example with ESMTPS; 2 Jan 2024 03:04:05 +0000\r\n"
    "From: <remote@remote.example>\r\n"
    "To: <%s>\r\n"
    "Subject: test message %d\r\n"
    "Date: Tue, 2 Jan 2024 03:04:0%d +0000\r\n"
    "Message-ID: <test%d@remote.example>\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "\r\n"
    "test email %d\r\n"
    "From the body, quoted in mbox.\r\n";

struct gen_msg {
	const char *account;
	const char *rcpt;
	const char *mailbox;
	uint32_t flags;
	const char *keywords;
};

static const struct gen_msg gen_msgs[] = {
	{ "test1", "test1@mox.example", "Inbox", 0, NULL },
	{ "test1", "test1@mox.example", "Inbox", STORE_F_SEEN | STORE_F_FLAGGED,
	    "custom" },
	{ "test1", "test1@mox.example", "Lists/mox",
	    STORE_F_SEEN | STORE_F_ANSWERED | STORE_F_FORWARDED, "list other" },
	{ "test1", "test1@mox.example", "Trash", STORE_F_SEEN | STORE_F_DELETED,
	    NULL },
	{ "test2", "test2@m\xc3\xb8x.example", "Inbox", 0, NULL },
	{ "test2", "test2@m\xc3\xb8x.example", "Sent",
	    STORE_F_SEEN | STORE_F_JUNK, "$label1" },
};

static int
gen_deliver(struct store *s, const struct gen_msg *g, int nr)
{
	static const char *const dkim[] = { "remote.example" };
	struct store_account *a = NULL;
	struct store_msg_fields f;
	struct store_add in;
	struct store_added out;
	struct store_err err;
	struct buf msg, id;
	const char *mb = g->mailbox;
	const char *at = strchr(g->rcpt, '@');
	int rc = -1;

	buf_init(&msg, 64 * 1024);
	buf_init(&id, 256);
	buf_addf(&msg, gen_msg, g->rcpt, nr, nr % 10, nr, nr);
	buf_addf(&id, "test%d@remote.example", nr);
	memset(&f, 0, sizeof(f));
	f.remote_ip = "198.51.100.1";
	f.ehlo_domain = "remote.example";
	f.mailfrom = "remote@remote.example";
	f.mailfrom_localpart = "remote";
	f.mailfrom_domain = "remote.example";
	f.rcptto_localpart = xstrndup(g->rcpt, (size_t)(at - g->rcpt));
	f.rcptto_domain = at + 1;
	f.msgfrom_localpart = "remote";
	f.msgfrom_domain = "remote.example";
	f.msgfrom_orgdomain = "remote.example";
	f.ehlo_validated = f.mailfrom_validated = f.msgfrom_validated = true;
	f.dkim_domains = dkim;
	f.n_dkim_domains = 1;
	f.message_id = id.data;
	f.subject_base = "test message";
	f.tls_version = 0x0304;
	memset(&in, 0, sizeof(in));
	in.data = msg.data;
	in.len = msg.len;
	in.flags = g->flags;
	in.keywords = g->keywords;
	in.received_ns = (GEN_T0 + nr) * NS_PER_SEC;
	in.create_mailbox = true;
	in.fields = &f;
	if (store_account_get(s, g->account, true, &a, &err) == -1 ||
	    store_deliver(a, &in, &mb, 1, &out, &err) == -1) {
		cli_errorf("deliver to %s/%s: %s", g->account, g->mailbox,
		    err.text);
		goto out;
	}
	rc = 0;
out:
	free((char *)f.rcptto_localpart);
	store_account_put(a);
	buf_release(&msg);
	buf_release(&id);
	return rc;
}

static int
gen_write(const char *dir, const char *name, const char *text)
{
	struct buf p;
	const char *why;
	int rc;

	buf_init(&p, PATH_MAX_LEN);
	buf_addf(&p, "%s/%s", dir, name);
	rc = write_new_file(p.data, text, strlen(text), 0, &why);
	if (rc == -1)
		cli_errorf("write %s: %s", p.data, why);
	buf_release(&p);
	return rc;
}

/* One queued message (spec/store.md 19). */
static int
gen_queue(const char *datadir)
{
	static const char text[] =
	    "From: <test1@mox.example>\r\n"
	    "To: <remote@remote.example>\r\n"
	    "Subject: queued\r\n"
	    "Date: Tue, 2 Jan 2024 03:04:05 +0000\r\n"
	    "Message-ID: <queued@mox.example>\r\n"
	    "\r\n"
	    "queued message\r\n";
	static const char prefix[] = "DKIM-Signature: v=1; test\r\n";
	struct queue *q = NULL;
	struct queue_msg m;
	struct buf p, err;
	const char *why;
	int rc = -1;

	buf_init(&p, PATH_MAX_LEN);
	buf_init(&err, 4096);
	memset(&m, 0, sizeof(m));
	q = queue_open(datadir, &err);
	if (q == NULL) {
		cli_errorf("open queue: %s", err.data);
		goto out;
	}
	buf_addf(&p, "%s/tmp/gentestdata-queued.eml", datadir);
	if (write_new_file(p.data, text, sizeof(text) - 1, 0, &why) == -1) {
		cli_errorf("write %s: %s", p.data, why);
		goto out;
	}
	m.sender_account = "test1";
	m.sender_localpart = "test1";
	m.sender_domain = "mox.example";
	m.recipient_localpart = "remote";
	m.recipient_domain = "remote.example";
	m.message_id = "<queued@mox.example>";
	m.subject = "queued";
	m.msg_prefix = (char *)prefix;
	m.msg_prefix_len = sizeof(prefix) - 1;
	m.size = (int64_t)(sizeof(prefix) - 1 + sizeof(text) - 1);
	if (queue_add(q, p.data, &m, 1, &err) == -1) {
		cli_errorf("queue: %s", err.data);
		(void)unlink(p.data);
		goto out;
	}
	if (unlink(p.data) == -1) {
		cli_errorf("unlink %s: %s", p.data, log_strerror(errno));
		goto out;
	}
	rc = 0;
out:
	queue_close(q);
	buf_release(&p);
	buf_release(&err);
	return rc;
}

int
cmd_gentestdata(int argc, char **argv)
{
	static const char *const accounts[] = { "test0", "test1", "test2" };
	struct store *s = NULL;
	struct store_err err;
	struct buf cdir, ddir, text;
	int rc = 1;

	if (argc != 2)
		return cli_usage("gentestdata", "DIR");
	buf_init(&cdir, PATH_MAX_LEN);
	buf_init(&ddir, PATH_MAX_LEN);
	buf_init(&text, 64 * 1024);
	if (mkdir(argv[1], 0750) == -1) {
		cli_errorf("mkdir %s: %s", argv[1], log_strerror(errno));
		goto out;
	}
	buf_addf(&cdir, "%s/config", argv[1]);
	buf_addf(&ddir, "%s/data", argv[1]);
	if (io_mkdir_p(cdir.data, 0750) == -1) {
		cli_errorf("mkdir %s: %s", cdir.data, log_strerror(errno));
		goto out;
	}
	buf_addf(&text, gen_moxconf, (unsigned)getuid());
	if (gen_write(cdir.data, "mox.conf", text.data) == -1 ||
	    gen_write(cdir.data, "domains.conf", gen_domainsconf) == -1)
		goto out;
	s = store_new(ddir.data, &err);
	if (s == NULL) {
		cli_errorf("open data directory %s: %s", ddir.data, err.text);
		goto out;
	}
	for (size_t i = 0; i < ARRAY_LEN(accounts); i++) {
		struct store_account *a = NULL;
		int r;

		if (store_account_get(s, accounts[i], true, &a, &err) == -1) {
			cli_errorf("create account %s: %s", accounts[i],
			    err.text);
			goto out;
		}
		r = store_password_set(a, "testtest", &err);
		store_account_put(a);
		if (r == -1) {
			cli_errorf("password of %s: %s", accounts[i], err.text);
			goto out;
		}
	}
	for (size_t i = 0; i < ARRAY_LEN(gen_msgs); i++)
		if (gen_deliver(s, &gen_msgs[i], (int)i + 1) == -1)
			goto out;
	if (gen_queue(ddir.data) == -1)
		goto out;
	rc = 0;
out:
	store_free(s);
	buf_release(&cdir);
	buf_release(&ddir);
	buf_release(&text);
	return rc;
}
