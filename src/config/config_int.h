/*
 * config_int.h: what the files of src/config share privately: the shared
 * static part of snapshots, the checks run at load, and name helpers.
 */
#ifndef CONFIG_CONFIG_INT_H
#define CONFIG_CONFIG_INT_H

#include <stdatomic.h>

#include "config/config.h"

/* mox.conf contents and paths, shared by every snapshot made from it. */
struct config_shared {
	atomic_int refs;
	struct config_static st;
	char *path;         /* mox.conf as given */
	char *dir;          /* its directory */
	char *domains_path; /* domains.conf beside it */
};

/* Apply mox.conf defaults and check it. file names it in messages.
 * Returns the number of errors appended to err. */
unsigned config_check_static(struct config_static *st, const char *file,
    struct buf *err);
/* Check c->dyn against c->st, set the "eff" members and build c->addrs.
 * Errors about mox.conf fields (Postmaster.Account) name static_file.
 * Returns the number of errors appended to err. */
unsigned config_check_dynamic(struct config *c, const char *static_file,
    const char *file, struct buf *err);
/* Check files named in the configuration can be read (config test).
 * Returns the number of errors. */
unsigned config_check_files(const struct config *c, struct buf *err);

/* Canonical form of a domain name: lower-case ASCII with A-labels
 * (RFC 5890). Returns a new string, or NULL with *why when invalid. */
char *config_domain_canon(const char *domain, const char **why);

/* Catchall separator i of domain d (LocalpartCatchallSeparator or
 * LocalpartCatchallSeparators), or NULL past the last. */
const char *config_separator(const struct config_domain *d, size_t i);

#endif
