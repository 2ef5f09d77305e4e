/*
 * timeutil.c: clocks and Go-style durations (spec/config.md section 1:
 * sconf durations use Go's syntax: 72h, 1h30m, 1.5s; no d or w units).
 * Pure except the clock reads; any thread.
 */
#include <string.h>
#include <stdbool.h>
#include <time.h>

#include "buf.h"
#include "timeutil.h"
#include "banned.h"

static int64_t
clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * NS_PER_SEC + ts.tv_nsec;
}

int64_t
time_mono_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

int64_t
time_mono_ms(void)
{
	return time_mono_ns() / NS_PER_MS;
}

int64_t
time_wall_ns(void)
{
	return clock_ns(CLOCK_REALTIME);
}

static const struct {
	const char *name;
	int64_t ns;
} units[] = {
	{ "ns", 1 },
	{ "us", 1000 },
	{ "\xc2\xb5s", 1000 }, /* U+00B5 micro sign */
	{ "\xce\xbcs", 1000 }, /* U+03BC Greek mu */
	{ "ms", NS_PER_MS },
	{ "s", NS_PER_SEC },
	{ "m", 60 * NS_PER_SEC },
	{ "h", 3600 * NS_PER_SEC },
};

int
time_parse_duration(const char *s, int64_t *ns_out, const char **why)
{
	const char *p = s;
	bool neg = false;
	unsigned __int128 total = 0;

	if (*p == '-' || *p == '+')
		neg = *p++ == '-';
	if (strcmp(p, "0") == 0) {
		*ns_out = 0;
		return 0;
	}
	if (*p == '\0')
		goto bad;
	while (*p != '\0') {
		uint64_t whole = 0, frac = 0, scale = 1;
		bool digits = false;
		size_t best = 0, blen = 0;

		while (*p >= '0' && *p <= '9') {
			if (whole > (UINT64_MAX - 9) / 10)
				goto range;
			whole = whole * 10 + (uint64_t)(*p++ - '0');
			digits = true;
		}
		if (*p == '.') {
			p++;
			while (*p >= '0' && *p <= '9') {
				if (scale < UINT64_C(1000000000000000000)) {
					frac = frac * 10 + (uint64_t)(*p - '0');
					scale *= 10;
				}
				p++;
				digits = true;
			}
		}
		if (!digits)
			goto bad;
		for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
			size_t n = strlen(units[i].name);

			if (strncmp(p, units[i].name, n) == 0 && n > blen) {
				best = i;
				blen = n;
			}
		}
		if (blen == 0) {
			*why = "missing or unknown unit in duration (use ns, us, "
			       "ms, s, m or h)";
			return -1;
		}
		p += blen;
		total += (unsigned __int128)whole * (uint64_t)units[best].ns;
		total += (unsigned __int128)frac * (uint64_t)units[best].ns /
		    scale;
		if (total > (unsigned __int128)INT64_MAX)
			goto range;
	}
	*ns_out = neg ? -(int64_t)total : (int64_t)total;
	return 0;
bad:
	*why = "invalid duration (examples: 72h, 1h30m, 15s)";
	return -1;
range:
	*why = "duration out of range";
	return -1;
}

/* Append v / unit with the fraction's trailing zeros removed. */
static void
add_frac(struct buf *out, uint64_t v, uint64_t unit)
{
	uint64_t whole = v / unit, frac = v % unit;
	char digits[24];
	int n = 0;

	buf_addf(out, "%llu", (unsigned long long)whole);
	if (frac == 0)
		return;
	for (uint64_t u = unit / 10; u > 0; u /= 10) {
		digits[n++] = (char)('0' + frac / u % 10);
	}
	while (n > 0 && digits[n - 1] == '0')
		n--;
	buf_addc(out, '.');
	buf_add(out, digits, (size_t)n);
}

void
time_format_duration(struct buf *out, int64_t ns)
{
	uint64_t u;

	if (ns == 0) {
		buf_adds(out, "0s");
		return;
	}
	if (ns < 0) {
		buf_addc(out, '-');
		u = (uint64_t)0 - (uint64_t)ns;
	} else {
		u = (uint64_t)ns;
	}
	if (u < 1000) {
		buf_addf(out, "%lluns", (unsigned long long)u);
	} else if (u < (uint64_t)NS_PER_MS) {
		add_frac(out, u, 1000);
		buf_adds(out, "\xc2\xb5s");
	} else if (u < (uint64_t)NS_PER_SEC) {
		add_frac(out, u, (uint64_t)NS_PER_MS);
		buf_adds(out, "ms");
	} else {
		uint64_t h = u / (3600 * (uint64_t)NS_PER_SEC);
		uint64_t rest = u % (3600 * (uint64_t)NS_PER_SEC);
		uint64_t m = rest / (60 * (uint64_t)NS_PER_SEC);
		uint64_t s = rest % (60 * (uint64_t)NS_PER_SEC);

		if (h > 0)
			buf_addf(out, "%lluh", (unsigned long long)h);
		if (h > 0 || m > 0)
			buf_addf(out, "%llum", (unsigned long long)m);
		add_frac(out, s, (uint64_t)NS_PER_SEC);
		buf_addc(out, 's');
	}
}

void
time_format_rfc3339(struct buf *out, int64_t wall_ns)
{
	time_t t = (time_t)(wall_ns / NS_PER_SEC);
	struct tm tm;

	if (wall_ns < 0 && wall_ns % NS_PER_SEC != 0)
		t--;
	gmtime_r(&t, &tm);
	buf_addf(out, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
	    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}
