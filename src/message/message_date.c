/*
 * message_date.c: RFC 5322 3.3 date-time, with the obsolete forms of 4.3
 * (two- and three-digit years, named and military zones, CFWS anywhere).
 * Input is an untrusted raw field value. INTEROP: a missing day-of-week
 * comma, missing seconds and a missing zone (taken as UTC) are accepted.
 * Pure: any thread, no I/O, no logging.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "lib/buf.h"
#include "message/message.h"
#include "lib/banned.h"

#define DATE_TOKENS_MAX 12
#define DATE_TOKEN_MAX 32

static const char *const months[12] = { "jan", "feb", "mar", "apr", "may",
	"jun", "jul", "aug", "sep", "oct", "nov", "dec" };
static const char *const wdays[7] = { "sun", "mon", "tue", "wed", "thu",
	"fri", "sat" };

/* RFC 5322 4.3: obs-zone. Military zones carry no reliable meaning and
 * are taken as -0000, as the RFC says. */
static const struct {
	const char *name;
	int off;
} zones[] = {
	{ "ut", 0 }, { "utc", 0 }, { "gmt", 0 }, { "z", 0 },
	{ "est", -300 }, { "edt", -240 }, { "cst", -360 }, { "cdt", -300 },
	{ "mst", -420 }, { "mdt", -360 }, { "pst", -480 }, { "pdt", -420 },
};

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static int
days_in_month(int y, int m)
{
	static const int dm[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31,
		30, 31 };

	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return dm[m - 1];
}

/* Split into tokens on whitespace and ",", dropping comments. */
static size_t
tokenize(struct span v, struct span *tok, size_t max)
{
	size_t n = 0, i = 0;

	while (i < v.len) {
		char c = v.p[i];
		size_t s;

		if (c == ' ' || c == '\t' || c == '\r' || c == '\n' ||
		    c == ',') {
			i++;
			continue;
		}
		if (c == '(') {
			int depth = 0;

			while (i < v.len) {
				char d = v.p[i++];

				if (d == '\\' && i < v.len)
					i++;
				else if (d == '(' && depth < 32)
					depth++;
				else if (d == ')' && --depth <= 0)
					break;
			}
			continue;
		}
		s = i;
		while (i < v.len && v.p[i] != ' ' && v.p[i] != '\t' &&
		    v.p[i] != '\r' && v.p[i] != '\n' && v.p[i] != ',' &&
		    v.p[i] != '(')
			i++;
		if (n == max)
			return max + 1;
		tok[n++] = span_of(v.p + s, i - s);
	}
	return n;
}

static int
name_index(struct span t, const char *const *names, size_t n)
{
	if (t.len < 3)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (strncasecmp(t.p, names[i], 3) == 0)
			return (int)i;
	return -1;
}

static int
parse_time(struct span t, int *h, int *mi, int *s)
{
	struct scan sc = scan_of(t);
	uint64_t a, b, c = 0;

	if (scan_u64(&sc, 23, &a) == -1 || scan_char(&sc, ':') == -1 ||
	    scan_u64(&sc, 59, &b) == -1)
		return -1;
	if (scan_char(&sc, ':') == 0 && scan_u64(&sc, 60, &c) == -1)
		return -1;
	if (!scan_eof(&sc))
		return -1;
	*h = (int)a;
	*mi = (int)b;
	*s = c == 60 ? 59 : (int)c; /* leap second */
	return 0;
}

static int
parse_zone(struct span t, int *off)
{
	if (t.len == 5 && (t.p[0] == '+' || t.p[0] == '-')) {
		uint64_t hh, mm;

		if (span_u64(span_of(t.p + 1, 2), 99, &hh) == -1 ||
		    span_u64(span_of(t.p + 3, 2), 59, &mm) == -1)
			return -1;
		*off = (int)(hh * 60 + mm) * (t.p[0] == '-' ? -1 : 1);
		return 0;
	}
	for (size_t i = 0; i < ARRAY_LEN(zones); i++)
		if (span_eq_ci(t, zones[i].name)) {
			*off = zones[i].off;
			return 0;
		}
	/* RFC 5322 4.3: military and unknown alphabetic zones mean -0000. */
	if (t.len < 1 || t.len > 5)
		return -1;
	for (size_t i = 0; i < t.len; i++)
		if (!char_is_alpha((unsigned char)t.p[i]))
			return -1;
	*off = 0;
	return 0;
}

int
message_date_parse(struct span value, int64_t *t_out, int *off_out,
    const char **why)
{
	struct span tok[DATE_TOKENS_MAX];
	size_t n, i = 0;
	uint64_t day, year;
	int mon, h, mi, s, off = 0;

	n = tokenize(value, tok, DATE_TOKENS_MAX);
	if (n > DATE_TOKENS_MAX || n < 4)
		goto bad;
	if (name_index(tok[0], wdays, 7) >= 0 && !char_is_digit(
	    (unsigned char)tok[0].p[0]))
		i++;
	if (n - i < 4)
		goto bad;
	if (span_u64(tok[i], 31, &day) == -1 || day == 0)
		goto bad;
	mon = name_index(tok[i + 1], months, 12);
	if (mon < 0 || tok[i + 1].len > 9)
		goto bad;
	if (span_u64(tok[i + 2], 9999, &year) == -1)
		goto bad;
	/* RFC 5322 4.3: obs-year. */
	if (tok[i + 2].len <= 2)
		year += year < 50 ? 2000 : 1900;
	else if (tok[i + 2].len == 3)
		year += 1900;
	if (year < 1900)
		goto bad;
	if (parse_time(tok[i + 3], &h, &mi, &s) == -1)
		goto bad;
	if (n - i >= 5 && parse_zone(tok[i + 4], &off) == -1)
		goto bad;
	if (n - i > 5 && (n - i > 6 || parse_zone(tok[i + 5], &off) == -1))
		goto bad; /* INTEROP: "+0000 GMT": a second zone is ignored */
	if ((int)day > days_in_month((int)year, mon + 1))
		goto bad;
	*t_out = days_from_civil((int64_t)year, mon + 1, (int)day) * 86400 +
	    h * 3600 + mi * 60 + s - (int64_t)off * 60;
	*off_out = off;
	return 0;
bad:
	*why = "malformed date";
	return -1;
}

int
message_date_format(int64_t t, int off, struct buf *out)
{
	time_t lt = (time_t)(t + (int64_t)off * 60);
	struct tm tm;
	int a = off < 0 ? -off : off;

	if (gmtime_r(&lt, &tm) == NULL)
		return -1;
	return buf_addf(out, "%s, %d %s %04d %02d:%02d:%02d %c%02d%02d",
	    (const char *[]){ "Sun", "Mon", "Tue", "Wed", "Thu", "Fri",
		"Sat" }[tm.tm_wday],
	    tm.tm_mday,
	    (const char *[]){ "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul",
		"Aug", "Sep", "Oct", "Nov", "Dec" }[tm.tm_mon],
	    tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec,
	    off < 0 ? '-' : '+', a / 60, a % 60);
}
