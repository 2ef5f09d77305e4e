/*
 * timeutil.h: clocks and Go-style duration text (spec/config.md: sconf
 * durations like 72h, 1h30m, 15s). Pure except the clock reads.
 */
#ifndef LIB_TIMEUTIL_H
#define LIB_TIMEUTIL_H

#include <stdint.h>
#include <time.h>

struct buf;

#define NS_PER_MS INT64_C(1000000)
#define NS_PER_SEC INT64_C(1000000000)

/* Monotonic time in nanoseconds and milliseconds. */
int64_t time_mono_ns(void);
int64_t time_mono_ms(void);
/* Wall clock in nanoseconds since the epoch. */
int64_t time_wall_ns(void);

/* Parse a Go duration ("72h", "1h30m", "1.5s", "0s", "-5m") into
 * nanoseconds. Returns 0 or -1 with *why set. */
int time_parse_duration(const char *s, int64_t *ns_out, const char **why);
/* Format like Go's time.Duration.String(): 72h0m0s, 1.5s, 12ms, 0s. */
void time_format_duration(struct buf *out, int64_t ns);
/* RFC 3339 UTC with seconds: 2024-01-02T03:04:05Z. */
void time_format_rfc3339(struct buf *out, int64_t wall_ns);

#endif
