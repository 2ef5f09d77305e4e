/*
 * smtp_limit.c: per-IP limiters of the SMTP server (spec/smtp.md 2 and
 * 13): connection rate per fixed minute, open connections, and failed
 * authentications per minute and per day, each counted for three IP
 * classes at once (IPv4 /32, /26, /21; IPv6 /64, /48, /32). A request is
 * refused when any class would exceed its limit. The numbers come from
 * mox.conf Limits (smtp_limit_configure()), else the spec's defaults.
 *
 * Threads: a registry (DESIGN.md: per-IP counters) guarded by its own
 * lock, LOCK_ORDER_NET; any thread; nothing blocks under the lock.
 */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "lib/lock.h"
#include "lib/timeutil.h"
#include "lib/xmalloc.h"
#include "smtp/smtp_int.h"
#include "lib/banned.h"

#define LIMIT_MINUTE (60 * NS_PER_SEC)
#define LIMIT_DAY (86400 * NS_PER_SEC)
#define LIMIT_PRUNE_AT 4096 /* entries before idle ones are dropped */

struct limit_key {
	uint8_t addr[16];
	uint8_t bits;
	uint8_t v6;
};

struct limit_ent {
	struct limit_key key;
	unsigned conns;
	int64_t rate_win;
	unsigned rate;
	int64_t authm_win;
	unsigned authm;
	int64_t authd_win;
	unsigned authd;
};

_Static_assert(CONFIG_LIMITS_CLASSES == 3, "three IP classes");

static const uint8_t bits4[3] = { 32, 26, 21 };
static const uint8_t bits6[3] = { 64, 48, 32 };

/* Limits per class ip1 / ip2 / ip3: spec/smtp.md 13 until
 * smtp_limit_configure() (mox.conf Limits). Under reg.lock. */
static struct {
	struct lock lock;
	struct limit_ent *v;
	size_t n;
	unsigned rate[3];
	unsigned conns[3];
	unsigned authm[3];
	unsigned authd[3];
} reg = {
	.rate = CONFIG_CONNECTIONS_PER_MINUTE,
	.conns = CONFIG_OPEN_CONNECTIONS,
	.authm = CONFIG_AUTH_FAILURES_PER_MINUTE,
	.authd = CONFIG_AUTH_FAILURES_PER_DAY,
};
static pthread_once_t reg_once = PTHREAD_ONCE_INIT;

static void
reg_init(void)
{
	lock_init(&reg.lock, LOCK_ORDER_NET, "smtp limits");
}

void
smtp_limit_configure(const struct config_limits *l)
{
	pthread_once(&reg_once, reg_init);
	lock_take(&reg.lock);
	memcpy(reg.rate, l->eff.connections_per_minute, sizeof(reg.rate));
	memcpy(reg.conns, l->eff.open_connections, sizeof(reg.conns));
	memcpy(reg.authm, l->eff.auth_failures_per_minute, sizeof(reg.authm));
	memcpy(reg.authd, l->eff.auth_failures_per_day, sizeof(reg.authd));
	lock_release(&reg.lock);
}

static int
keys_of(const char *ip, struct limit_key keys[3])
{
	uint8_t a[16] = { 0 };
	bool v6 = strchr(ip, ':') != NULL;

	if (inet_pton(v6 ? AF_INET6 : AF_INET, ip, a) != 1)
		return -1;
	for (int i = 0; i < 3; i++) {
		unsigned bits = v6 ? bits6[i] : bits4[i];

		memset(&keys[i], 0, sizeof(keys[i]));
		for (unsigned b = 0; b < bits; b++)
			if (a[b / 8] & (0x80 >> (b % 8)))
				keys[i].addr[b / 8] |= (uint8_t)(0x80 >> (b % 8));
		keys[i].bits = (uint8_t)bits;
		keys[i].v6 = v6;
	}
	return 0;
}

static bool
ent_idle(const struct limit_ent *e, int64_t now)
{
	return e->conns == 0 && e->rate_win != now / LIMIT_MINUTE &&
	    e->authm_win != now / LIMIT_MINUTE && e->authd_win != now / LIMIT_DAY;
}

static struct limit_ent *
ent_get(const struct limit_key *k, int64_t now)
{
	LOCK_ASSERT_HELD(&reg.lock);
	for (size_t i = 0; i < reg.n; i++)
		if (memcmp(&reg.v[i].key, k, sizeof(*k)) == 0)
			return &reg.v[i];
	if (reg.n >= LIMIT_PRUNE_AT) {
		size_t w = 0;

		for (size_t i = 0; i < reg.n; i++)
			if (!ent_idle(&reg.v[i], now))
				reg.v[w++] = reg.v[i];
		reg.n = w;
	}
	reg.v = xreallocarray(reg.v, reg.n + 1, sizeof(*reg.v));
	memset(&reg.v[reg.n], 0, sizeof(reg.v[reg.n]));
	reg.v[reg.n].key = *k;
	return &reg.v[reg.n++];
}

/* Bring the fixed windows of e to now. */
static void
ent_roll(struct limit_ent *e, int64_t now)
{
	if (e->rate_win != now / LIMIT_MINUTE) {
		e->rate_win = now / LIMIT_MINUTE;
		e->rate = 0;
	}
	if (e->authm_win != now / LIMIT_MINUTE) {
		e->authm_win = now / LIMIT_MINUTE;
		e->authm = 0;
	}
	if (e->authd_win != now / LIMIT_DAY) {
		e->authd_win = now / LIMIT_DAY;
		e->authd = 0;
	}
}

enum smtp_limit_verdict
smtp_limit_conn_start(const char *ip, bool submission, int64_t now)
{
	struct limit_key keys[3];
	struct limit_ent *e[3];
	enum smtp_limit_verdict v = SMTP_LIMIT_OK;

	if (keys_of(ip, keys) == -1)
		return SMTP_LIMIT_OK;
	pthread_once(&reg_once, reg_init);
	lock_take(&reg.lock);
	for (int i = 0; i < 3; i++) {
		e[i] = ent_get(&keys[i], now);
		ent_roll(e[i], now);
	}
	/* ent_get may move the array: look the entries up again. */
	for (int i = 0; i < 3; i++)
		e[i] = ent_get(&keys[i], now);
	for (int i = 0; i < 3 && v == SMTP_LIMIT_OK; i++)
		if (e[i]->rate + 1 > reg.rate[i])
			v = SMTP_LIMIT_RATE;
	if (v == SMTP_LIMIT_OK)
		for (int i = 0; i < 3; i++)
			e[i]->rate++;
	for (int i = 0; i < 3 && v == SMTP_LIMIT_OK && submission; i++)
		if (e[i]->authm + 1 > reg.authm[i] ||
		    e[i]->authd + 1 > reg.authd[i])
			v = SMTP_LIMIT_AUTH;
	for (int i = 0; i < 3 && v == SMTP_LIMIT_OK; i++)
		if (e[i]->conns + 1 > reg.conns[i])
			v = SMTP_LIMIT_CONNS;
	if (v == SMTP_LIMIT_OK)
		for (int i = 0; i < 3; i++)
			e[i]->conns++;
	lock_release(&reg.lock);
	return v;
}

void
smtp_limit_conn_end(const char *ip)
{
	struct limit_key keys[3];

	if (keys_of(ip, keys) == -1)
		return;
	pthread_once(&reg_once, reg_init);
	lock_take(&reg.lock);
	for (size_t i = 0; i < reg.n; i++)
		for (int k = 0; k < 3; k++)
			if (memcmp(&reg.v[i].key, &keys[k], sizeof(keys[k])) == 0 &&
			    reg.v[i].conns > 0)
				reg.v[i].conns--;
	lock_release(&reg.lock);
}

void
smtp_limit_auth_failed(const char *ip, int64_t now)
{
	struct limit_key keys[3];

	if (keys_of(ip, keys) == -1)
		return;
	pthread_once(&reg_once, reg_init);
	lock_take(&reg.lock);
	for (int i = 0; i < 3; i++) {
		struct limit_ent *e = ent_get(&keys[i], now);

		ent_roll(e, now);
		e->authm++;
		e->authd++;
	}
	lock_release(&reg.lock);
}

void
smtp_limit_auth_ok(const char *ip)
{
	struct limit_key keys[3];

	if (keys_of(ip, keys) == -1)
		return;
	pthread_once(&reg_once, reg_init);
	lock_take(&reg.lock);
	/* spec/smtp.md 5: success resets the IP's failure count. */
	for (size_t i = 0; i < reg.n; i++)
		if (memcmp(&reg.v[i].key, &keys[0], sizeof(keys[0])) == 0) {
			reg.v[i].authm = 0;
			reg.v[i].authd = 0;
		}
	lock_release(&reg.lock);
}
