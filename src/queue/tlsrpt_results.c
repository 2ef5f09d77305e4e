/*
 * tlsrpt_results.c: TLS results of delivery attempts for SMTP TLS
 * reporting (RFC 8460 4.3 result types; spec/queue.md 5.7), kept in
 * memory per attempt and merged into <datadir>/tlsrptresult.db keyed by
 * (policy domain, UTC day, recipient domain, is-host). Values come from
 * remote servers (HELO names, reasons): stored as data, never parsed.
 * Threads: a result is owned by one delivery thread; each store/load
 * opens its own SQLite connection.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "lib/buf.h"
#include "lib/io.h"
#include "lib/span.h"
#include "lib/xmalloc.h"
#include "queue/tlsrpt_results.h"
#include "lib/banned.h"

#define TLSRPT_BUSY_MS 10000

static void
strv_push(char ***v, size_t *n, const char *s)
{
	*v = xreallocarray(*v, size_add(*n, 1), sizeof(**v));
	(*v)[(*n)++] = xstrdup(s != NULL ? s : "");
}

void
tlsrpt_result_init(struct tlsrpt_result *r, enum tlsrpt_policy_type type,
    const char *policy_domain, const char *recipient_domain, bool is_host)
{
	memset(r, 0, sizeof(*r));
	r->type = type;
	r->policy_domain = xstrdup(policy_domain);
	r->recipient_domain = xstrdup(recipient_domain);
	r->is_host = is_host;
	r->send_report = true;
}

static void
detail_release(struct tlsrpt_detail *d)
{
	free(d->result_type);
	free(d->sending_ip);
	free(d->receiving_mx);
	free(d->receiving_helo);
	free(d->receiving_ip);
	free(d->reason);
}

void
tlsrpt_result_release(struct tlsrpt_result *r)
{
	if (r == NULL)
		return;
	free(r->policy_domain);
	free(r->recipient_domain);
	for (size_t i = 0; i < r->nstrings; i++)
		free(r->strings[i]);
	free(r->strings);
	for (size_t i = 0; i < r->nmx; i++)
		free(r->mx[i]);
	free(r->mx);
	for (size_t i = 0; i < r->ndetails; i++)
		detail_release(&r->details[i]);
	free(r->details);
	memset(r, 0, sizeof(*r));
}

void
tlsrpt_result_add_string(struct tlsrpt_result *r, const char *s)
{
	strv_push(&r->strings, &r->nstrings, s);
}

void
tlsrpt_result_add_mx(struct tlsrpt_result *r, const char *mx)
{
	strv_push(&r->mx, &r->nmx, mx);
}

void
tlsrpt_result_success(struct tlsrpt_result *r)
{
	r->success++;
}

static bool
streq(const char *a, const char *b)
{
	return strcmp(a, b != NULL ? b : "") == 0;
}

static void
add_detail(struct tlsrpt_result *r, const char *result_type,
    const char *reason, const char *sending_ip, const char *receiving_mx,
    const char *receiving_helo, const char *receiving_ip, uint64_t count)
{
	struct tlsrpt_detail *d;

	for (size_t i = 0; i < r->ndetails; i++) {
		d = &r->details[i];
		if (streq(d->result_type, result_type) &&
		    streq(d->reason, reason) &&
		    streq(d->sending_ip, sending_ip) &&
		    streq(d->receiving_mx, receiving_mx) &&
		    streq(d->receiving_helo, receiving_helo) &&
		    streq(d->receiving_ip, receiving_ip)) {
			d->count += count;
			return;
		}
	}
	if (r->ndetails >= TLSRPT_DETAILS_MAX)
		return; /* bounded: counts still say how many failed */
	r->details = xreallocarray(r->details, r->ndetails + 1,
	    sizeof(*r->details));
	d = &r->details[r->ndetails++];
	d->result_type = xstrdup(result_type != NULL ? result_type : "");
	d->reason = xstrdup(reason != NULL ? reason : "");
	d->sending_ip = xstrdup(sending_ip != NULL ? sending_ip : "");
	d->receiving_mx = xstrdup(receiving_mx != NULL ? receiving_mx : "");
	d->receiving_helo = xstrdup(receiving_helo != NULL ? receiving_helo :
	    "");
	d->receiving_ip = xstrdup(receiving_ip != NULL ? receiving_ip : "");
	d->count = count;
}

void
tlsrpt_result_failure(struct tlsrpt_result *r, const char *result_type,
    const char *reason, const char *sending_ip, const char *receiving_mx,
    const char *receiving_helo, const char *receiving_ip)
{
	r->failure++;
	add_detail(r, result_type, reason, sending_ip, receiving_mx,
	    receiving_helo, receiving_ip, 1);
}

void
tlsrpt_result_detail(struct tlsrpt_result *r, const char *result_type,
    const char *reason, const char *sending_ip, const char *receiving_mx,
    const char *receiving_helo, const char *receiving_ip)
{
	add_detail(r, result_type, reason, sending_ip, receiving_mx,
	    receiving_helo, receiving_ip, 1);
}

void
tlsrpt_result_success_to_failure(struct tlsrpt_result *r,
    const char *result_type, const char *reason, const char *sending_ip,
    const char *receiving_mx, const char *receiving_helo,
    const char *receiving_ip)
{
	if (r->success == 0)
		return;
	r->success--;
	tlsrpt_result_failure(r, result_type, reason, sending_ip, receiving_mx,
	    receiving_helo, receiving_ip);
}

void
tlsrpt_day(int64_t now, char out[9])
{
	time_t t = (time_t)now;
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(out, 9, "%Y%m%d", &tm) != 8)
		memcpy(out, "00000000", 9);
}

static const char tlsrpt_schema[] =
    "CREATE TABLE IF NOT EXISTS result ("
    " policy_domain TEXT NOT NULL, day TEXT NOT NULL,"
    " recipient_domain TEXT NOT NULL, is_host INTEGER NOT NULL,"
    " policy_type INTEGER NOT NULL, strings TEXT NOT NULL,"
    " mx TEXT NOT NULL, success INTEGER NOT NULL, failure INTEGER NOT NULL,"
    " send_report INTEGER NOT NULL,"
    " PRIMARY KEY (policy_domain, day, recipient_domain, is_host));"
    "CREATE TABLE IF NOT EXISTS detail ("
    " policy_domain TEXT NOT NULL, day TEXT NOT NULL,"
    " recipient_domain TEXT NOT NULL, is_host INTEGER NOT NULL,"
    " result_type TEXT NOT NULL, sending_ip TEXT NOT NULL,"
    " receiving_mx TEXT NOT NULL, receiving_helo TEXT NOT NULL,"
    " receiving_ip TEXT NOT NULL, reason TEXT NOT NULL,"
    " count INTEGER NOT NULL,"
    " UNIQUE (policy_domain, day, recipient_domain, is_host, result_type,"
    "  sending_ip, receiving_mx, receiving_helo, receiving_ip, reason));";

static sqlite3 *
open_db(const char *datadir, struct buf *err)
{
	struct buf path;
	sqlite3 *db = NULL;
	char *msg = NULL;

	buf_init(&path, 4096);
	io_path_join(&path, datadir, "tlsrptresult.db");
	if (buf_failed(&path)) {
		buf_adds(err, "tlsrptresult.db: path too long");
		goto out;
	}
	if (sqlite3_open_v2(path.data, &db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		buf_addf(err, "%s: %s", path.data,
		    db != NULL ? sqlite3_errmsg(db) : "cannot open");
		sqlite3_close(db);
		db = NULL;
		goto out;
	}
	sqlite3_busy_timeout(db, TLSRPT_BUSY_MS);
	if (sqlite3_exec(db, "PRAGMA journal_mode=WAL", NULL, NULL, &msg) !=
	    SQLITE_OK ||
	    sqlite3_exec(db, tlsrpt_schema, NULL, NULL, &msg) != SQLITE_OK) {
		buf_addf(err, "%s: %s", path.data, msg != NULL ? msg : "schema");
		sqlite3_free(msg);
		sqlite3_close(db);
		db = NULL;
	}
out:
	buf_release(&path);
	return db;
}

static void
join_lines(struct buf *b, char *const *v, size_t n)
{
	buf_reset(b);
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			buf_addc(b, '\n');
		buf_adds(b, v[i]);
	}
}

/* spec 5.7: no no-policy-found domain result when a tlsa result for
 * the same domain exists. */
static bool
skip_result(const struct tlsrpt_result *rs, size_t n, size_t i)
{
	if (rs[i].is_host || rs[i].type != TLSRPT_POLICY_NONE)
		return false;
	for (size_t j = 0; j < n; j++)
		if (j != i && rs[j].type == TLSRPT_POLICY_TLSA &&
		    strcmp(rs[j].policy_domain, rs[i].policy_domain) == 0)
			return true;
	return false;
}

static int
store_one(sqlite3 *db, const struct tlsrpt_result *r, const char *day)
{
	sqlite3_stmt *st = NULL;
	struct buf strings, mx;
	int rc = -1;

	buf_init(&strings, BUF_NOMAX);
	buf_init(&mx, BUF_NOMAX);
	join_lines(&strings, r->strings, r->nstrings);
	join_lines(&mx, r->mx, r->nmx);
	if (sqlite3_prepare_v2(db, "INSERT INTO result VALUES (?1, ?2, ?3,"
	    " ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT (policy_domain, day,"
	    " recipient_domain, is_host) DO UPDATE SET policy_type = ?5,"
	    " strings = ?6, mx = ?7, success = success + ?8,"
	    " failure = failure + ?9, send_report = send_report OR ?10", -1,
	    &st, NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_text(st, 1, r->policy_domain, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, day, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, r->recipient_domain, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 4, r->is_host);
	sqlite3_bind_int(st, 5, (int)r->type);
	sqlite3_bind_text(st, 6, strings.data, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, mx.data, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 8, (sqlite3_int64)r->success);
	sqlite3_bind_int64(st, 9, (sqlite3_int64)r->failure);
	sqlite3_bind_int(st, 10, r->send_report);
	if (sqlite3_step(st) != SQLITE_DONE)
		goto out;
	sqlite3_finalize(st);
	st = NULL;
	if (sqlite3_prepare_v2(db, "INSERT INTO detail VALUES (?1, ?2, ?3,"
	    " ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) ON CONFLICT DO UPDATE SET"
	    " count = count + ?11", -1, &st, NULL) != SQLITE_OK)
		goto out;
	for (size_t i = 0; i < r->ndetails; i++) {
		const struct tlsrpt_detail *d = &r->details[i];

		sqlite3_reset(st);
		sqlite3_bind_text(st, 1, r->policy_domain, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, day, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, r->recipient_domain, -1,
		    SQLITE_STATIC);
		sqlite3_bind_int(st, 4, r->is_host);
		sqlite3_bind_text(st, 5, d->result_type, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 6, d->sending_ip, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 7, d->receiving_mx, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 8, d->receiving_helo, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 9, d->receiving_ip, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 10, d->reason, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 11, (sqlite3_int64)d->count);
		if (sqlite3_step(st) != SQLITE_DONE)
			goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	buf_release(&strings);
	buf_release(&mx);
	return rc;
}

int
tlsrpt_results_store(const char *datadir, const struct tlsrpt_result *rs,
    size_t n, int64_t now, struct buf *err)
{
	char day[9];
	sqlite3 *db;
	int rc = -1;

	tlsrpt_day(now, day);
	db = open_db(datadir, err);
	if (db == NULL)
		return -1;
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		goto dberr;
	for (size_t i = 0; i < n; i++) {
		if (skip_result(rs, n, i))
			continue;
		if (store_one(db, &rs[i], day) == -1) {
			buf_addf(err, "tlsrptresult.db: %s", sqlite3_errmsg(db));
			sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
			goto out;
		}
	}
	if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		goto dberr;
	rc = 0;
	goto out;
dberr:
	buf_addf(err, "tlsrptresult.db: %s", sqlite3_errmsg(db));
out:
	sqlite3_close(db);
	return rc;
}

static void
split_lines(const char *s, char ***v, size_t *n)
{
	struct span rest = span_of_cstr(s);

	while (rest.len > 0) {
		const char *nl = memchr(rest.p, '\n', rest.len);
		size_t len = nl != NULL ? (size_t)(nl - rest.p) : rest.len;

		*v = xreallocarray(*v, size_add(*n, 1), sizeof(**v));
		(*v)[(*n)++] = xstrndup(rest.p, len);
		rest.p += len;
		rest.len -= len;
		if (nl != NULL) {
			rest.p++;
			rest.len--;
		}
	}
}

static const char *
col(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	return t != NULL ? (const char *)t : "";
}

static int
load_details(sqlite3 *db, struct tlsrpt_result *r, const char *day)
{
	sqlite3_stmt *st = NULL;
	int step, rc = -1;

	if (sqlite3_prepare_v2(db, "SELECT result_type, reason, sending_ip,"
	    " receiving_mx, receiving_helo, receiving_ip, count FROM detail"
	    " WHERE policy_domain = ? AND day = ? AND recipient_domain = ? AND"
	    " is_host = ? ORDER BY rowid", -1, &st, NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_text(st, 1, r->policy_domain, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, day, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, r->recipient_domain, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 4, r->is_host);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		sqlite3_int64 count = sqlite3_column_int64(st, 6);

		add_detail(r, col(st, 0), col(st, 1), col(st, 2), col(st, 3),
		    col(st, 4), col(st, 5), count > 0 ? (uint64_t)count : 0);
	}
	rc = step == SQLITE_DONE ? 0 : -1;
out:
	sqlite3_finalize(st);
	return rc;
}

void
tlsrpt_results_free(struct tlsrpt_result *rs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		tlsrpt_result_release(&rs[i]);
	free(rs);
}

int
tlsrpt_results_load(const char *datadir, const char *policy_domain,
    const char *day, struct tlsrpt_result **out, size_t *n_out,
    struct buf *err)
{
	struct tlsrpt_result *rs = NULL;
	sqlite3_stmt *st = NULL;
	size_t n = 0;
	sqlite3 *db;
	int step, rc = -1;

	*out = NULL;
	*n_out = 0;
	db = open_db(datadir, err);
	if (db == NULL)
		return -1;
	if (sqlite3_prepare_v2(db, "SELECT recipient_domain, is_host,"
	    " policy_type, strings, mx, success, failure, send_report FROM"
	    " result WHERE policy_domain = ? AND day = ?"
	    " ORDER BY recipient_domain, is_host", -1, &st, NULL) != SQLITE_OK)
		goto dberr;
	sqlite3_bind_text(st, 1, policy_domain, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, day, -1, SQLITE_STATIC);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		struct tlsrpt_result *r;
		int type = sqlite3_column_int(st, 2);

		rs = xreallocarray(rs, n + 1, sizeof(*rs));
		r = &rs[n++];
		tlsrpt_result_init(r, type == TLSRPT_POLICY_STS ?
		    TLSRPT_POLICY_STS : type == TLSRPT_POLICY_TLSA ?
		    TLSRPT_POLICY_TLSA : TLSRPT_POLICY_NONE, policy_domain,
		    col(st, 0), sqlite3_column_int(st, 1) != 0);
		split_lines(col(st, 3), &r->strings, &r->nstrings);
		split_lines(col(st, 4), &r->mx, &r->nmx);
		r->success = (uint64_t)sqlite3_column_int64(st, 5);
		r->failure = (uint64_t)sqlite3_column_int64(st, 6);
		r->send_report = sqlite3_column_int(st, 7) != 0;
		if (load_details(db, r, day) == -1)
			goto dberr;
	}
	if (step != SQLITE_DONE)
		goto dberr;
	*out = rs;
	*n_out = n;
	rs = NULL;
	n = 0;
	rc = 0;
	goto out;
dberr:
	buf_addf(err, "tlsrptresult.db: %s", sqlite3_errmsg(db));
out:
	sqlite3_finalize(st);
	tlsrpt_results_free(rs, n);
	sqlite3_close(db);
	return rc;
}
