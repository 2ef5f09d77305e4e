/*
 * mtasts.c: MTA-STS (RFC 8461 3.1 record, 3.2 policy, 3.3 fetch, 4.1 MX
 * matching; spec/queue.md 5.2 and 5.9 for the cache). Record and policy
 * text come from DNS and from an HTTPS server chosen by the recipient
 * domain: untrusted, bounded before parsing. The parsers are pure; the
 * fetch, lookup and refresher block (libcurl, DNS, SQLite) and run on
 * delivery threads; each call uses its own SQLite connection.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <curl/curl.h>
#include <sqlite3.h>

#include "dns/dns.h"
#include "lib/buf.h"
#include "lib/io.h"
#include "lib/span.h"
#include "lib/xmalloc.h"
#include "queue/mtasts.h"
#include "lib/banned.h"

#define MTASTS_BUSY_MS 10000
#define MTASTS_URL_MAX 512
#define MTASTS_EXT_MAX 64 /* extension fields kept per record or policy */

static void
strv_add(char ***v, size_t *n, struct span s)
{
	*v = xreallocarray(*v, size_add(*n, 1), sizeof(**v));
	(*v)[(*n)++] = span_dup(s);
}

static void
strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static bool
is_wsp(int c)
{
	return c == ' ' || c == '\t';
}

static void
skip_wsp(struct scan *s)
{
	while (!scan_eof(s) && is_wsp(scan_peek(s)))
		s->pos++;
}

static bool
is_ext_name_char(int c)
{
	return char_is_alnum(c) || c == '_' || c == '-' || c == '.';
}

/* RFC 8461 3.1: sts-ext-value = 1*(%x21-3A / %x3C / %x3E-7E) */
static bool
is_ext_value_char(int c)
{
	return (c >= 0x21 && c <= 0x3a) || c == 0x3c || (c >= 0x3e && c <= 0x7e);
}

/* (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / "."), RFC 8461 3.1/3.2 */
static int
scan_ext_name(struct scan *s, struct span *out)
{
	size_t start = s->pos;

	if (scan_eof(s) || !char_is_alnum(scan_peek(s)))
		return -1;
	while (!scan_eof(s) && is_ext_name_char(scan_peek(s)) &&
	    s->pos - start < MTASTS_EXT_NAME_MAX)
		s->pos++;
	*out = span_of(s->p + start, s->pos - start);
	return 0;
}

void
mtasts_record_release(struct mtasts_record *r)
{
	if (r == NULL)
		return;
	strv_free(r->ext, r->next);
	memset(r, 0, sizeof(*r));
}

/* RFC 8461 3.1: sts-text-record = sts-version 1*(sts-field-delim
 * sts-field) [sts-field-delim]; sts-field-delim = *WSP ";" *WSP. */
int
mtasts_record_parse(struct span txt, struct mtasts_record *out,
    const char **why)
{
	struct scan s = scan_of(txt);
	bool have_id = false;

	memset(out, 0, sizeof(*out));
	if (scan_lit(&s, "v=STSv1") == -1 ||
	    (!scan_eof(&s) && !is_wsp(scan_peek(&s)) && scan_peek(&s) != ';')) {
		*why = "not an sts record";
		return -1;
	}
	if (txt.len > MTASTS_RECORD_MAX) {
		*why = "record too long";
		goto bad;
	}
	for (;;) {
		struct span name, value;
		size_t vstart;

		skip_wsp(&s);
		if (scan_eof(&s))
			break;
		if (scan_char(&s, ';') == -1) {
			*why = "expected ; between fields";
			goto bad;
		}
		skip_wsp(&s);
		if (scan_eof(&s))
			break; /* optional final delimiter */
		if (scan_ext_name(&s, &name) == -1 || scan_char(&s, '=') == -1) {
			*why = "expected name=value field";
			goto bad;
		}
		vstart = s.pos;
		while (!scan_eof(&s) && is_ext_value_char(scan_peek(&s)))
			s.pos++;
		value = span_of(s.p + vstart, s.pos - vstart);
		if (span_eq_cstr(name, "id")) {
			if (have_id) {
				*why = "duplicate id";
				goto bad;
			}
			if (value.len == 0 || value.len > MTASTS_ID_MAX) {
				*why = "id must be 1 to 32 characters";
				goto bad;
			}
			for (size_t i = 0; i < value.len; i++) {
				if (!char_is_alnum((unsigned char)value.p[i])) {
					*why = "id must be letters and digits";
					goto bad;
				}
			}
			memcpy(out->id, value.p, value.len);
			out->id[value.len] = '\0';
			have_id = true;
			continue;
		}
		if (value.len == 0) {
			*why = "empty extension value";
			goto bad;
		}
		if (out->next >= MTASTS_EXT_MAX) {
			*why = "too many fields";
			goto bad;
		}
		strv_add(&out->ext, &out->next,
		    span_of(name.p, (size_t)(value.p + value.len - name.p)));
	}
	if (!have_id) {
		*why = "missing id";
		goto bad;
	}
	return 0;
bad:
	mtasts_record_release(out);
	return -1;
}

void
mtasts_policy_release(struct mtasts_policy *p)
{
	if (p == NULL)
		return;
	strv_free(p->mx, p->nmx);
	strv_free(p->ext, p->next);
	memset(p, 0, sizeof(*p));
}

const char *
mtasts_mode_name(enum mtasts_mode m)
{
	switch (m) {
	case MTASTS_MODE_NONE:
		return "none";
	case MTASTS_MODE_TESTING:
		return "testing";
	case MTASTS_MODE_ENFORCE:
		return "enforce";
	}
	return "?";
}

/* RFC 8461 3.2: sts-policy-mx-value = ["*."] Domain; Domain as in
 * RFC 5321 4.1.2 (letters, digits, hyphens; no empty label). */
static bool
mx_pattern_valid(struct span v)
{
	size_t i = 0, label = 0;

	if (v.len == 0 || v.len > MTASTS_MX_PATTERN_MAX)
		return false;
	if (v.len >= 2 && v.p[0] == '*' && v.p[1] == '.')
		i = 2;
	if (i == v.len)
		return false;
	for (; i < v.len; i++) {
		unsigned char c = (unsigned char)v.p[i];

		if (c == '.') {
			if (label == 0 || v.p[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!char_is_alnum(c) && c != '-')
			return false;
		if (c == '-' && label == 0)
			return false;
		if (++label > DNS_LABEL_MAX)
			return false;
	}
	return label > 0 && v.p[v.len - 1] != '-';
}

/* RFC 8461 3.2: sts-policy-ext-value = sts-policy-vchar [*(%x20 /
 * sts-policy-vchar) sts-policy-vchar], vchar %x21-7E or UTF-8. */
static bool
ext_value_valid(struct span v)
{
	if (v.len == 0 || !utf8_valid(v.p, v.len))
		return false;
	for (size_t i = 0; i < v.len; i++) {
		unsigned char c = (unsigned char)v.p[i];

		if (c < 0x20 || c == 0x7f)
			return false;
	}
	return v.p[v.len - 1] != ' ';
}

static int
policy_field(struct mtasts_policy *p, struct span key, struct span value,
    unsigned *seen, const char **why)
{
	enum { SEEN_VERSION = 1, SEEN_MODE = 2, SEEN_MAXAGE = 4 };

	if (span_eq_cstr(key, "mx")) {
		if (!mx_pattern_valid(value)) {
			*why = "invalid mx pattern";
			return -1;
		}
		strv_add(&p->mx, &p->nmx, value);
		for (char *c = p->mx[p->nmx - 1]; *c != '\0'; c++)
			if (*c >= 'A' && *c <= 'Z')
				*c = (char)(*c - 'A' + 'a');
		return 0;
	}
	if (span_eq_cstr(key, "version")) {
		if (*seen & SEEN_VERSION)
			return 0; /* RFC 8461 3.2: the first one wins */
		if (!span_eq_cstr(value, "STSv1")) {
			*why = "version must be STSv1";
			return -1;
		}
		*seen |= SEEN_VERSION;
		return 0;
	}
	if (span_eq_cstr(key, "mode")) {
		if (*seen & SEEN_MODE)
			return 0;
		if (span_eq_cstr(value, "enforce"))
			p->mode = MTASTS_MODE_ENFORCE;
		else if (span_eq_cstr(value, "testing"))
			p->mode = MTASTS_MODE_TESTING;
		else if (span_eq_cstr(value, "none"))
			p->mode = MTASTS_MODE_NONE;
		else {
			*why = "mode must be enforce, testing or none";
			return -1;
		}
		*seen |= SEEN_MODE;
		return 0;
	}
	if (span_eq_cstr(key, "max_age")) {
		if (*seen & SEEN_MAXAGE)
			return 0;
		if (value.len == 0 || value.len > MTASTS_MAX_AGE_DIGITS ||
		    span_u64(value, UINT64_MAX, &p->max_age) == -1) {
			*why = "max_age must be 1 to 10 digits";
			return -1;
		}
		*seen |= SEEN_MAXAGE;
		return 0;
	}
	if (!ext_value_valid(value)) {
		*why = "invalid extension value";
		return -1;
	}
	if (p->next >= MTASTS_EXT_MAX) {
		*why = "too many extension fields";
		return -1;
	}
	strv_add(&p->ext, &p->next,
	    span_of(key.p, (size_t)(value.p + value.len - key.p)));
	return 0;
}

/* RFC 8461 3.2: sts-policy-record = sts-policy-field *WSP
 * *(sts-policy-term sts-policy-field *WSP) [sts-policy-term]. */
int
mtasts_policy_parse(struct span text, struct mtasts_policy *out,
    const char **why)
{
	struct scan s = scan_of(text);
	unsigned seen = 0;

	memset(out, 0, sizeof(*out));
	if (text.len > MTASTS_POLICY_MAX) {
		*why = "policy larger than 64 KiB";
		goto bad;
	}
	if (text.len == 0) {
		*why = "empty policy";
		goto bad;
	}
	while (!scan_eof(&s)) {
		struct span line, key, value;
		struct scan ls;
		size_t start = s.pos;

		while (!scan_eof(&s) && scan_peek(&s) != '\n')
			s.pos++;
		line = span_of(s.p + start, s.pos - start);
		if (!scan_eof(&s))
			s.pos++; /* the LF */
		if (line.len > 0 && line.p[line.len - 1] == '\r')
			line.len--; /* RFC 8461 3.2: sts-policy-term = LF / CRLF */
		ls = scan_of(line);
		if (scan_ext_name(&ls, &key) == -1 || scan_char(&ls, ':') == -1) {
			*why = "expected key: value line";
			goto bad;
		}
		skip_wsp(&ls);
		value = scan_rest(&ls);
		while (value.len > 0 && is_wsp(value.p[value.len - 1]))
			value.len--;
		if (policy_field(out, key, value, &seen, why) == -1)
			goto bad;
	}
	if (!(seen & 1)) {
		*why = "missing version";
		goto bad;
	}
	if (!(seen & 2)) {
		*why = "missing mode";
		goto bad;
	}
	if (!(seen & 4)) {
		*why = "missing max_age";
		goto bad;
	}
	if (out->nmx == 0 && out->mode != MTASTS_MODE_NONE) {
		*why = "missing mx";
		goto bad;
	}
	return 0;
bad:
	mtasts_policy_release(out);
	return -1;
}

static bool
ascii_eq_ci(const char *a, size_t alen, const char *b, size_t blen)
{
	if (alen != blen)
		return false;
	for (size_t i = 0; i < alen; i++) {
		unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];

		if (x >= 'A' && x <= 'Z')
			x = (unsigned char)(x - 'A' + 'a');
		if (y >= 'A' && y <= 'Z')
			y = (unsigned char)(y - 'A' + 'a');
		if (x != y)
			return false;
	}
	return true;
}

/* RFC 8461 4.1: a wildcard matches exactly one leftmost label. */
bool
mtasts_policy_match_mx(const struct mtasts_policy *p, const char *host)
{
	size_t hlen = strlen(host);

	if (hlen > 0 && host[hlen - 1] == '.')
		hlen--;
	for (size_t i = 0; i < p->nmx; i++) {
		const char *pat = p->mx[i];
		size_t plen = strlen(pat);
		const char *dot;

		if (plen >= 2 && pat[0] == '*' && pat[1] == '.') {
			dot = memchr(host, '.', hlen);
			if (dot == NULL || dot == host)
				continue;
			if (ascii_eq_ci(dot + 1, hlen - (size_t)(dot + 1 - host),
			    pat + 2, plen - 2))
				return true;
			continue;
		}
		if (ascii_eq_ci(host, hlen, pat, plen))
			return true;
	}
	return false;
}

/* HTTPS fetch. */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_FAILED_INIT;

static void
curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static size_t
fetch_write(char *p, size_t size, size_t n, void *arg)
{
	struct buf *b = arg;
	size_t len = size_mul(size, n);

	if (len > MTASTS_POLICY_MAX || buf_add(b, p, len) == -1)
		return 0; /* makes curl fail with CURLE_WRITE_ERROR */
	return len;
}

/* RFC 8461 3.3: the media type is "text/plain"; parameters allowed. */
static bool
content_type_ok(const char *ct)
{
	struct span v;

	if (ct == NULL)
		return false;
	v = span_trim(span_of_cstr(ct));
	if (!span_has_prefix_ci(v, "text/plain"))
		return false;
	v.p += 10;
	v.len -= 10;
	v = span_trim(v);
	return v.len == 0 || v.p[0] == ';';
}

enum mtasts_fetch_result
mtasts_fetch(const char *domain, const struct mtasts_fetch_params *fp,
    struct buf *body_out, struct mtasts_policy *pol, const char **why)
{
	enum mtasts_fetch_result res = MTASTS_FETCH_ERROR;
	struct curl_slist *connect_to = NULL;
	char url[MTASTS_URL_MAX];
	struct buf body;
	CURL *c = NULL;
	CURLcode rc;
	long status = 0;
	char *ct = NULL;
	int n;

	memset(pol, 0, sizeof(*pol));
	buf_init(&body, MTASTS_POLICY_MAX);
	if (!dns_name_valid(domain)) {
		*why = "invalid domain";
		goto out;
	}
	n = snprintf(url, sizeof(url),
	    "https://mta-sts.%s/.well-known/mta-sts.txt", domain);
	if (n < 0 || (size_t)n >= sizeof(url)) {
		*why = "domain too long for url";
		goto out;
	}
	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != CURLE_OK || (c = curl_easy_init()) == NULL) {
		*why = "cannot initialise libcurl";
		goto out;
	}
	if (fp != NULL && fp->connect_to != NULL) {
		connect_to = curl_slist_append(NULL, fp->connect_to);
		if (connect_to == NULL) {
			*why = "cannot set connect-to";
			goto out;
		}
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L); /* RFC 8461 3.3 */
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS,
	    (long)(fp != NULL && fp->timeout_ms > 0 ? fp->timeout_ms :
		MTASTS_FETCH_TIMEOUT_MS));
	curl_easy_setopt(c, CURLOPT_MAXFILESIZE, (long)MTASTS_POLICY_MAX);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "mox");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, fetch_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
	if (fp != NULL && fp->ca_file != NULL)
		curl_easy_setopt(c, CURLOPT_CAINFO, fp->ca_file);
	if (connect_to != NULL)
		curl_easy_setopt(c, CURLOPT_CONNECT_TO, connect_to);
	rc = curl_easy_perform(c);
	switch (rc) {
	case CURLE_OK:
		break;
	case CURLE_COULDNT_RESOLVE_HOST:
		res = MTASTS_FETCH_NOPOLICY;
		*why = "policy host does not resolve";
		goto out;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
		res = MTASTS_FETCH_WEBPKI;
		*why = "policy server certificate not valid";
		goto out;
	case CURLE_OPERATION_TIMEDOUT:
		*why = "policy fetch timed out";
		goto out;
	case CURLE_WRITE_ERROR:
	case CURLE_FILESIZE_EXCEEDED:
		*why = "policy larger than 64 KiB";
		goto out;
	default:
		*why = "policy fetch failed";
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (status == 404) {
		res = MTASTS_FETCH_NOPOLICY;
		*why = "no policy (404)";
		goto out;
	}
	if (status != 200) {
		*why = "policy fetch: status not 200";
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
	if (!content_type_ok(ct)) {
		*why = "policy content type not text/plain";
		goto out;
	}
	if (buf_failed(&body)) {
		*why = "policy larger than 64 KiB";
		goto out;
	}
	if (mtasts_policy_parse(span_of_buf(&body), pol, why) == -1) {
		res = MTASTS_FETCH_INVALID;
		goto out;
	}
	buf_add(body_out, body.data, body.len);
	res = MTASTS_FETCH_OK;
out:
	curl_slist_free_all(connect_to);
	if (c != NULL)
		curl_easy_cleanup(c);
	buf_release(&body);
	return res;
}

/* The policy cache (spec 5.9). */

struct mtasts_cache {
	char *path; /* <datadir>/mtasts.db */
};

static const char cache_schema[] =
    "CREATE TABLE IF NOT EXISTS policy ("
    " domain TEXT PRIMARY KEY,"
    " inserted INTEGER NOT NULL,"
    " valid_end INTEGER NOT NULL,"
    " last_update INTEGER NOT NULL,"
    " last_use INTEGER NOT NULL,"
    " backoff INTEGER NOT NULL,"
    " record_id TEXT NOT NULL,"
    " policy_text TEXT NOT NULL)";

static sqlite3 *
cache_db(const struct mtasts_cache *c, struct buf *err)
{
	sqlite3 *db = NULL;
	char *msg = NULL;

	if (sqlite3_open_v2(c->path, &db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		buf_addf(err, "%s: %s", c->path,
		    db != NULL ? sqlite3_errmsg(db) : "cannot open");
		sqlite3_close(db);
		return NULL;
	}
	sqlite3_busy_timeout(db, MTASTS_BUSY_MS);
	if (sqlite3_exec(db, "PRAGMA journal_mode=WAL", NULL, NULL, &msg) !=
	    SQLITE_OK ||
	    sqlite3_exec(db, cache_schema, NULL, NULL, &msg) != SQLITE_OK) {
		buf_addf(err, "%s: %s", c->path, msg != NULL ? msg : "schema");
		sqlite3_free(msg);
		sqlite3_close(db);
		return NULL;
	}
	return db;
}

struct mtasts_cache *
mtasts_cache_open(const char *datadir, struct buf *err)
{
	struct mtasts_cache *c = xcalloc(1, sizeof(*c));
	struct buf p;
	sqlite3 *db;

	buf_init(&p, 4096);
	io_path_join(&p, datadir, "mtasts.db");
	if (buf_failed(&p)) {
		buf_adds(err, "mtasts: data directory path too long");
		buf_release(&p);
		free(c);
		return NULL;
	}
	c->path = buf_take(&p);
	buf_release(&p);
	db = cache_db(c, err);
	if (db == NULL) {
		mtasts_cache_free(c);
		return NULL;
	}
	sqlite3_close(db);
	return c;
}

void
mtasts_cache_free(struct mtasts_cache *c)
{
	if (c == NULL)
		return;
	free(c->path);
	free(c);
}

struct cache_entry {
	bool found;
	int64_t valid_end, last_update;
	bool backoff;
	char *record_id;
	char *policy_text;
};

static void
entry_release(struct cache_entry *e)
{
	free(e->record_id);
	free(e->policy_text);
	memset(e, 0, sizeof(*e));
}

static int
entry_get(sqlite3 *db, const char *domain, struct cache_entry *e,
    struct buf *err)
{
	sqlite3_stmt *st = NULL;
	int rc;

	memset(e, 0, sizeof(*e));
	if (sqlite3_prepare_v2(db, "SELECT valid_end, last_update, backoff,"
	    " record_id, policy_text FROM policy WHERE domain = ?", -1, &st,
	    NULL) != SQLITE_OK)
		goto fail;
	sqlite3_bind_text(st, 1, domain, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		e->found = true;
		e->valid_end = sqlite3_column_int64(st, 0);
		e->last_update = sqlite3_column_int64(st, 1);
		e->backoff = sqlite3_column_int(st, 2) != 0;
		e->record_id = xstrdup((const char *)sqlite3_column_text(st, 3));
		e->policy_text =
		    xstrdup((const char *)sqlite3_column_text(st, 4));
	} else if (rc != SQLITE_DONE)
		goto fail;
	sqlite3_finalize(st);
	return 0;
fail:
	buf_addf(err, "mtasts cache: %s", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	return -1;
}

/* Run sql with ?1 = s1 (unless NULL) and ?2 = i1 (unused when absent). */
static int
exec_bound(sqlite3 *db, const char *sql, const char *s1, int64_t i1,
    struct buf *err)
{
	sqlite3_stmt *st = NULL;
	int rc = -1;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		goto out;
	if (s1 != NULL)
		sqlite3_bind_text(st, 1, s1, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, i1);
	if (sqlite3_step(st) != SQLITE_DONE)
		goto out;
	rc = 0;
out:
	if (rc == -1)
		buf_addf(err, "mtasts cache: %s", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	return rc;
}

/* Insert or replace the entry of domain. */
static int
entry_store(sqlite3 *db, const char *domain, int64_t now, int64_t valid_end,
    bool backoff, const char *record_id, const char *text, struct buf *err)
{
	sqlite3_stmt *st = NULL;
	int rc = -1;

	if (sqlite3_prepare_v2(db, "INSERT INTO policy (domain, inserted,"
	    " valid_end, last_update, last_use, backoff, record_id,"
	    " policy_text) VALUES (?1, ?2, ?3, ?2, ?2, ?4, ?5, ?6)"
	    " ON CONFLICT(domain) DO UPDATE SET valid_end = ?3,"
	    " last_update = ?2, last_use = ?2, backoff = ?4, record_id = ?5,"
	    " policy_text = ?6", -1, &st, NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_text(st, 1, domain, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, now);
	sqlite3_bind_int64(st, 3, valid_end);
	sqlite3_bind_int(st, 4, backoff ? 1 : 0);
	sqlite3_bind_text(st, 5, record_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, text, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		goto out;
	rc = 0;
out:
	if (rc == -1)
		buf_addf(err, "mtasts cache: %s", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	return rc;
}

enum record_status {
	REC_OK,
	REC_NONE,    /* no TXT, no STSv1 record, or several */
	REC_INVALID, /* one STSv1 record with a syntax error */
	REC_TEMP,    /* DNS temporary error */
};

/* RFC 8461 3.1: exactly one TXT record starting with v=STSv1. */
static enum record_status
lookup_record(struct dns_resolver *r, const char *domain, char *id_out)
{
	char name[DNS_NAME_MAX + 16];
	struct dns_answer ans;
	enum record_status st = REC_NONE;
	size_t nsts = 0;
	int n = snprintf(name, sizeof(name), "_mta-sts.%s", domain);

	if (n < 0 || (size_t)n >= sizeof(name))
		return REC_NONE;
	switch (dns_lookup(r, name, DNS_TXT, &ans)) {
	case DNS_OK:
		break;
	case DNS_NOTFOUND:
	case DNS_PERMERROR:
		dns_answer_release(&ans);
		return REC_NONE;
	case DNS_TEMPERROR:
		dns_answer_release(&ans);
		return REC_TEMP;
	}
	for (size_t i = 0; i < ans.n; i++) {
		struct mtasts_record rec;
		const char *why = NULL;
		int rc = mtasts_record_parse(
		    span_of(ans.rr[i].text, ans.rr[i].textlen), &rec, &why);

		if (rc == -1 && strcmp(why, "not an sts record") == 0)
			continue;
		nsts++;
		if (rc == 0) {
			memcpy(id_out, rec.id, sizeof(rec.id));
			st = REC_OK;
		} else
			st = REC_INVALID;
		mtasts_record_release(&rec);
	}
	dns_answer_release(&ans);
	if (nsts > 1)
		return REC_NONE; /* RFC 8461 3.1: several records: no MTA-STS */
	return st;
}

static const char *
fetch_report_result(enum mtasts_fetch_result fr)
{
	switch (fr) {
	case MTASTS_FETCH_OK:
		return NULL;
	case MTASTS_FETCH_NOPOLICY:
	case MTASTS_FETCH_ERROR:
		return "sts-policy-fetch-error";
	case MTASTS_FETCH_WEBPKI:
		return "sts-webpki-invalid";
	case MTASTS_FETCH_INVALID:
		return "sts-policy-invalid";
	}
	return "sts-policy-fetch-error";
}

static int
use_cached(struct mtasts_lookup *out, struct cache_entry *e)
{
	const char *why = NULL;

	if (mtasts_policy_parse(span_of_cstr(e->policy_text), &out->policy,
	    &why) == -1)
		return -1;
	out->status = MTASTS_POLICY;
	out->policy_text = e->policy_text;
	e->policy_text = NULL;
	return 0;
}

void
mtasts_lookup_release(struct mtasts_lookup *l)
{
	if (l == NULL)
		return;
	mtasts_policy_release(&l->policy);
	free(l->policy_text);
	memset(l, 0, sizeof(*l));
}

/* Cached and still valid: spec 5.9 "Cached, non-expired entry". */
static int
lookup_cached(sqlite3 *db, struct dns_resolver *r, const char *domain,
    const struct mtasts_fetch_params *fp, int64_t now, struct cache_entry *e,
    struct mtasts_lookup *out, struct buf *err)
{
	char id[MTASTS_ID_MAX + 1] = "";
	enum record_status rs;
	enum mtasts_fetch_result fr;
	struct mtasts_policy pol;
	struct buf body;
	int rc = -1;

	if (exec_bound(db, "UPDATE policy SET last_use = ?2 WHERE domain = ?1",
	    domain, now, err) == -1)
		return -1;
	if (e->backoff) {
		out->status = MTASTS_NONE;
		out->report_result = "back-off-after-recent-fetch-error";
		out->why = "backing off after recent policy fetch error";
		return 0;
	}
	rs = lookup_record(r, domain, id);
	if (rs == REC_OK && strcmp(id, e->record_id) == 0) {
		if (use_cached(out, e) == -1)
			out->status = MTASTS_NONE;
		return 0;
	}
	if (rs != REC_OK) {
		/* TXT gone or DNS failing: keep using the cached policy. */
		if (use_cached(out, e) == -1)
			out->status = MTASTS_NONE;
		out->fallback_cached = true;
		out->why = "no valid mta-sts record, using cached policy";
		return 0;
	}
	buf_init(&body, MTASTS_POLICY_MAX);
	fr = mtasts_fetch(domain, fp, &body, &pol, &out->why);
	if (fr != MTASTS_FETCH_OK) {
		if (use_cached(out, e) == -1)
			out->status = MTASTS_NONE;
		out->fallback_cached = true;
		out->report_result = fetch_report_result(fr);
		rc = 0;
		goto out;
	}
	if (entry_store(db, domain, now, now + (int64_t)pol.max_age, false, id,
	    body.data, err) == -1) {
		mtasts_policy_release(&pol);
		goto out;
	}
	out->status = MTASTS_POLICY;
	out->policy = pol;
	out->policy_text = buf_take(&body);
	out->why = NULL;
	rc = 0;
out:
	buf_release(&body);
	return rc;
}

int
mtasts_lookup(struct mtasts_cache *c, struct dns_resolver *r,
    const char *domain, const struct mtasts_fetch_params *fp, int64_t now,
    struct mtasts_lookup *out, struct buf *err)
{
	char id[MTASTS_ID_MAX + 1] = "";
	struct cache_entry e;
	enum record_status rs;
	enum mtasts_fetch_result fr;
	struct mtasts_policy pol;
	struct buf body;
	sqlite3 *db;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	memset(&e, 0, sizeof(e));
	buf_init(&body, MTASTS_POLICY_MAX);
	db = cache_db(c, err);
	if (db == NULL)
		goto out;
	if (entry_get(db, domain, &e, err) == -1)
		goto out;
	if (e.found && e.valid_end > now) {
		rc = lookup_cached(db, r, domain, fp, now, &e, out, err);
		goto out;
	}
	rs = lookup_record(r, domain, id);
	switch (rs) {
	case REC_OK:
		break;
	case REC_TEMP:
		out->status = MTASTS_TEMPERROR;
		out->why = "temporary dns error looking up mta-sts record";
		rc = 0;
		goto out;
	case REC_NONE:
		out->status = MTASTS_NONE;
		rc = 0;
		goto out;
	case REC_INVALID:
		out->status = MTASTS_NONE;
		out->report_result = "sts-policy-invalid";
		out->why = "invalid mta-sts record";
		rc = 0;
		goto out;
	}
	fr = mtasts_fetch(domain, fp, &body, &pol, &out->why);
	if (fr != MTASTS_FETCH_OK) {
		/* RFC 8461 3.3: do not refetch for 5 minutes. */
		out->status = MTASTS_NONE;
		out->report_result = fetch_report_result(fr);
		rc = entry_store(db, domain, now, now + MTASTS_BACKOFF_SECS, true,
		    id, "", err);
		goto out;
	}
	if (entry_store(db, domain, now, now + (int64_t)pol.max_age, false, id,
	    body.data, err) == -1) {
		mtasts_policy_release(&pol);
		goto out;
	}
	out->status = MTASTS_POLICY;
	out->policy = pol;
	out->policy_text = buf_take(&body);
	rc = 0;
out:
	entry_release(&e);
	buf_release(&body);
	sqlite3_close(db);
	if (rc == -1)
		mtasts_lookup_release(out);
	return rc;
}

/* Refresh one entry (spec 5.9 refresher). */
static int
refresh_one(sqlite3 *db, struct dns_resolver *r, const char *domain,
    const struct mtasts_fetch_params *fp, int64_t now, struct buf *err)
{
	char id[MTASTS_ID_MAX + 1] = "";
	struct cache_entry e;
	struct mtasts_policy pol;
	struct buf body;
	enum record_status rs;
	const char *why = NULL;
	int rc = -1;

	buf_init(&body, MTASTS_POLICY_MAX);
	memset(&pol, 0, sizeof(pol));
	if (entry_get(db, domain, &e, err) == -1)
		goto out;
	if (!e.found) {
		rc = 0;
		goto out;
	}
	rs = lookup_record(r, domain, id);
	if (!e.backoff && rs == REC_OK && strcmp(id, e.record_id) == 0 &&
	    mtasts_policy_parse(span_of_cstr(e.policy_text), &pol, &why) == 0) {
		rc = entry_store(db, domain, now, now + (int64_t)pol.max_age,
		    false, id, e.policy_text, err);
		goto out;
	}
	if (rs == REC_NONE && (e.backoff || (mtasts_policy_parse(
	    span_of_cstr(e.policy_text), &pol, &why) == 0 &&
	    pol.mode == MTASTS_MODE_NONE))) {
		rc = exec_bound(db, "DELETE FROM policy WHERE domain = ?1",
		    domain, 0, err);
		goto out;
	}
	mtasts_policy_release(&pol);
	if (mtasts_fetch(domain, fp, &body, &pol, &why) != MTASTS_FETCH_OK) {
		rc = 0; /* keep the entry; delivery decides again */
		goto out;
	}
	rc = entry_store(db, domain, now, now + (int64_t)pol.max_age, false,
	    rs == REC_OK ? id : e.record_id, body.data, err);
out:
	mtasts_policy_release(&pol);
	entry_release(&e);
	buf_release(&body);
	return rc;
}

int
mtasts_refresh(struct mtasts_cache *c, struct dns_resolver *r,
    const struct mtasts_fetch_params *fp, int64_t now, size_t max,
    size_t *nrefreshed_out, struct buf *err)
{
	sqlite3_stmt *st = NULL;
	char **domains = NULL;
	size_t n = 0;
	sqlite3 *db;
	int rc = -1, step;

	*nrefreshed_out = 0;
	db = cache_db(c, err);
	if (db == NULL)
		return -1;
	if (exec_bound(db, "DELETE FROM policy WHERE last_use < ?2",
	    NULL, now - MTASTS_UNUSED_DELETE_SECS, err) == -1)
		goto out;
	if (sqlite3_prepare_v2(db, "SELECT domain FROM policy WHERE"
	    " last_update < ? ORDER BY random() LIMIT ?", -1, &st, NULL) !=
	    SQLITE_OK)
		goto dberr;
	sqlite3_bind_int64(st, 1, now - MTASTS_REFRESH_AFTER_SECS);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)(max > INT64_MAX ? INT64_MAX :
	    (int64_t)max));
	while ((step = sqlite3_step(st)) == SQLITE_ROW)
		strv_add(&domains, &n, span_of_cstr(
		    (const char *)sqlite3_column_text(st, 0)));
	if (step != SQLITE_DONE)
		goto dberr;
	sqlite3_finalize(st);
	st = NULL;
	for (size_t i = 0; i < n; i++) {
		if (refresh_one(db, r, domains[i], fp, now, err) == -1)
			goto out;
		(*nrefreshed_out)++;
	}
	rc = 0;
	goto out;
dberr:
	buf_addf(err, "mtasts cache: %s", sqlite3_errmsg(db));
out:
	sqlite3_finalize(st);
	strv_free(domains, n);
	sqlite3_close(db);
	return rc;
}
