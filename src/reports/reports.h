/*
 * reports.h: reports.db in the data directory, the store of what DMARC
 * aggregate reports (RFC 7489 7.2; spec auth.md 9.2) are built from: one
 * row per stored evaluation, written by the SMTP server for each
 * recipient of an incoming message, read by the hourly report job.
 *
 * Threads: a struct reports is one SQLite connection and stays in one
 * thread (STYLE.md 8); open one per use. SQLite serializes writers of
 * the file across threads and processes (busy timeout). Blocks on disk.
 */
#ifndef REPORTS_REPORTS_H
#define REPORTS_REPORTS_H

#include <stddef.h>

struct buf;
struct dmarc_evaluation;

#define REPORTS_DB_NAME "reports.db"
#define REPORTS_BUSY_MS 10000 /* wait for another writer */
#define REPORTS_LIST_MAX 100000 /* evaluations returned by one list */

struct reports; /* opaque */

/* Open (creating if needed) <datadir>/reports.db with its tables.
 * Returns the handle or NULL with the reason appended to err. */
struct reports *reports_open(const char *datadir, struct buf *err);
void reports_close(struct reports *r); /* NULL-safe */

/* Store one evaluation (all its fields, DKIM results and rua addresses).
 * Returns 0, or -1 with err. Durable when it returns 0. */
int reports_dmarc_eval_add(struct reports *r,
    const struct dmarc_evaluation *e, struct buf *err);

/* All stored evaluations, oldest first, at most REPORTS_LIST_MAX. Returns
 * 0 with *out (free each with dmarc_evaluation_release(), then the array
 * with free()) and *n_out, or -1 with err. The static result strings are
 * the mailauth module's names. */
int reports_dmarc_eval_list(struct reports *r,
    struct dmarc_evaluation **out, size_t *n_out, struct buf *err);

#endif
