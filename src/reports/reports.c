/*
 * reports.c: reports.db, the DMARC evaluations stored for aggregate
 * reports (RFC 7489 7.2, spec auth.md 9.2). One table of evaluations with
 * the published policy and the identifiers, and a child table of the
 * DKIM results; rua addresses are kept one per line (a parsed DMARC URI
 * holds no line break).
 *
 * Trust: the values come from DNS records and message headers of
 * unauthenticated senders; they are bound as SQL parameters only.
 * Threads: a handle stays in the thread that opened it; blocks on disk.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "lib/buf.h"
#include "lib/xmalloc.h"
#include "mailauth/dkim.h"
#include "mailauth/dmarc.h"
#include "mailauth/spf.h"
#include "reports/reports.h"
#include "lib/banned.h"

struct reports {
	sqlite3 *db;
};

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS dmarc_evaluation ("
    " id INTEGER PRIMARY KEY,"
    " policy_domain TEXT NOT NULL,"
    " evaluated INTEGER NOT NULL,"
    " interval_hours INTEGER NOT NULL,"
    " addresses TEXT NOT NULL,"
    " pub_domain TEXT NOT NULL,"
    " pub_adkim TEXT NOT NULL,"
    " pub_aspf TEXT NOT NULL,"
    " pub_p TEXT NOT NULL,"
    " pub_sp TEXT NOT NULL,"
    " pub_pct INTEGER NOT NULL,"
    " source_ip TEXT NOT NULL,"
    " disposition TEXT NOT NULL,"
    " aligned_dkim_pass INTEGER NOT NULL,"
    " aligned_spf_pass INTEGER NOT NULL,"
    " override_reasons TEXT NOT NULL,"
    " envelope_to TEXT NOT NULL,"
    " envelope_from TEXT NOT NULL,"
    " header_from TEXT NOT NULL,"
    " spf_domain TEXT,"
    " spf_scope TEXT,"
    " spf_result TEXT,"
    " optional INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS dmarc_evaluation_domain"
    " ON dmarc_evaluation (policy_domain, evaluated);"
    "CREATE TABLE IF NOT EXISTS dmarc_evaluation_dkim ("
    " evaluation INTEGER NOT NULL REFERENCES dmarc_evaluation(id)"
    "  ON DELETE CASCADE,"
    " seq INTEGER NOT NULL,"
    " domain TEXT NOT NULL,"
    " selector TEXT NOT NULL,"
    " result TEXT NOT NULL,"
    " PRIMARY KEY (evaluation, seq));";

static void
db_err(struct reports *r, const char *what, struct buf *err)
{
	buf_addf(err, "%s: %s", what, sqlite3_errmsg(r->db));
}

struct reports *
reports_open(const char *datadir, struct buf *err)
{
	struct reports *r = xcalloc(1, sizeof(*r));
	struct buf path;
	char *msg = NULL;

	buf_init(&path, 4096);
	buf_addf(&path, "%s/%s", datadir, REPORTS_DB_NAME);
	if (buf_failed(&path)) {
		buf_adds(err, "reports.db path too long");
		goto fail;
	}
	if (sqlite3_open_v2(path.data, &r->db, SQLITE_OPEN_READWRITE |
		SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		db_err(r, "opening reports.db", err);
		goto fail;
	}
	sqlite3_busy_timeout(r->db, REPORTS_BUSY_MS);
	if (sqlite3_exec(r->db, "PRAGMA journal_mode=WAL;"
				"PRAGMA foreign_keys=ON;",
		NULL, NULL, &msg) != SQLITE_OK ||
	    sqlite3_exec(r->db, schema, NULL, NULL, &msg) != SQLITE_OK) {
		buf_addf(err, "preparing reports.db: %s",
		    msg != NULL ? msg : "unknown error");
		sqlite3_free(msg);
		goto fail;
	}
	buf_release(&path);
	return r;
fail:
	buf_release(&path);
	reports_close(r);
	return NULL;
}

void
reports_close(struct reports *r)
{
	if (r == NULL)
		return;
	sqlite3_close(r->db);
	free(r);
}

static const char *
nz(const char *s)
{
	return s != NULL ? s : "";
}

int
reports_dmarc_eval_add(struct reports *r, const struct dmarc_evaluation *e,
    struct buf *err)
{
	sqlite3_stmt *st = NULL, *dst = NULL;
	struct buf addrs, over;
	sqlite3_int64 id;
	int rc = -1, i = 1;
	bool begun = false;

	buf_init(&addrs, 64 * 1024);
	buf_init(&over, 256);
	for (size_t k = 0; k < e->naddresses; k++)
		if (strchr(e->addresses[k], '\n') == NULL)
			buf_addf(&addrs, "%s%s", addrs.len > 0 ? "\n" : "",
			    e->addresses[k]);
	if (e->override_mailing_list)
		buf_adds(&over, "mailing_list,");
	if (e->override_forwarded)
		buf_adds(&over, "forwarded,");
	if (e->override_sampled_out)
		buf_adds(&over, "sampled_out,");
	if (over.len > 0)
		buf_truncate(&over, over.len - 1);
	if (buf_failed(&addrs)) {
		buf_adds(err, "too many rua addresses");
		goto out;
	}
	if (sqlite3_exec(r->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) !=
	    SQLITE_OK) {
		db_err(r, "starting transaction", err);
		goto out;
	}
	begun = true;
	if (sqlite3_prepare_v2(r->db,
		"INSERT INTO dmarc_evaluation (policy_domain, evaluated,"
		" interval_hours, addresses, pub_domain, pub_adkim, pub_aspf,"
		" pub_p, pub_sp, pub_pct, source_ip, disposition,"
		" aligned_dkim_pass, aligned_spf_pass, override_reasons,"
		" envelope_to, envelope_from, header_from, spf_domain,"
		" spf_scope, spf_result, optional) VALUES (?, ?, ?, ?, ?, ?,"
		" ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		-1, &st, NULL) != SQLITE_OK) {
		db_err(r, "preparing insert", err);
		goto out;
	}
	sqlite3_bind_text(st, i++, nz(e->policy_domain), -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, i++, e->evaluated);
	sqlite3_bind_int64(st, i++, e->interval_hours);
	sqlite3_bind_text(st, i++, addrs.data, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, i++, nz(e->pub_domain), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, i++, e->pub_adkim_strict ? "s" : "r", -1,
	    SQLITE_STATIC);
	sqlite3_bind_text(st, i++, e->pub_aspf_strict ? "s" : "r", -1,
	    SQLITE_STATIC);
	sqlite3_bind_text(st, i++, dmarc_policy_name(e->pub_p), -1,
	    SQLITE_STATIC);
	sqlite3_bind_text(st, i++, dmarc_policy_name(e->pub_sp), -1,
	    SQLITE_STATIC);
	sqlite3_bind_int64(st, i++, e->pub_pct);
	sqlite3_bind_text(st, i++, nz(e->source_ip), -1, SQLITE_STATIC);
	/* spec auth.md 9.2: quarantine is never claimed. */
	sqlite3_bind_text(st, i++, e->disposition_reject ? "reject" : "none",
	    -1, SQLITE_STATIC);
	sqlite3_bind_int(st, i++, e->aligned_dkim_pass);
	sqlite3_bind_int(st, i++, e->aligned_spf_pass);
	sqlite3_bind_text(st, i++, over.data, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, i++, nz(e->envelope_to), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, i++, nz(e->envelope_from), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, i++, nz(e->header_from), -1, SQLITE_STATIC);
	if (e->spf_domain != NULL) {
		sqlite3_bind_text(st, i++, e->spf_domain, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, i++, e->spf_scope_helo ? "helo" : "mfrom",
		    -1, SQLITE_STATIC);
		sqlite3_bind_text(st, i++, nz(e->spf_result), -1, SQLITE_STATIC);
	} else {
		sqlite3_bind_null(st, i++);
		sqlite3_bind_null(st, i++);
		sqlite3_bind_null(st, i++);
	}
	sqlite3_bind_int(st, i++, e->optional);
	if (sqlite3_step(st) != SQLITE_DONE) {
		db_err(r, "inserting evaluation", err);
		goto out;
	}
	id = sqlite3_last_insert_rowid(r->db);
	if (sqlite3_prepare_v2(r->db,
		"INSERT INTO dmarc_evaluation_dkim (evaluation, seq, domain,"
		" selector, result) VALUES (?, ?, ?, ?, ?)",
		-1, &dst, NULL) != SQLITE_OK) {
		db_err(r, "preparing dkim insert", err);
		goto out;
	}
	for (size_t k = 0; k < e->ndkim; k++) {
		sqlite3_reset(dst);
		sqlite3_bind_int64(dst, 1, id);
		sqlite3_bind_int64(dst, 2, (sqlite3_int64)k);
		sqlite3_bind_text(dst, 3, nz(e->dkim[k].domain), -1,
		    SQLITE_STATIC);
		sqlite3_bind_text(dst, 4, nz(e->dkim[k].selector), -1,
		    SQLITE_STATIC);
		sqlite3_bind_text(dst, 5, nz(e->dkim[k].result), -1,
		    SQLITE_STATIC);
		if (sqlite3_step(dst) != SQLITE_DONE) {
			db_err(r, "inserting dkim result", err);
			goto out;
		}
	}
	if (sqlite3_exec(r->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		db_err(r, "committing evaluation", err);
		goto out;
	}
	begun = false;
	rc = 0;
out:
	sqlite3_finalize(st);
	sqlite3_finalize(dst);
	if (begun)
		sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
	buf_release(&addrs);
	buf_release(&over);
	return rc;
}

static char *
col_dup(sqlite3_stmt *st, int c)
{
	const unsigned char *t = sqlite3_column_text(st, c);

	return t != NULL ? xstrdup((const char *)t) : NULL;
}

static enum dmarc_policy
policy_of(const char *s)
{
	if (s != NULL && strcmp(s, "reject") == 0)
		return DMARC_POLICY_REJECT;
	if (s != NULL && strcmp(s, "quarantine") == 0)
		return DMARC_POLICY_QUARANTINE;
	return DMARC_POLICY_NONE;
}

/* The static mailauth name equal to s, or NULL. */
static const char *
spf_name(const char *s)
{
	for (int k = SPF_NONE; s != NULL && k <= SPF_PERMERROR; k++)
		if (strcmp(s, spf_status_name((enum spf_status)k)) == 0)
			return spf_status_name((enum spf_status)k);
	return NULL;
}

static const char *
dkim_name(const char *s)
{
	for (int k = DKIM_NONE; s != NULL && k <= DKIM_PERMERROR; k++)
		if (strcmp(s, dkim_status_name((enum dkim_status)k)) == 0)
			return dkim_status_name((enum dkim_status)k);
	return dkim_status_name(DKIM_NONE);
}

static void
split_lines(const char *s, struct dmarc_evaluation *e)
{
	const char *p = s;

	while (p != NULL && *p != '\0') {
		const char *nl = strchr(p, '\n');
		size_t n = nl != NULL ? (size_t)(nl - p) : strlen(p);

		e->addresses = xreallocarray(e->addresses, e->naddresses + 1,
		    sizeof(char *));
		e->addresses[e->naddresses++] = xstrndup(p, n);
		p = nl != NULL ? nl + 1 : NULL;
	}
}

int
reports_dmarc_eval_list(struct reports *r, struct dmarc_evaluation **out,
    size_t *n_out, struct buf *err)
{
	sqlite3_stmt *st = NULL, *dst = NULL;
	struct dmarc_evaluation *v = NULL;
	size_t n = 0;
	int rc = -1, s;

	if (sqlite3_prepare_v2(r->db,
		"SELECT id, policy_domain, evaluated, interval_hours, addresses,"
		" pub_domain, pub_adkim, pub_aspf, pub_p, pub_sp, pub_pct,"
		" source_ip, disposition, aligned_dkim_pass, aligned_spf_pass,"
		" override_reasons, envelope_to, envelope_from, header_from,"
		" spf_domain, spf_scope, spf_result, optional"
		" FROM dmarc_evaluation ORDER BY id LIMIT ?",
		-1, &st, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(r->db,
		"SELECT domain, selector, result FROM dmarc_evaluation_dkim"
		" WHERE evaluation = ? ORDER BY seq",
		-1, &dst, NULL) != SQLITE_OK) {
		db_err(r, "preparing list", err);
		goto out;
	}
	sqlite3_bind_int64(st, 1, REPORTS_LIST_MAX);
	while ((s = sqlite3_step(st)) == SQLITE_ROW) {
		struct dmarc_evaluation *e;
		const unsigned char *t;
		char *tmp;

		v = xreallocarray(v, n + 1, sizeof(*v));
		e = &v[n++];
		memset(e, 0, sizeof(*e));
		e->policy_domain = col_dup(st, 1);
		e->evaluated = sqlite3_column_int64(st, 2);
		e->interval_hours = (unsigned)sqlite3_column_int64(st, 3);
		tmp = col_dup(st, 4);
		split_lines(tmp, e);
		free(tmp);
		e->pub_domain = col_dup(st, 5);
		t = sqlite3_column_text(st, 6);
		e->pub_adkim_strict = t != NULL && t[0] == 's';
		t = sqlite3_column_text(st, 7);
		e->pub_aspf_strict = t != NULL && t[0] == 's';
		e->pub_p = policy_of((const char *)sqlite3_column_text(st, 8));
		e->pub_sp = policy_of((const char *)sqlite3_column_text(st, 9));
		e->pub_pct = (unsigned)sqlite3_column_int64(st, 10);
		e->source_ip = col_dup(st, 11);
		t = sqlite3_column_text(st, 12);
		e->disposition_reject = t != NULL &&
		    strcmp((const char *)t, "reject") == 0;
		e->aligned_dkim_pass = sqlite3_column_int(st, 13) != 0;
		e->aligned_spf_pass = sqlite3_column_int(st, 14) != 0;
		t = sqlite3_column_text(st, 15);
		e->override_mailing_list = t != NULL &&
		    strstr((const char *)t, "mailing_list") != NULL;
		e->override_forwarded = t != NULL &&
		    strstr((const char *)t, "forwarded") != NULL;
		e->override_sampled_out = t != NULL &&
		    strstr((const char *)t, "sampled_out") != NULL;
		e->envelope_to = col_dup(st, 16);
		e->envelope_from = col_dup(st, 17);
		e->header_from = col_dup(st, 18);
		e->spf_domain = col_dup(st, 19);
		t = sqlite3_column_text(st, 20);
		e->spf_scope_helo = t != NULL &&
		    strcmp((const char *)t, "helo") == 0;
		e->spf_result = spf_name(
		    (const char *)sqlite3_column_text(st, 21));
		e->optional = sqlite3_column_int(st, 22) != 0;
		sqlite3_reset(dst);
		sqlite3_bind_int64(dst, 1, sqlite3_column_int64(st, 0));
		while (sqlite3_step(dst) == SQLITE_ROW) {
			e->dkim = xreallocarray(e->dkim, e->ndkim + 1,
			    sizeof(*e->dkim));
			e->dkim[e->ndkim].domain = col_dup(dst, 0);
			e->dkim[e->ndkim].selector = col_dup(dst, 1);
			e->dkim[e->ndkim].result = dkim_name(
			    (const char *)sqlite3_column_text(dst, 2));
			e->ndkim++;
		}
	}
	if (s != SQLITE_DONE) {
		db_err(r, "listing evaluations", err);
		goto out;
	}
	*out = v;
	*n_out = n;
	v = NULL;
	n = 0;
	rc = 0;
out:
	for (size_t k = 0; k < n; k++)
		dmarc_evaluation_release(&v[k]);
	free(v);
	sqlite3_finalize(st);
	sqlite3_finalize(dst);
	return rc;
}
