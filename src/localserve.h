/*
 * localserve.h: the configuration `mox localserve` writes.
 */
#ifndef LOCALSERVE_H
#define LOCALSERVE_H

#include <stddef.h>

struct buf;

/* mox.conf text for loopback listeners on ips, running as uid. */
void localserve_write_moxconf(struct buf *out, const char *const *ips,
    size_t nips, unsigned uid);
/* domains.conf text: domain localhost, account mox. */
void localserve_write_domainsconf(struct buf *out);
/* Create dir with every file localserve needs. On failure the directory
 * is removed again and -1 returned with the reason in err. */
int localserve_init_dir(const char *dir, const char *const *ips, size_t nips,
    struct buf *err);

#endif
