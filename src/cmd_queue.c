/*
 * cmd_queue.c: `mox queue ...` and `mox-queue ...` (spec/queue.md 13,
 * spec/config.md 7): list and change queued messages (hold, schedule,
 * transport, requiretls, fail, drop, dump), hold rules, retired messages,
 * suppressions and webhooks. Human readable lines like mox prints them,
 * or JSON with -json on the list and lookup commands.
 *
 * Trust: the operator runs these; flags and arguments are checked here
 * and reach SQL only as bound parameters (src/queue/queue_admin.c). The
 * queue database is used directly (WAL), with or without a running
 * server; the runner notices changes by PRAGMA data_version.
 * Threads: main thread of the process.
 */
#include <ctype.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cmd_queue.h"
#include "config/config.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "lib/timeutil.h"
#include "lib/xmalloc.h"
#include "queue/queue.h"
#include "lib/banned.h"

#define QCMD_ERR_MAX 4096          /* an error text from the queue */
#define QCMD_LINE_MAX (64u * 1024) /* one output line */
#define QCMD_JSON_MAX (1u << 30)   /* one record printed as JSON */
#define QCMD_IDS_MAX 10000         /* ids in one -ids flag */

/* Flags a command may accept (bit per flag). */
enum {
	O_IDS = 1u << 0,
	O_N = 1u << 1,
	O_ACCOUNT = 1u << 2,
	O_FROM = 1u << 3,
	O_TO = 1u << 4,
	O_SUBMITTED = 1u << 5,
	O_NEXT = 1u << 6,
	O_LAST = 1u << 7,
	O_TRANSPORT = 1u << 8,
	O_HOLD = 1u << 9,
	O_RESULT = 1u << 10,
	O_EVENT = 1u << 11,
	O_SORT = 1u << 12,
	O_ASC = 1u << 13,
	O_JSON = 1u << 14,
	O_NOW = 1u << 15,
	O_SENDERDOM = 1u << 16,
	O_RCPTDOM = 1u << 17,
};

/* spec/queue.md 13: the filters of each kind of record. */
#define QFILTER                                                          \
	(O_IDS | O_N | O_ACCOUNT | O_FROM | O_TO | O_SUBMITTED | O_NEXT | \
	    O_TRANSPORT | O_HOLD)
#define RFILTER                                                          \
	(O_IDS | O_N | O_ACCOUNT | O_FROM | O_TO | O_SUBMITTED | O_LAST | \
	    O_TRANSPORT | O_RESULT)
#define HFILTER (O_IDS | O_N | O_ACCOUNT | O_SUBMITTED | O_NEXT | O_EVENT)
#define HRFILTER (O_IDS | O_N | O_ACCOUNT | O_SUBMITTED | O_LAST | O_EVENT)
#define SORTFLAGS (O_SORT | O_ASC | O_JSON)

static const struct {
	const char *name;
	unsigned bit;
	bool is_bool;
} flagdefs[] = {
	{ "ids", O_IDS, false },
	{ "n", O_N, false },
	{ "account", O_ACCOUNT, false },
	{ "from", O_FROM, false },
	{ "to", O_TO, false },
	{ "submitted", O_SUBMITTED, false },
	{ "nextattempt", O_NEXT, false },
	{ "lastactivity", O_LAST, false },
	{ "transport", O_TRANSPORT, false },
	{ "hold", O_HOLD, false },
	{ "result", O_RESULT, false },
	{ "event", O_EVENT, false },
	{ "sort", O_SORT, false },
	{ "asc", O_ASC, true },
	{ "json", O_JSON, true },
	{ "now", O_NOW, true },
	{ "senderdom", O_SENDERDOM, false },
	{ "recipientdom", O_RCPTDOM, false },
};

/* spec/queue.md 13: webhook events. */
static const char *const events[] = { "incoming", "delivered", "suppressed",
	"delayed", "failed", "relayed", "expanded", "canceled", "unrecognized" };

/* One command's parsed flags. */
struct opts {
	struct queue_filter f;
	int64_t *ids; /* owned; f.ids points here */
	bool json;
	bool now;
	char *senderdom;    /* owned, lower case */
	char *recipientdom; /* owned, lower case */
};

static void
opts_release(struct opts *o)
{
	free(o->ids);
	free(o->senderdom);
	free(o->recipientdom);
}

/* ---- usage and argument checks ---- */

static size_t
count_words(const char *words)
{
	size_t n = 1;

	for (const char *p = words; *p != '\0'; p++)
		if (*p == ' ')
			n++;
	return n;
}

/* Usage of the command with words (starting "queue "): under the tool the
 * program name stands for "queue", so the rest of the words go first. */
static int
usage(const char *words, const char *args)
{
	struct buf b;
	int rc;

	if (strcmp(cli.prog, "mox") == 0)
		return cli_usage(words, args);
	buf_init(&b, QCMD_LINE_MAX);
	buf_addf(&b, "%s%s%s", words + strlen("queue "), *args ? " " : "",
	    args);
	rc = cli_usage(words, b.data);
	buf_release(&b);
	return rc;
}

/* A positive int64 in decimal, the whole of s. */
static int
parse_id(const char *s, int64_t *out)
{
	char *end = NULL;
	long long v;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v <= 0)
		return -1;
	*out = (int64_t)v;
	return 0;
}

/* Go's strconv.ParseBool. */
static int
parse_bool(const char *s, bool *out)
{
	static const char *const t[] = { "1", "t", "T", "TRUE", "true", "True" };
	static const char *const f[] = { "0", "f", "F", "FALSE", "false",
		"False" };

	for (size_t i = 0; i < ARRAY_LEN(t); i++) {
		if (strcmp(s, t[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcmp(s, f[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -1;
}

static int
parse_ids(const char *v, struct opts *o)
{
	const char *p = v;

	free(o->ids);
	o->ids = NULL;
	o->f.nids = 0;
	if (*v == '\0')
		return -1;
	while (*p != '\0') {
		size_t n = strcspn(p, ",");
		char tmp[32];
		int64_t id;

		if (n == 0 || n >= sizeof(tmp) || o->f.nids >= QCMD_IDS_MAX)
			return -1;
		memcpy(tmp, p, n);
		tmp[n] = '\0';
		if (parse_id(tmp, &id) == -1)
			return -1;
		o->ids = xreallocarray(o->ids, o->f.nids + 1, sizeof(*o->ids));
		o->ids[o->f.nids++] = id;
		p += n;
		if (*p == ',' && *++p == '\0')
			return -1;
	}
	o->f.ids = o->ids;
	return 0;
}

/* spec/queue.md 13: "<d" or ">d", d a Go duration (may be negative) or
 * "now": compared with now + d. */
static int
parse_when(const char *v, int *cmp_out, int64_t *ns_out)
{
	int64_t d = 0;
	const char *why;

	if (v[0] != '<' && v[0] != '>')
		return -1;
	if (strcmp(v + 1, "now") != 0 &&
	    time_parse_duration(v + 1, &d, &why) == -1)
		return -1;
	*cmp_out = v[0];
	*ns_out = time_wall_ns() + d;
	return 0;
}

/* A domain for a hold rule: ASCII lower case, no space or "@". */
static char *
parse_domain(const char *v)
{
	char *d;

	if (*v == '\0' || strcspn(v, " \t@,;<>") != strlen(v))
		return NULL;
	d = xstrdup(v);
	for (char *p = d; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	return d;
}

/* Apply one flag with its value; prints the problem and returns -1. */
static int
apply_flag(struct opts *o, unsigned allowed, unsigned bit, const char *name,
    const char *v)
{
	struct queue_filter *f = &o->f;
	bool b;

	switch (bit) {
	case O_IDS:
		if (parse_ids(v, o) == -1)
			goto bad;
		return 0;
	case O_N:
		if (strcmp(v, "0") == 0) {
			f->max = 0;
			return 0;
		}
		if (parse_id(v, &f->max) == -1)
			goto bad;
		return 0;
	case O_ACCOUNT:
		f->account = v;
		return 0;
	case O_FROM:
		f->from = v;
		return 0;
	case O_TO:
		f->to = v;
		return 0;
	case O_SUBMITTED:
		if (parse_when(v, &f->cmp_submitted, &f->submitted_ns) == -1)
			goto badwhen;
		return 0;
	case O_NEXT:
	case O_LAST:
		if (parse_when(v, &f->cmp_next, &f->next_ns) == -1)
			goto badwhen;
		return 0;
	case O_TRANSPORT:
		f->transport = v;
		return 0;
	case O_HOLD:
		if (parse_bool(v, &b) == -1)
			goto bad;
		f->hold = b;
		return 0;
	case O_RESULT:
		if (strcmp(v, "success") == 0)
			f->result = 1;
		else if (strcmp(v, "failure") == 0)
			f->result = 0;
		else
			goto bad;
		return 0;
	case O_EVENT:
		for (size_t i = 0; i < ARRAY_LEN(events); i++)
			if (strcmp(v, events[i]) == 0) {
				f->event = events[i];
				return 0;
			}
		cli_errorf("invalid value \"%s\" for flag -%s: want one of "
			   "incoming, delivered, suppressed, delayed, failed, "
			   "relayed, expanded, canceled, unrecognized",
		    v, name);
		return -1;
	case O_SORT:
		if (strcmp(v, "queued") == 0)
			f->sort_queued = true;
		else if ((strcmp(v, "nextattempt") == 0 && (allowed & O_NEXT)) ||
		    (strcmp(v, "lastactivity") == 0 && (allowed & O_LAST)))
			f->sort_queued = false;
		else {
			cli_errorf("invalid value \"%s\" for flag -sort: want "
				   "%s or queued",
			    v, (allowed & O_LAST) ? "lastactivity"
						  : "nextattempt");
			return -1;
		}
		return 0;
	case O_ASC:
	case O_JSON:
	case O_NOW:
		if (parse_bool(v, &b) == -1)
			goto bad;
		if (bit == O_ASC)
			f->asc = b;
		else if (bit == O_JSON)
			o->json = b;
		else
			o->now = b;
		return 0;
	case O_SENDERDOM:
	case O_RCPTDOM: {
		char *d = parse_domain(v);

		if (d == NULL)
			goto bad;
		if (bit == O_SENDERDOM) {
			free(o->senderdom);
			o->senderdom = d;
		} else {
			free(o->recipientdom);
			o->recipientdom = d;
		}
		return 0;
	}
	}
bad:
	cli_errorf("invalid value \"%s\" for flag -%s", v, name);
	return -1;
badwhen:
	cli_errorf("invalid value \"%s\" for flag -%s: want \"<\" or \">\" "
		   "and a duration relative to now, like \"<-1h\", \">30m\" "
		   "or \"<now\"",
	    v, name);
	return -1;
}

/* Parse flags after the command words, Go style: -name value,
 * -name=value, --name; bool flags take no value unless given with "=".
 * Parsing stops at "--", at the first argument not starting with "-", or
 * at one like "-1h" (a negative duration argument). Then the number of
 * arguments left must be in [min, max]. *pos_out gets the index of the
 * first. Returns 0, or CLI_USAGE after printing the problem and usage. */
static int
parse_args(int argc, char **argv, const char *words, const char *synopsis,
    unsigned allowed, int min, int max, struct opts *o, int *pos_out)
{
	int i = (int)count_words(words);

	memset(o, 0, sizeof(*o));
	queue_filter_init(&o->f);
	for (; i < argc; i++) {
		const char *a = argv[i], *name, *eq, *v;
		size_t k, nlen;

		if (a[0] != '-' || a[1] == '\0' ||
		    (a[1] >= '0' && a[1] <= '9'))
			break;
		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
		name = a[1] == '-' ? a + 2 : a + 1;
		eq = strchr(name, '=');
		nlen = eq != NULL ? (size_t)(eq - name) : strlen(name);
		for (k = 0; k < ARRAY_LEN(flagdefs); k++)
			if (strlen(flagdefs[k].name) == nlen &&
			    strncmp(flagdefs[k].name, name, nlen) == 0 &&
			    (allowed & flagdefs[k].bit))
				break;
		if (k == ARRAY_LEN(flagdefs)) {
			cli_errorf("unknown flag -%.*s", (int)nlen, name);
			goto usage;
		}
		if (eq != NULL)
			v = eq + 1;
		else if (flagdefs[k].is_bool)
			v = "true";
		else if (i + 1 < argc)
			v = argv[++i];
		else {
			cli_errorf("flag -%s needs a value", flagdefs[k].name);
			goto usage;
		}
		if (apply_flag(o, allowed, flagdefs[k].bit, flagdefs[k].name,
			v) == -1)
			goto usage;
	}
	if (argc - i < min || argc - i > max) {
		if (argc - i > max && argv[i][0] == '-')
			cli_errorf("flags must come before the arguments: %s",
			    argv[i]);
		else
			cli_errorf("%s arguments", argc - i < min ? "missing"
								: "too many");
		goto usage;
	}
	*pos_out = i;
	return 0;
usage:
	opts_release(o);
	memset(o, 0, sizeof(*o));
	return usage(words, synopsis);
}

/* ---- opening the queue ---- */

/* Load the config and open the queue of its data directory; prints the
 * reason and returns -1 on failure. The config becomes the current one
 * (config_get()); *cfg_out, when not NULL, gets a reference. Undo with
 * close_queue(). */
static int
open_queue(struct queue **q_out, struct config **cfg_out)
{
	struct config *cfg = NULL;
	struct buf err;
	char *datadir = NULL;
	struct queue *q = NULL;
	int rc = -1;

	buf_init(&err, CONFIG_ERR_MAX);
	if (config_load(cli.config_path, &cfg, &err) == -1) {
		cli_errorf("loading config %s:\n%s", cli.config_path, err.data);
		goto out;
	}
	datadir = config_path(cfg, cfg->st->data_dir);
	/* The queue's fail/drop path reads the current config (DSN host
	 * name, retention, webhooks), as in the server. */
	config_set_current(cfg);
	cfg = NULL;
	q = queue_open(datadir, &err);
	if (q == NULL) {
		cli_errorf("opening queue in %s: %s", datadir, err.data);
		config_set_current(NULL);
		goto out;
	}
	*q_out = q;
	if (cfg_out != NULL)
		*cfg_out = config_get();
	rc = 0;
out:
	config_free(cfg);
	free(datadir);
	buf_release(&err);
	return rc;
}

/* Undo open_queue(): close q, release cfg (NULL-safe) and the current
 * config. */
static void
close_queue(struct queue *q, struct config *cfg)
{
	queue_close(q);
	config_put(cfg);
	config_set_current(NULL);
}

/* ---- output helpers ---- */

/* Go's %q for s (ASCII control bytes and quotes escaped). */
static void
add_quoted(struct buf *b, const char *s)
{
	buf_addc(b, '"');
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"':
			buf_adds(b, "\\\"");
			break;
		case '\\':
			buf_adds(b, "\\\\");
			break;
		case '\n':
			buf_adds(b, "\\n");
			break;
		case '\r':
			buf_adds(b, "\\r");
			break;
		case '\t':
			buf_adds(b, "\\t");
			break;
		default:
			if (*p < 0x20 || *p == 0x7f)
				buf_addf(b, "\\x%02x", *p);
			else
				buf_addc(b, (char)*p);
		}
	}
	buf_addc(b, '"');
}

/* Duration d rounded to seconds (half away from zero), Go format. */
static void
add_dur(struct buf *b, int64_t d)
{
	int64_t r = d >= 0 ? (d + NS_PER_SEC / 2) / NS_PER_SEC
			   : -((-d + NS_PER_SEC / 2) / NS_PER_SEC);

	time_format_duration(b, r * NS_PER_SEC);
}

static void
add_time(struct buf *b, int64_t ns)
{
	time_format_rfc3339(b, ns);
}

static int
flush_line(struct buf *b)
{
	int rc = 0;

	if (fwrite(b->data, 1, b->len, stdout) != b->len)
		rc = -1;
	buf_reset(b);
	return rc;
}

static int
finish_stdout(void)
{
	if (fflush(stdout) == EOF || ferror(stdout)) {
		cli_errorf("writing output: %s", log_strerror(errno));
		return 1;
	}
	return 0;
}

static json_object *
j_time(int64_t ns)
{
	struct buf b;
	json_object *o;

	if (ns == 0)
		return NULL; /* JSON null */
	buf_init(&b, 64);
	add_time(&b, ns);
	o = json_object_new_string(b.data);
	buf_release(&b);
	return o;
}

static void
j_str(json_object *o, const char *k, const char *v)
{
	json_object_object_add(o, k, json_object_new_string(v != NULL ? v : ""));
}

static void
j_int(json_object *o, const char *k, int64_t v)
{
	json_object_object_add(o, k, json_object_new_int64(v));
}

static void
j_bool(json_object *o, const char *k, bool v)
{
	json_object_object_add(o, k, json_object_new_boolean(v));
}

/* Print v indented (tabs, as mox's JSON encoder) and release it. */
static int
print_json(json_object *v)
{
	const char *s = json_object_to_json_string_ext(v,
	    JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_PRETTY_TAB |
		JSON_C_TO_STRING_NOSLASHESCAPE);

	fputs(s, stdout);
	fputc('\n', stdout);
	json_object_put(v);
	return finish_stdout();
}

/* ---- hold rules ---- */

int
cmd_queue_holdrules_list(int argc, char **argv)
{
	static const char words[] = "queue holdrules list";
	struct queue *q = NULL;
	struct queue_hold_rule *v = NULL;
	struct opts o;
	struct buf err, line;
	size_t n = 0;
	int pos, rc;

	rc = parse_args(argc, argv, words, "[-json]", O_JSON, 0, 0, &o, &pos);
	if (rc != 0)
		return rc;
	rc = 1;
	buf_init(&err, QCMD_ERR_MAX);
	buf_init(&line, QCMD_LINE_MAX);
	if (open_queue(&q, NULL) == -1)
		goto out;
	if (queue_hold_rule_list(q, &v, &n, &err) == -1) {
		cli_errorf("listing hold rules: %s", err.data);
		goto out;
	}
	if (o.json) {
		json_object *a = json_object_new_array();

		for (size_t i = 0; i < n; i++) {
			json_object *r = json_object_new_object();

			j_int(r, "ID", v[i].id);
			j_str(r, "Account", v[i].account);
			j_str(r, "SenderDomain", v[i].sender_domain);
			j_str(r, "RecipientDomain", v[i].recipient_domain);
			json_object_array_add(a, r);
		}
		rc = print_json(a);
		goto out;
	}
	buf_adds(&line, "hold rules:\n");
	for (size_t i = 0; i < n; i++) {
		const char *sep = "";

		buf_addf(&line, "id %lld: ", (long long)v[i].id);
		if (*v[i].account != '\0') {
			buf_adds(&line, "account ");
			add_quoted(&line, v[i].account);
			sep = ", ";
		}
		if (*v[i].sender_domain != '\0') {
			buf_addf(&line, "%ssender domain ", sep);
			add_quoted(&line, v[i].sender_domain);
			sep = ", ";
		}
		if (*v[i].recipient_domain != '\0') {
			buf_addf(&line, "%srecipient domain ", sep);
			add_quoted(&line, v[i].recipient_domain);
			sep = ", ";
		}
		if (*sep == '\0')
			buf_adds(&line, "all messages");
		buf_addc(&line, '\n');
		flush_line(&line);
	}
	if (n == 0)
		buf_adds(&line, "(none)\n");
	flush_line(&line);
	rc = finish_stdout();
out:
	queue_hold_rule_list_free(v, n);
	close_queue(q, NULL);
	opts_release(&o);
	buf_release(&err);
	buf_release(&line);
	return rc;
}

int
cmd_queue_holdrules_add(int argc, char **argv)
{
	static const char words[] = "queue holdrules add";
	struct queue *q = NULL;
	struct opts o;
	struct buf err;
	int64_t id = 0;
	int pos, rc;

	rc = parse_args(argc, argv, words,
	    "[-account account] [-senderdom domain] [-recipientdom domain]",
	    O_ACCOUNT | O_SENDERDOM | O_RCPTDOM, 0, 0, &o, &pos);
	if (rc != 0)
		return rc;
	rc = 1;
	buf_init(&err, QCMD_ERR_MAX);
	if (open_queue(&q, NULL) == -1)
		goto out;
	if (queue_hold_rule_add(q, o.f.account, o.senderdom, o.recipientdom,
		&id, &err) == -1) {
		cli_errorf("adding hold rule: %s", err.data);
		goto out;
	}
	printf("hold rule %lld added\n", (long long)id);
	rc = finish_stdout();
out:
	close_queue(q, NULL);
	opts_release(&o);
	buf_release(&err);
	return rc;
}

int
cmd_queue_holdrules_remove(int argc, char **argv)
{
	static const char words[] = "queue holdrules remove";
	struct queue *q = NULL;
	struct opts o;
	struct buf err;
	int64_t id;
	int pos, rc;

	rc = parse_args(argc, argv, words, "ruleid", 0, 1, 1, &o, &pos);
	if (rc != 0)
		return rc;
	if (parse_id(argv[pos], &id) == -1) {
		cli_errorf("invalid rule id \"%s\": want a positive number",
		    argv[pos]);
		return usage(words, "ruleid");
	}
	rc = 1;
	buf_init(&err, QCMD_ERR_MAX);
	if (open_queue(&q, NULL) == -1)
		goto out;
	if (queue_hold_rule_remove(q, id, &err) == -1) {
		cli_errorf("removing hold rule: %s", err.data);
		goto out;
	}
	rc = 0;
out:
	close_queue(q, NULL);
	opts_release(&o);
	buf_release(&err);
	return rc;
}

/* ---- queued and retired messages ---- */

static json_object *
item_json(const struct queue_item *it, bool retired)
{
	json_object *r = json_object_new_object();

	j_int(r, "ID", it->id);
	json_object_object_add(r, "Queued", j_time(it->queued_ns));
	j_str(r, "SenderAccount", it->account);
	j_str(r, "Sender", it->sender);
	j_str(r, "Recipient", it->recipient);
	j_int(r, "Attempts", it->attempts);
	if (retired) {
		j_bool(r, "Success", it->success);
		json_object_object_add(r, "LastActivity",
		    j_time(it->next_attempt_ns));
	} else {
		j_bool(r, "Hold", it->hold);
		json_object_object_add(r, "NextAttempt",
		    j_time(it->next_attempt_ns));
	}
	json_object_object_add(r, "LastAttempt", j_time(it->last_attempt_ns));
	j_str(r, "Transport", it->transport);
	j_str(r, "LastError", it->last_error);
	return r;
}

static int
list_items(int argc, char **argv, bool retired)
{
	const char *words = retired ? "queue retired list" : "queue list";
	const char *syn = retired
	    ? "[-ids 1,2] [-n N] [-account a] [-from s] [-to s] "
	      "[-submitted <dur|>dur] [-lastactivity <dur|>dur] [-transport "
	      "name] [-result success|failure] [-sort lastactivity|queued] "
	      "[-asc] [-json]"
	    : "[-ids 1,2] [-n N] [-account a] [-from s] [-to s] [-hold "
	      "true|false] [-submitted <dur|>dur] [-nextattempt <dur|>dur] "
	      "[-transport name] [-sort nextattempt|queued] [-asc] [-json]";
	struct queue *q = NULL;
	struct queue_item *v = NULL;
	struct opts o;
	struct buf err, line;
	size_t n = 0;
	int64_t now;
	int pos, rc;

	rc = parse_args(argc, argv, words, syn,
	    (retired ? RFILTER : QFILTER) | SORTFLAGS, 0, 0, &o, &pos);
	if (rc != 0)
		return rc;
	rc = 1;
	buf_init(&err, QCMD_ERR_MAX);
	buf_init(&line, QCMD_LINE_MAX);
	if (open_queue(&q, NULL) == -1)
		goto out;
	if ((retired ? queue_retired_list(q, &o.f, &v, &n, &err)
		     : queue_admin_list(q, &o.f, &v, &n, &err)) == -1) {
		cli_errorf("listing %s: %s",
		    retired ? "retired messages" : "queue", err.data);
		goto out;
	}
	if (o.json) {
		json_object *a = json_object_new_array();

		for (size_t i = 0; i < n; i++)
			json_object_array_add(a, item_json(&v[i], retired));
		rc = print_json(a);
		goto out;
	}
	now = time_wall_ns();
	buf_adds(&line, retired ? "retired messages:\n" : "messages:\n");
	for (size_t i = 0; i < n; i++) {
		const struct queue_item *it = &v[i];

		buf_addf(&line, "%5lld ", (long long)it->id);
		add_time(&line, it->queued_ns);
		if (retired)
			buf_adds(&line, it->success ? " success" : " failure");
		buf_addf(&line, " from:%s to:%s ",
		    *it->sender != '\0' ? it->sender : "<>", it->recipient);
		if (!retired) {
			buf_adds(&line, "next ");
			add_dur(&line, it->next_attempt_ns - now);
			buf_addc(&line, ' ');
		}
		buf_adds(&line, "last ");
		if (it->last_attempt_ns != 0)
			add_dur(&line, now - it->last_attempt_ns);
		buf_adds(&line, " error ");
		add_quoted(&line, it->last_error);
		buf_addc(&line, '\n');
		flush_line(&line);
	}
	if (n == 0)
		buf_adds(&line, "(none)\n");
	flush_line(&line);
	rc = finish_stdout();
out:
	queue_item_list_free(v, n);
	close_queue(q, NULL);
	opts_release(&o);
	buf_release(&err);
	buf_release(&line);
	return rc;
}

int
cmd_queue_list(int argc, char **argv)
{
	return list_items(argc, argv, false);
}

int
cmd_queue_retired_list(int argc, char **argv)
{
	return list_items(argc, argv, true);
}

#define QFILTER_SYN                                                     \
	"[-ids 1,2] [-n N] [-account a] [-from s] [-to s] [-hold "      \
	"true|false] [-submitted <dur|>dur] [-nextattempt <dur|>dur] " \
	"[-transport name]"

enum change { CH_HOLD, CH_UNHOLD, CH_SCHEDULE, CH_TRANSPORT, CH_REQUIRETLS,
	CH_FAIL, CH_DROP };

/* The commands that change the messages matching the filter flags. */
static int
change(int argc, char **argv, enum change what)
{
	const char *words = NULL, *syn = NULL;
	unsigned allowed = QFILTER;
	int nargs = 0;
	struct queue *q = NULL;
	struct config *cfg = NULL;
	struct opts o;
	struct buf err;
	int64_t count = 0, d = 0;
	enum queue_requiretls req = QUEUE_REQUIRETLS_UNSET;
	const char *arg = NULL, *why;
	int pos, rc, r = -1;

	switch (what) {
	case CH_HOLD:
		words = "queue hold";
		syn = QFILTER_SYN;
		break;
	case CH_UNHOLD:
		words = "queue unhold";
		syn = QFILTER_SYN;
		break;
	case CH_SCHEDULE:
		words = "queue schedule";
		syn = QFILTER_SYN " [-now] duration";
		allowed |= O_NOW;
		nargs = 1;
		break;
	case CH_TRANSPORT:
		words = "queue transport";
		syn = QFILTER_SYN " transport";
		nargs = 1;
		break;
	case CH_REQUIRETLS:
		words = "queue requiretls";
		syn = QFILTER_SYN " yes|no|default";
		nargs = 1;
		break;
	case CH_FAIL:
		words = "queue fail";
		syn = QFILTER_SYN;
		break;
	case CH_DROP:
		words = "queue drop";
		syn = QFILTER_SYN;
		break;
	}
	rc = parse_args(argc, argv, words, syn, allowed, nargs, nargs, &o,
	    &pos);
	if (rc != 0)
		return rc;
	if (nargs == 1)
		arg = argv[pos];
	if (what == CH_SCHEDULE &&
	    time_parse_duration(arg, &d, &why) == -1) {
		cli_errorf("invalid duration \"%s\": %s (like 1h, -30m, 0)",
		    arg, why);
		opts_release(&o);
		return usage(words, syn);
	}
	if (what == CH_REQUIRETLS) {
		if (strcmp(arg, "yes") == 0)
			req = QUEUE_REQUIRETLS_YES;
		else if (strcmp(arg, "no") == 0)
			req = QUEUE_REQUIRETLS_NO;
		else if (strcmp(arg, "default") != 0) {
			cli_errorf("invalid requiretls value \"%s\": want yes, "
				   "no or default",
			    arg);
			opts_release(&o);
			return usage(words, syn);
		}
	}
	rc = 1;
	buf_init(&err, QCMD_ERR_MAX);
	if (open_queue(&q, &cfg) == -1)
		goto out;
	switch (what) {
	case CH_HOLD:
	case CH_UNHOLD:
		r = queue_admin_hold(q, &o.f, what == CH_HOLD, &count, &err);
		break;
	case CH_SCHEDULE:
		r = queue_admin_schedule(q, &o.f, o.now, d, &count, &err);
		break;
	case CH_TRANSPORT: {
		size_t i = 0;

		/* An unknown name would fail every attempt: refuse it. */
		for (; *arg != '\0' && i < cfg->st->transports.n; i++)
			if (strcmp(cfg->st->transports.keys[i], arg) == 0)
				break;
		if (*arg != '\0' && i == cfg->st->transports.n) {
			cli_errorf("unknown transport \"%s\" (not in %s)", arg,
			    cfg->path);
			goto out;
		}
		r = queue_admin_transport(q, &o.f, arg, &count, &err);
		break;
	}
	case CH_REQUIRETLS:
		r = queue_admin_requiretls(q, &o.f, req, &count, &err);
		break;
	case CH_FAIL:
		r = queue_admin_fail(q, NULL, &o.f, &count, &err);
		break;
	case CH_DROP:
		r = queue_admin_drop(q, &o.f, &count, &err);
		break;
	}
	if (r == -1) {
		cli_errorf("%s: %s", words + strlen("queue "), err.data);
		goto out;
	}
	switch (what) {
	case CH_HOLD:
	case CH_UNHOLD:
		printf("%lld messages changed\n", (long long)count);
		break;
	case CH_SCHEDULE:
		printf("%lld message(s) rescheduled\n", (long long)count);
		break;
	case CH_TRANSPORT:
	case CH_REQUIRETLS:
		printf("%lld message(s) changed\n", (long long)count);
		break;
	case CH_FAIL:
		printf("%lld message(s) marked as failed\n", (long long)count);
		break;
	case CH_DROP:
		printf("%lld message(s) dropped\n", (long long)count);
		break;
	}
	rc = finish_stdout();
out:
	close_queue(q, cfg);
	opts_release(&o);
	buf_release(&err);
	return rc;
}

int
cmd_queue_hold(int argc, char **argv)
{
	return change(argc, argv, CH_HOLD);
}

int
cmd_queue_unhold(int argc, char **argv)
{
	return change(argc, argv, CH_UNHOLD);
}

int
cmd_queue_schedule(int argc, char **argv)
{
	return change(argc, argv, CH_SCHEDULE);
}

int
cmd_queue_transport(int argc, char **argv)
{
	return change(argc, argv, CH_TRANSPORT);
}

int
cmd_queue_requiretls(int argc, char **argv)
{
	return change(argc, argv, CH_REQUIRETLS);
}

int
cmd_queue_fail(int argc, char **argv)
{
	return change(argc, argv, CH_FAIL);
}

int
cmd_queue_drop(int argc, char **argv)
{
	return change(argc, argv, CH_DROP);
}

int
cmd_queue_dump(int argc, char **argv)
{
	static const char words[] = "queue dump";
	struct queue *q = NULL;
	struct opts o;
	struct buf err;
	int64_t id;
	int pos, rc;

	rc = parse_args(argc, argv, words, "id", 0, 1, 1, &o, &pos);
	if (rc != 0)
		return rc;
	if (parse_id(argv[pos], &id) == -1) {
		cli_errorf("invalid message id \"%s\": want a positive number",
		    argv[pos]);
		return usage(words, "id");
	}
	rc = 1;
	buf_init(&err, QCMD_ERR_MAX);
	if (open_queue(&q, NULL) == -1)
		goto out;
	if (fflush(stdout) == EOF ||
	    queue_admin_dump(q, id, fileno(stdout), &err) == -1) {
		cli_errorf("dump: %s", err.data);
		goto out;
	}
	rc = 0;
out:
	close_queue(q, NULL);
	opts_release(&o);
	buf_release(&err);
	return rc;
}

/* The "print id" commands: the record's JSON from the queue, indented. */
static int
print_record(int argc, char **argv, const char *words, int kind)
{
	struct queue *q = NULL;
	struct opts o;
	struct buf err, out;
	json_object *v = NULL;
	int64_t id;
	int pos, rc, r;

	rc = parse_args(argc, argv, words, "id", 0, 1, 1, &o, &pos);
	if (rc != 0)
		return rc;
	if (parse_id(argv[pos], &id) == -1) {
		cli_errorf("invalid id \"%s\": want a positive number",
		    argv[pos]);
		return usage(words, "id");
	}
	rc = 1;
	buf_init(&err, QCMD_ERR_MAX);
	buf_init(&out, QCMD_JSON_MAX);
	if (open_queue(&q, NULL) == -1)
		goto out;
	if (kind == 0)
		r = queue_retired_print(q, id, &out, &err);
	else
		r = queue_webhook_print(q, id, kind == 2, &out, &err);
	if (r == -1) {
		cli_errorf("%s", err.data);
		goto out;
	}
	v = json_tokener_parse(out.data);
	if (v == NULL) {
		fputs(out.data, stdout); /* as the queue gave it */
		rc = finish_stdout();
		goto out;
	}
	rc = print_json(v);
out:
	close_queue(q, NULL);
	opts_release(&o);
	buf_release(&err);
	buf_release(&out);
	return rc;
}

int
cmd_queue_retired_print(int argc, char **argv)
{
	return print_record(argc, argv, "queue retired print", 0);
}

/* ---- suppressions ---- */

static json_object *
supp_json(const struct queue_suppression *s)
{
	json_object *r = json_object_new_object();

	j_int(r, "ID", s->id);
	json_object_object_add(r, "Created", j_time(s->created_ns));
	j_str(r, "Account", s->account);
	j_str(r, "BaseAddress", s->base_address);
	j_str(r, "OriginalAddress", s->original_address);
	j_bool(r, "Manual", s->manual);
	j_str(r, "Reason", s->reason);
	return r;
}

int
cmd_queue_suppress_list(int argc, char **argv)
{
	static const char words[] = "queue suppress list";
	struct queue *q = NULL;
	struct queue_suppression *v = NULL;
	struct opts o;
	struct buf err, line;
	size_t n = 0;
	int pos, rc;

	rc = parse_args(argc, argv, words, "[-account account] [-json]",
	    O_ACCOUNT | O_JSON, 0, 0, &o, &pos);
	if (rc != 0)
		return rc;
	rc = 1;
	buf_init(&err, QCMD_ERR_MAX);
	buf_init(&line, QCMD_LINE_MAX);
	if (open_queue(&q, NULL) == -1)
		goto out;
	if (queue_suppress_list(q, o.f.account, &v, &n, &err) == -1) {
		cli_errorf("listing suppressions: %s", err.data);
		goto out;
	}
	if (o.json) {
		json_object *a = json_object_new_array();

		for (size_t i = 0; i < n; i++)
			json_object_array_add(a, supp_json(&v[i]));
		rc = print_json(a);
		goto out;
	}
	buf_adds(&line, "suppressions (account, address, manual, time added, "
			"base address, reason):\n");
	for (size_t i = 0; i < n; i++) {
		add_quoted(&line, v[i].account);
		buf_addc(&line, '\t');
		add_quoted(&line, v[i].original_address);
		buf_addf(&line, "\t%s\t", v[i].manual ? "Yes" : "No");
		add_time(&line, v[i].created_ns);
		buf_addc(&line, '\t');
		add_quoted(&line, v[i].base_address);
		buf_addc(&line, '\t');
		add_quoted(&line, v[i].reason);
		buf_addc(&line, '\n');
		flush_line(&line);
	}
	if (n == 0)
		buf_adds(&line, "(none)\n");
	flush_line(&line);
	rc = finish_stdout();
out:
	queue_suppression_list_free(v, n);
	close_queue(q, NULL);
	opts_release(&o);
	buf_release(&err);
	buf_release(&line);
	return rc;
}

/* localpart@domain with both parts non-empty and no space. */
static bool
is_address(const char *a)
{
	const char *at = strrchr(a, '@');

	return at != NULL && at != a && at[1] != '\0' &&
	    strcspn(a, " \t\r\n<>") == strlen(a);
}

/* suppress add and remove: account address. */
static int
suppress_change(int argc, char **argv, bool add)
{
	const char *words = add ? "queue suppress add" : "queue suppress remove";
	struct queue *q = NULL;
	struct config *cfg = NULL;
	struct opts o;
	struct buf err;
	const char *account, *address;
	int pos, rc;

	rc = parse_args(argc, argv, words, "account address", 0, 2, 2, &o,
	    &pos);
	if (rc != 0)
		return rc;
	account = argv[pos];
	address = argv[pos + 1];
	if (!is_address(address)) {
		cli_errorf("invalid address \"%s\": want localpart@domain",
		    address);
		return usage(words, "account address");
	}
	rc = 1;
	buf_init(&err, QCMD_ERR_MAX);
	if (open_queue(&q, &cfg) == -1)
		goto out;
	if (add && config_account_find(cfg, account) == NULL) {
		cli_errorf("unknown account \"%s\"", account);
		goto out;
	}
	if (add ? queue_suppress_add(q, account, address, true,
		      "added through mox cli", &err)
		: queue_suppress_remove(q, account, address, &err)) {
		cli_errorf("%s suppression: %s", add ? "adding" : "removing",
		    err.data);
		goto out;
	}
	rc = 0;
out:
	close_queue(q, cfg);
	opts_release(&o);
	buf_release(&err);
	return rc;
}

int
cmd_queue_suppress_add(int argc, char **argv)
{
	return suppress_change(argc, argv, true);
}

int
cmd_queue_suppress_remove(int argc, char **argv)
{
	return suppress_change(argc, argv, false);
}

/* Without -account, any account's suppression of the address counts
 * (mox: SuppressionLookup with an empty account). The library looks up
 * one account only, so match base addresses over the whole list. */
static int
lookup_any(struct queue *q, const char *address, struct queue_suppression *out,
    struct buf *err)
{
	struct queue_suppression *v = NULL;
	struct buf base;
	const char *at = strrchr(address, '@');
	char *lp = xstrndup(address, (size_t)(at - address));
	size_t n = 0;
	int rc = -1;

	buf_init(&base, 4096);
	queue_suppress_base(lp, at + 1, &base);
	if (queue_suppress_list(q, NULL, &v, &n, err) == -1)
		goto out;
	rc = 0;
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].base_address, base.data) == 0) {
			*out = v[i];
			memset(&v[i], 0, sizeof(v[i]));
			rc = 1;
			break;
		}
out:
	queue_suppression_list_free(v, n);
	buf_release(&base);
	free(lp);
	return rc;
}

int
cmd_queue_suppress_lookup(int argc, char **argv)
{
	static const char words[] = "queue suppress lookup";
	static const char syn[] = "[-account account] [-json] address";
	struct queue *q = NULL;
	struct config *cfg = NULL;
	struct queue_suppression s;
	struct opts o;
	struct buf err, line;
	const char *address;
	int pos, rc, r;

	memset(&s, 0, sizeof(s));
	rc = parse_args(argc, argv, words, syn, O_ACCOUNT | O_JSON, 1, 1, &o,
	    &pos);
	if (rc != 0)
		return rc;
	address = argv[pos];
	if (!is_address(address)) {
		cli_errorf("invalid address \"%s\": want localpart@domain",
		    address);
		opts_release(&o);
		return usage(words, syn);
	}
	rc = 1;
	buf_init(&err, QCMD_ERR_MAX);
	buf_init(&line, QCMD_LINE_MAX);
	if (open_queue(&q, &cfg) == -1)
		goto out;
	if (o.f.account != NULL && *o.f.account != '\0' &&
	    config_account_find(cfg, o.f.account) == NULL) {
		cli_errorf("unknown account \"%s\"", o.f.account);
		goto out;
	}
	if (o.f.account != NULL && *o.f.account != '\0')
		r = queue_suppress_lookup(q, o.f.account, address, &s, &err);
	else
		r = lookup_any(q, address, &s, &err);
	if (r == -1) {
		cli_errorf("looking up suppression: %s", err.data);
		goto out;
	}
	if (o.json) {
		rc = print_json(r == 1 ? supp_json(&s) : NULL);
		goto out;
	}
	if (r == 0)
		buf_adds(&line, "not present\n");
	else {
		buf_adds(&line, "present\nadded: ");
		add_time(&line, s.created_ns);
		buf_addf(&line, "\nmanual: %s\nbase address: %s\nreason: ",
		    s.manual ? "yes" : "no", s.base_address);
		add_quoted(&line, s.reason);
		buf_addc(&line, '\n');
	}
	flush_line(&line);
	rc = finish_stdout();
out:
	free(s.account);
	free(s.base_address);
	free(s.original_address);
	free(s.reason);
	close_queue(q, cfg);
	opts_release(&o);
	buf_release(&err);
	buf_release(&line);
	return rc;
}

/* ---- webhooks ---- */

static int
hook_list(int argc, char **argv, bool retired)
{
	const char *words = retired ? "queue webhook retired list"
				    : "queue webhook list";
	const char *syn = retired
	    ? "[-ids 1,2] [-n N] [-account a] [-submitted <dur|>dur] "
	      "[-lastactivity <dur|>dur] [-event e] [-sort lastactivity|queued] "
	      "[-asc] [-json]"
	    : "[-ids 1,2] [-n N] [-account a] [-submitted <dur|>dur] "
	      "[-nextattempt <dur|>dur] [-event e] [-sort nextattempt|queued] "
	      "[-asc] [-json]";
	struct queue *q = NULL;
	struct queue_webhook_item *v = NULL;
	struct opts o;
	struct buf err, line;
	size_t n = 0;
	int64_t now;
	int pos, rc;

	rc = parse_args(argc, argv, words, syn,
	    (retired ? HRFILTER : HFILTER) | SORTFLAGS, 0, 0, &o, &pos);
	if (rc != 0)
		return rc;
	rc = 1;
	buf_init(&err, QCMD_ERR_MAX);
	buf_init(&line, QCMD_LINE_MAX);
	if (open_queue(&q, NULL) == -1)
		goto out;
	if (queue_webhook_list(q, &o.f, retired, &v, &n, &err) == -1) {
		cli_errorf("listing webhooks: %s", err.data);
		goto out;
	}
	if (o.json) {
		json_object *a = json_object_new_array();

		for (size_t i = 0; i < n; i++) {
			json_object *r = json_object_new_object();

			j_int(r, "ID", v[i].id);
			j_int(r, "QueueMsgID", v[i].queue_msg_id);
			json_object_object_add(r, "Submitted",
			    j_time(v[i].submitted_ns));
			json_object_object_add(r,
			    retired ? "LastActivity" : "NextAttempt",
			    j_time(v[i].next_attempt_ns));
			json_object_object_add(r, "LastAttempt",
			    j_time(v[i].last_attempt_ns));
			if (retired)
				j_bool(r, "Success", v[i].success);
			j_str(r, "Account", v[i].account);
			j_str(r, "Event", v[i].event);
			j_str(r, "URL", v[i].url);
			j_str(r, "LastError", v[i].last_error);
			json_object_array_add(a, r);
		}
		rc = print_json(a);
		goto out;
	}
	now = time_wall_ns();
	buf_adds(&line, retired ? "retired webhooks:\n" : "webhooks:\n");
	for (size_t i = 0; i < n; i++) {
		const struct queue_webhook_item *h = &v[i];

		buf_addf(&line, "%5lld ", (long long)h->id);
		add_time(&line, h->submitted_ns);
		if (retired)
			buf_adds(&line, h->success ? " success" : " failure");
		buf_addf(&line, " account:%s ", h->account);
		if (!retired) {
			buf_adds(&line, "next ");
			add_dur(&line, h->next_attempt_ns - now);
			buf_addc(&line, ' ');
		}
		buf_adds(&line, "last ");
		if (h->last_attempt_ns != 0)
			add_dur(&line, now - h->last_attempt_ns);
		buf_adds(&line, " error ");
		add_quoted(&line, h->last_error);
		buf_addf(&line, " url %s\n", h->url);
		flush_line(&line);
	}
	if (n == 0)
		buf_adds(&line, "(none)\n");
	flush_line(&line);
	rc = finish_stdout();
out:
	queue_webhook_item_list_free(v, n);
	close_queue(q, NULL);
	opts_release(&o);
	buf_release(&err);
	buf_release(&line);
	return rc;
}

int
cmd_queue_webhook_list(int argc, char **argv)
{
	return hook_list(argc, argv, false);
}

int
cmd_queue_webhook_retired_list(int argc, char **argv)
{
	return hook_list(argc, argv, true);
}

#define HFILTER_SYN                                                  \
	"[-ids 1,2] [-n N] [-account a] [-submitted <dur|>dur] "     \
	"[-nextattempt <dur|>dur] [-event e]"

/* webhook schedule and cancel. */
static int
hook_change(int argc, char **argv, bool schedule)
{
	const char *words = schedule ? "queue webhook schedule"
				     : "queue webhook cancel";
	const char *syn = schedule ? HFILTER_SYN " [-now] duration"
				   : HFILTER_SYN;
	struct queue *q = NULL;
	struct opts o;
	struct buf err;
	int64_t count = 0, d = 0;
	const char *why;
	int pos, rc, r;

	rc = parse_args(argc, argv, words, syn,
	    HFILTER | (schedule ? O_NOW : 0), schedule, schedule, &o, &pos);
	if (rc != 0)
		return rc;
	if (schedule && time_parse_duration(argv[pos], &d, &why) == -1) {
		cli_errorf("invalid duration \"%s\": %s (like 1h, -30m, 0)",
		    argv[pos], why);
		opts_release(&o);
		return usage(words, syn);
	}
	rc = 1;
	buf_init(&err, QCMD_ERR_MAX);
	if (open_queue(&q, NULL) == -1)
		goto out;
	if (schedule)
		r = queue_webhook_schedule(q, &o.f, o.now, d, &count, &err);
	else
		r = queue_webhook_cancel(q, &o.f, &count, &err);
	if (r == -1) {
		cli_errorf("%s: %s", words + strlen("queue "), err.data);
		goto out;
	}
	printf("%lld webhook(s) %s\n", (long long)count,
	    schedule ? "rescheduled" : "canceled");
	rc = finish_stdout();
out:
	close_queue(q, NULL);
	opts_release(&o);
	buf_release(&err);
	return rc;
}

int
cmd_queue_webhook_schedule(int argc, char **argv)
{
	return hook_change(argc, argv, true);
}

int
cmd_queue_webhook_cancel(int argc, char **argv)
{
	return hook_change(argc, argv, false);
}

int
cmd_queue_webhook_print(int argc, char **argv)
{
	return print_record(argc, argv, "queue webhook print", 1);
}

int
cmd_queue_webhook_retired_print(int argc, char **argv)
{
	return print_record(argc, argv, "queue webhook retired print", 2);
}

/* ---- the command table and mox-queue's dispatcher ---- */

const struct cli_command cmd_queue_commands[] = {
	{ "queue holdrules list", "[-json]",
	    "List the hold rules: messages queued that match a rule are "
	    "marked on hold and not delivered until released.",
	    cmd_queue_holdrules_list },
	{ "queue holdrules add",
	    "[-account account] [-senderdom domain] [-recipientdom domain]",
	    "Add a hold rule; without flags it holds every message. Queued "
	    "messages that match are put on hold at once.",
	    cmd_queue_holdrules_add },
	{ "queue holdrules remove", "ruleid",
	    "Remove a hold rule. Messages on hold stay on hold.",
	    cmd_queue_holdrules_remove },
	{ "queue list",
	    "[filterflags] [-sort nextattempt|queued] [-asc] [-json]",
	    "List queued messages. Filters: -ids 1,2 -n N -account a -from s "
	    "-to s -hold true|false -submitted <dur|>dur -nextattempt "
	    "<dur|>dur -transport name.",
	    cmd_queue_list },
	{ "queue hold", "[filterflags]",
	    "Mark matching messages on hold: they are not delivered.",
	    cmd_queue_hold },
	{ "queue unhold", "[filterflags]",
	    "Release matching messages from hold.", cmd_queue_unhold },
	{ "queue schedule", "[filterflags] [-now] duration",
	    "Add duration to the next delivery attempt of matching messages, "
	    "or with -now set it to now + duration (-now 0: immediately).",
	    cmd_queue_schedule },
	{ "queue transport", "[filterflags] transport",
	    "Deliver matching messages with the named transport from "
	    "mox.conf; \"\" returns to the routing rules.",
	    cmd_queue_transport },
	{ "queue requiretls", "[filterflags] yes|no|default",
	    "Set the TLS requirement of matching messages: yes (REQUIRETLS), "
	    "no (as \"TLS-Required: No\") or default (policy).",
	    cmd_queue_requiretls },
	{ "queue fail", "[filterflags]",
	    "Fail delivery of matching messages now and send DSNs to the "
	    "senders (\"delivery canceled by admin\").",
	    cmd_queue_fail },
	{ "queue drop", "[filterflags]",
	    "Remove matching messages from the queue without a DSN.",
	    cmd_queue_drop },
	{ "queue dump", "id",
	    "Write queued message id (with the headers added for delivery) "
	    "to stdout.",
	    cmd_queue_dump },
	{ "queue retired list",
	    "[filterflags] [-lastactivity <dur|>dur] [-result success|failure] "
	    "[-sort lastactivity|queued] [-asc] [-json]",
	    "List retired (delivered or failed) messages.",
	    cmd_queue_retired_list },
	{ "queue retired print", "id", "Print a retired message as JSON.",
	    cmd_queue_retired_print },
	{ "queue suppress list", "[-account account] [-json]",
	    "List suppressed recipient addresses.", cmd_queue_suppress_list },
	{ "queue suppress add", "account address",
	    "Suppress delivery from account to address.",
	    cmd_queue_suppress_add },
	{ "queue suppress remove", "account address",
	    "Remove the suppression of address for account.",
	    cmd_queue_suppress_remove },
	{ "queue suppress lookup", "[-account account] [-json] address",
	    "Check whether address is suppressed (for account, or any).",
	    cmd_queue_suppress_lookup },
	{ "queue webhook list",
	    "[hookfilterflags] [-sort nextattempt|queued] [-asc] [-json]",
	    "List pending webhooks. Filters: -ids 1,2 -n N -account a "
	    "-submitted <dur|>dur -nextattempt <dur|>dur -event e.",
	    cmd_queue_webhook_list },
	{ "queue webhook schedule", "[hookfilterflags] [-now] duration",
	    "Change the next attempt of matching webhooks.",
	    cmd_queue_webhook_schedule },
	{ "queue webhook cancel", "[hookfilterflags]",
	    "Cancel matching webhooks (retired as \"canceled by admin\").",
	    cmd_queue_webhook_cancel },
	{ "queue webhook print", "id", "Print a pending webhook as JSON.",
	    cmd_queue_webhook_print },
	{ "queue webhook retired list",
	    "[-ids 1,2] [-n N] [-account a] [-submitted <dur|>dur] "
	    "[-lastactivity <dur|>dur] [-event e] [-sort lastactivity|queued] "
	    "[-asc] [-json]",
	    "List retired webhooks.", cmd_queue_webhook_retired_list },
	{ "queue webhook retired print", "id",
	    "Print a retired webhook as JSON.",
	    cmd_queue_webhook_retired_print },
};
const size_t cmd_queue_ncommands = ARRAY_LEN(cmd_queue_commands);

/* Leading argv words (after argv[0] = "queue") that spell the command's
 * words after "queue", or 0. */
static int
match_sub(const char *words, int argc, char **argv)
{
	const char *w = words + strlen("queue ");
	int n = 1;

	while (*w != '\0') {
		size_t len = strcspn(w, " ");

		if (n >= argc || strlen(argv[n]) != len ||
		    strncmp(argv[n], w, len) != 0)
			return 0;
		n++;
		w += len;
		if (*w == ' ')
			w++;
	}
	return n;
}

static void
print_commands(FILE *f, const char *prefix, bool help)
{
	for (size_t i = 0; i < cmd_queue_ncommands; i++) {
		const struct cli_command *c = &cmd_queue_commands[i];
		const char *sub = c->words + strlen("queue ");

		if (prefix != NULL && (strncmp(sub, prefix, strlen(prefix)) != 0 ||
		    (sub[strlen(prefix)] != '\0' && sub[strlen(prefix)] != ' ')))
			continue;
		fprintf(f, "  %s %s%s%s\n", cli.prog, sub, *c->args ? " " : "",
		    c->args);
		if (help)
			fprintf(f, "      %s\n", c->help);
	}
}

int
cmd_queue_main(int argc, char **argv)
{
	struct buf want;
	bool any = false;

	if (argc >= 2 && (strcmp(argv[1], "help") == 0 ||
	    strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "-help") == 0 ||
	    strcmp(argv[1], "--help") == 0)) {
		buf_init(&want, QCMD_LINE_MAX);
		for (int i = 2; i < argc; i++)
			buf_addf(&want, "%s%s", i > 2 ? " " : "", argv[i]);
		printf("usage: %s [-config mox.conf] [-loglevel level] "
		       "command [flags] [args]\ncommands:\n",
		    cli.prog);
		print_commands(stdout, argc > 2 ? want.data : NULL, true);
		buf_release(&want);
		return finish_stdout();
	}
	for (size_t i = 0; i < cmd_queue_ncommands; i++) {
		const struct cli_command *c = &cmd_queue_commands[i];

		if (match_sub(c->words, argc, argv) > 0)
			return c->fn(argc, argv);
	}
	/* Leading words that match: print those commands' usage. */
	buf_init(&want, QCMD_LINE_MAX);
	for (int i = 1; i < argc && argv[i][0] != '-'; i++)
		buf_addf(&want, "%s%s", i > 1 ? " " : "", argv[i]);
	if (argc < 2)
		cli_errorf("missing command");
	else {
		for (size_t i = 0; i < cmd_queue_ncommands; i++) {
			const char *sub = cmd_queue_commands[i].words + 6;

			if (want.len > 0 &&
			    strncmp(sub, want.data, want.len) == 0 &&
			    sub[want.len] == ' ')
				any = true;
		}
		if (!any)
			cli_errorf("unknown command \"%s\"", want.data);
	}
	fprintf(stderr, "usage:\n");
	print_commands(stderr, any ? want.data : NULL, false);
	buf_release(&want);
	return CLI_USAGE;
}
