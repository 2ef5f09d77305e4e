/*
 * message_serial.c: compact JSON form of a parsed part tree (the store's
 * ParsedBuf, spec store.md 3.1), and its strict loading. Loaded data comes
 * from our own database but is checked as if hostile: types, offsets
 * (ordered, inside the parent, inside the message), nesting depth and
 * counts, so that a damaged row cannot make IMAP FETCH read outside the
 * message. Pure: any thread, no I/O, no logging.
 */
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "lib/buf.h"
#include "lib/xmalloc.h"
#include "message/message.h"
#include "message/message_int.h"
#include "lib/banned.h"

/* Format version, stored in the root as "v". */
#define SERIAL_VERSION 1
/* JSON nesting: a part level is two JSON levels, an envelope four. */
#define SERIAL_JSON_DEPTH (2 * (MESSAGE_DEPTH_MAX + 2) + 8)

/* ---- writing ---- */

static void
put_str(json_object *o, const char *k, const char *v)
{
	if (v != NULL)
		json_object_object_add(o, k, json_object_new_string(v));
}

static json_object *
str_or_null(const char *v)
{
	return v != NULL ? json_object_new_string(v) : NULL;
}

static void
put_params(json_object *o, const char *k, const struct message_param *p,
    size_t n)
{
	json_object *a;

	if (n == 0)
		return;
	a = json_object_new_array();
	for (size_t i = 0; i < n; i++) {
		json_object *pair = json_object_new_array();

		json_object_array_add(pair, json_object_new_string(p[i].name));
		json_object_array_add(pair, json_object_new_string(p[i].value));
		json_object_array_add(a, pair);
	}
	json_object_object_add(o, k, a);
}

static void
put_addrs(json_object *o, const char *k, const struct message_addr_list *l)
{
	json_object *a;

	if (l->n == 0)
		return;
	a = json_object_new_array();
	for (size_t i = 0; i < l->n; i++) {
		const struct message_address *m = &l->v[i];
		json_object *e = json_object_new_array();

		json_object_array_add(e, json_object_new_int((int)m->kind));
		json_object_array_add(e, str_or_null(m->name));
		json_object_array_add(e, str_or_null(m->adl));
		json_object_array_add(e, str_or_null(m->user));
		json_object_array_add(e, str_or_null(m->host));
		json_object_array_add(e, str_or_null(m->group));
		json_object_array_add(a, e);
	}
	json_object_object_add(o, k, a);
}

static json_object *
env_to_json(const struct message_envelope *e)
{
	json_object *o = json_object_new_object();

	put_str(o, "date", e->date);
	if (e->date_ok) {
		json_object *d = json_object_new_array();

		json_object_array_add(d, json_object_new_int64(e->date_t));
		json_object_array_add(d, json_object_new_int(e->date_off));
		json_object_object_add(o, "dt", d);
	}
	put_str(o, "subj", e->subject);
	put_str(o, "subjr", e->subject_raw);
	put_addrs(o, "from", &e->from);
	put_addrs(o, "sender", &e->sender);
	put_addrs(o, "replyto", &e->reply_to);
	put_addrs(o, "to", &e->to);
	put_addrs(o, "cc", &e->cc);
	put_addrs(o, "bcc", &e->bcc);
	put_str(o, "irt", e->in_reply_to);
	put_str(o, "mid", e->message_id);
	return o;
}

static json_object *
part_to_json(const struct message_part *p)
{
	json_object *o = json_object_new_object(), *off;

	put_str(o, "t", p->type);
	put_str(o, "s", p->subtype);
	put_params(o, "p", p->params, p->nparams);
	put_str(o, "id", p->id);
	put_str(o, "desc", p->description);
	put_str(o, "cte", p->cte);
	put_str(o, "disp", p->disposition);
	put_params(o, "dp", p->disp_params, p->ndisp_params);
	put_str(o, "lang", p->language);
	put_str(o, "loc", p->location);
	put_str(o, "md5", p->md5);
	off = json_object_new_array();
	json_object_array_add(off, json_object_new_int64((int64_t)p->header_off));
	json_object_array_add(off, json_object_new_int64((int64_t)p->body_off));
	json_object_array_add(off, json_object_new_int64((int64_t)p->end_off));
	json_object_array_add(off, json_object_new_int64((int64_t)p->body_lines));
	json_object_object_add(o, "o", off);
	if (p->flags != 0)
		json_object_object_add(o, "f", json_object_new_int((int)p->flags));
	if (p->envelope != NULL)
		json_object_object_add(o, "env", env_to_json(p->envelope));
	if (p->nparts > 0) {
		json_object *a = json_object_new_array();

		for (size_t i = 0; i < p->nparts; i++)
			json_object_array_add(a, part_to_json(&p->parts[i]));
		json_object_object_add(o, "parts", a);
	}
	if (p->message != NULL)
		json_object_object_add(o, "msg", part_to_json(p->message));
	return o;
}

int
message_serialise(const struct message_part *root, struct buf *out)
{
	json_object *o = part_to_json(root);
	size_t n = 0;
	const char *s;

	json_object_object_add(o, "v", json_object_new_int(SERIAL_VERSION));
	s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &n);
	buf_add(out, s, n);
	json_object_put(o);
	return buf_failed(out) ? -1 : 0;
}

/* ---- loading ---- */

struct load {
	size_t msg_len;
	size_t nparts;
	const char *why;
};

static int
get_str(json_object *o, const char *k, bool required, char **out,
    struct load *ld)
{
	json_object *v;

	*out = NULL;
	if (!json_object_object_get_ex(o, k, &v) || v == NULL) {
		if (required) {
			ld->why = "missing string field";
			return -1;
		}
		return 0;
	}
	if (!json_object_is_type(v, json_type_string)) {
		ld->why = "field is not a string";
		return -1;
	}
	*out = xstrndup(json_object_get_string(v),
	    (size_t)json_object_get_string_len(v));
	return 0;
}

static int
str_elem(json_object *a, size_t i, char **out, struct load *ld)
{
	json_object *v = json_object_array_get_idx(a, i);

	*out = NULL;
	if (v == NULL)
		return 0;
	if (!json_object_is_type(v, json_type_string)) {
		ld->why = "array element is not a string";
		return -1;
	}
	*out = xstrndup(json_object_get_string(v),
	    (size_t)json_object_get_string_len(v));
	return 0;
}

static int
get_params(json_object *o, const char *k, struct message_param **pv,
    size_t *pn, struct load *ld)
{
	json_object *a;
	size_t n;

	if (!json_object_object_get_ex(o, k, &a))
		return 0;
	if (!json_object_is_type(a, json_type_array) ||
	    json_object_array_length(a) > MESSAGE_PARAMS_MAX) {
		ld->why = "bad parameter list";
		return -1;
	}
	n = json_object_array_length(a);
	*pv = xcalloc(n, sizeof(**pv));
	for (size_t i = 0; i < n; i++) {
		json_object *pair = json_object_array_get_idx(a, i);

		if (!json_object_is_type(pair, json_type_array) ||
		    json_object_array_length(pair) != 2) {
			ld->why = "bad parameter";
			return -1;
		}
		(*pn)++;
		if (str_elem(pair, 0, &(*pv)[i].name, ld) == -1 ||
		    str_elem(pair, 1, &(*pv)[i].value, ld) == -1)
			return -1;
		if ((*pv)[i].name == NULL || (*pv)[i].value == NULL) {
			ld->why = "null parameter";
			return -1;
		}
	}
	return 0;
}

static int
get_addrs(json_object *o, const char *k, struct message_addr_list *l,
    struct load *ld)
{
	json_object *a;
	size_t n;

	if (!json_object_object_get_ex(o, k, &a))
		return 0;
	if (!json_object_is_type(a, json_type_array) ||
	    json_object_array_length(a) > MESSAGE_ADDRS_MAX) {
		ld->why = "bad address list";
		return -1;
	}
	n = json_object_array_length(a);
	l->v = xcalloc(n, sizeof(*l->v));
	for (size_t i = 0; i < n; i++) {
		json_object *e = json_object_array_get_idx(a, i), *kind;
		struct message_address *m = &l->v[i];
		int kv;

		if (!json_object_is_type(e, json_type_array) ||
		    json_object_array_length(e) != 6) {
			ld->why = "bad address";
			return -1;
		}
		l->n++;
		kind = json_object_array_get_idx(e, 0);
		kv = json_object_get_int(kind);
		if (!json_object_is_type(kind, json_type_int) ||
		    kv < MESSAGE_ADDR_MAILBOX || kv > MESSAGE_ADDR_GROUP_END) {
			ld->why = "bad address kind";
			return -1;
		}
		m->kind = (enum message_addr_kind)kv;
		if (str_elem(e, 1, &m->name, ld) == -1 ||
		    str_elem(e, 2, &m->adl, ld) == -1 ||
		    str_elem(e, 3, &m->user, ld) == -1 ||
		    str_elem(e, 4, &m->host, ld) == -1 ||
		    str_elem(e, 5, &m->group, ld) == -1)
			return -1;
		if (m->kind == MESSAGE_ADDR_MAILBOX && m->user == NULL &&
		    (m->name == NULL || m->host != NULL)) {
			/* only a bare display name has no user */
			ld->why = "address without user";
			return -1;
		}
	}
	return 0;
}

static int
get_env(json_object *o, struct message_envelope *e, struct load *ld)
{
	json_object *d;

	if (!json_object_is_type(o, json_type_object)) {
		ld->why = "envelope is not an object";
		return -1;
	}
	if (get_str(o, "date", false, &e->date, ld) == -1 ||
	    get_str(o, "subj", false, &e->subject, ld) == -1 ||
	    get_str(o, "subjr", false, &e->subject_raw, ld) == -1 ||
	    get_str(o, "irt", false, &e->in_reply_to, ld) == -1 ||
	    get_str(o, "mid", false, &e->message_id, ld) == -1 ||
	    get_addrs(o, "from", &e->from, ld) == -1 ||
	    get_addrs(o, "sender", &e->sender, ld) == -1 ||
	    get_addrs(o, "replyto", &e->reply_to, ld) == -1 ||
	    get_addrs(o, "to", &e->to, ld) == -1 ||
	    get_addrs(o, "cc", &e->cc, ld) == -1 ||
	    get_addrs(o, "bcc", &e->bcc, ld) == -1)
		return -1;
	if (json_object_object_get_ex(o, "dt", &d)) {
		json_object *t, *off;

		if (!json_object_is_type(d, json_type_array) ||
		    json_object_array_length(d) != 2) {
			ld->why = "bad date";
			return -1;
		}
		t = json_object_array_get_idx(d, 0);
		off = json_object_array_get_idx(d, 1);
		if (!json_object_is_type(t, json_type_int) ||
		    !json_object_is_type(off, json_type_int) ||
		    json_object_get_int(off) < -24 * 60 ||
		    json_object_get_int(off) > 99 * 60 + 59) {
			ld->why = "bad date";
			return -1;
		}
		e->date_ok = true;
		e->date_t = json_object_get_int64(t);
		e->date_off = json_object_get_int(off);
	}
	return 0;
}

static int
get_off(json_object *a, size_t i, size_t *out, struct load *ld)
{
	json_object *v = json_object_array_get_idx(a, i);
	int64_t x;

	if (v == NULL || !json_object_is_type(v, json_type_int)) {
		ld->why = "bad offset";
		return -1;
	}
	x = json_object_get_int64(v);
	if (x < 0 || (uint64_t)x > ld->msg_len) {
		ld->why = "offset outside message";
		return -1;
	}
	*out = (size_t)x;
	return 0;
}

static int load_part(json_object *o, struct message_part *p, size_t lo,
    size_t hi, int depth, struct load *ld);

static int
load_children(json_object *o, struct message_part *p, int depth,
    struct load *ld)
{
	json_object *a, *m;
	size_t n, lo = p->body_off;

	if (json_object_object_get_ex(o, "parts", &a)) {
		if (!json_object_is_type(a, json_type_array)) {
			ld->why = "parts is not an array";
			return -1;
		}
		n = json_object_array_length(a);
		if (n > MESSAGE_PARTS_MAX - ld->nparts) {
			ld->why = "too many parts";
			return -1;
		}
		p->parts = xcalloc(n, sizeof(*p->parts));
		for (size_t i = 0; i < n; i++) {
			p->nparts++;
			if (load_part(json_object_array_get_idx(a, i),
				&p->parts[i], lo, p->end_off, depth + 1,
				ld) == -1)
				return -1;
			lo = p->parts[i].end_off; /* siblings in order */
		}
	}
	if (json_object_object_get_ex(o, "msg", &m)) {
		p->message = xcalloc(1, sizeof(*p->message));
		if (load_part(m, p->message, p->body_off, p->end_off,
			depth + 1, ld) == -1)
			return -1;
		if (p->message->envelope == NULL) {
			ld->why = "nested message without envelope";
			return -1;
		}
	}
	return 0;
}

static int
load_part(json_object *o, struct message_part *p, size_t lo, size_t hi,
    int depth, struct load *ld)
{
	json_object *off, *f, *env;

	if (depth > MESSAGE_DEPTH_MAX + 1 || ld->nparts >= MESSAGE_PARTS_MAX + 1) {
		ld->why = "tree too deep or too large";
		return -1;
	}
	ld->nparts++;
	if (o == NULL || !json_object_is_type(o, json_type_object)) {
		ld->why = "part is not an object";
		return -1;
	}
	if (get_str(o, "t", true, &p->type, ld) == -1 ||
	    get_str(o, "s", true, &p->subtype, ld) == -1 ||
	    get_params(o, "p", &p->params, &p->nparams, ld) == -1 ||
	    get_str(o, "id", false, &p->id, ld) == -1 ||
	    get_str(o, "desc", false, &p->description, ld) == -1 ||
	    get_str(o, "cte", false, &p->cte, ld) == -1 ||
	    get_str(o, "disp", false, &p->disposition, ld) == -1 ||
	    get_params(o, "dp", &p->disp_params, &p->ndisp_params, ld) == -1 ||
	    get_str(o, "lang", false, &p->language, ld) == -1 ||
	    get_str(o, "loc", false, &p->location, ld) == -1 ||
	    get_str(o, "md5", false, &p->md5, ld) == -1)
		return -1;
	if (p->type[0] == '\0' || p->subtype[0] == '\0') {
		ld->why = "empty media type";
		return -1;
	}
	if (!json_object_object_get_ex(o, "o", &off) ||
	    !json_object_is_type(off, json_type_array) ||
	    json_object_array_length(off) != 4 ||
	    get_off(off, 0, &p->header_off, ld) == -1 ||
	    get_off(off, 1, &p->body_off, ld) == -1 ||
	    get_off(off, 2, &p->end_off, ld) == -1 ||
	    get_off(off, 3, &p->body_lines, ld) == -1) {
		if (ld->why == NULL)
			ld->why = "bad offsets";
		return -1;
	}
	if (p->header_off < lo || p->header_off > p->body_off ||
	    p->body_off > p->end_off || p->end_off > hi ||
	    p->body_lines > p->end_off - p->body_off) {
		ld->why = "offsets out of order or outside the parent";
		return -1;
	}
	if (json_object_object_get_ex(o, "f", &f)) {
		if (!json_object_is_type(f, json_type_int) ||
		    json_object_get_int(f) < 0 || json_object_get_int(f) > 0xff) {
			ld->why = "bad flags";
			return -1;
		}
		p->flags = (unsigned)json_object_get_int(f);
	}
	if (json_object_object_get_ex(o, "env", &env)) {
		p->envelope = xcalloc(1, sizeof(*p->envelope));
		if (get_env(env, p->envelope, ld) == -1)
			return -1;
	}
	return load_children(o, p, depth, ld);
}

int
message_deserialise(struct span data, size_t msg_len,
    struct message_part **root_out, const char **why)
{
	struct json_tokener *tok = NULL;
	json_object *o = NULL, *v;
	struct message_part *root = NULL;
	struct load ld = { msg_len, 0, NULL };
	int rc = -1;

	if (data.len > MESSAGE_SERIAL_MAX || data.len > (size_t)INT32_MAX) {
		ld.why = "serialised tree too large";
		goto out;
	}
	tok = json_tokener_new_ex(SERIAL_JSON_DEPTH);
	if (tok == NULL) {
		ld.why = "json parser unavailable";
		goto out;
	}
	o = json_tokener_parse_ex(tok, data.p, (int)data.len);
	if (o == NULL || json_tokener_get_error(tok) != json_tokener_success ||
	    json_tokener_get_parse_end(tok) != data.len) {
		ld.why = "malformed json";
		goto out;
	}
	if (!json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, "v", &v) ||
	    !json_object_is_type(v, json_type_int) ||
	    json_object_get_int(v) != SERIAL_VERSION) {
		ld.why = "unknown serialisation version";
		goto out;
	}
	root = xcalloc(1, sizeof(*root));
	if (load_part(o, root, 0, msg_len, 0, &ld) == -1)
		goto out;
	if (root->envelope == NULL || root->header_off != 0) {
		ld.why = "root without envelope";
		goto out;
	}
	*root_out = root;
	root = NULL;
	rc = 0;
out:
	message_part_free(root);
	json_object_put(o);
	if (tok != NULL)
		json_tokener_free(tok);
	if (rc == -1)
		*why = ld.why != NULL ? ld.why : "bad serialised tree";
	return rc;
}

/* ---- comparison ---- */

static bool
str_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

static bool
params_eq(const struct message_param *a, size_t an,
    const struct message_param *b, size_t bn)
{
	if (an != bn)
		return false;
	for (size_t i = 0; i < an; i++)
		if (!str_eq(a[i].name, b[i].name) ||
		    !str_eq(a[i].value, b[i].value))
			return false;
	return true;
}

static bool
addrs_eq(const struct message_addr_list *a, const struct message_addr_list *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++) {
		const struct message_address *x = &a->v[i], *y = &b->v[i];

		if (x->kind != y->kind || !str_eq(x->name, y->name) ||
		    !str_eq(x->adl, y->adl) || !str_eq(x->user, y->user) ||
		    !str_eq(x->host, y->host) || !str_eq(x->group, y->group))
			return false;
	}
	return true;
}

static bool
env_eq(const struct message_envelope *a, const struct message_envelope *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return str_eq(a->date, b->date) && a->date_ok == b->date_ok &&
	    (!a->date_ok ||
		(a->date_t == b->date_t && a->date_off == b->date_off)) &&
	    str_eq(a->subject, b->subject) &&
	    str_eq(a->subject_raw, b->subject_raw) &&
	    addrs_eq(&a->from, &b->from) && addrs_eq(&a->sender, &b->sender) &&
	    addrs_eq(&a->reply_to, &b->reply_to) && addrs_eq(&a->to, &b->to) &&
	    addrs_eq(&a->cc, &b->cc) && addrs_eq(&a->bcc, &b->bcc) &&
	    str_eq(a->in_reply_to, b->in_reply_to) &&
	    str_eq(a->message_id, b->message_id);
}

bool
message_part_equal(const struct message_part *a, const struct message_part *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	if (!str_eq(a->type, b->type) || !str_eq(a->subtype, b->subtype) ||
	    !params_eq(a->params, a->nparams, b->params, b->nparams) ||
	    !str_eq(a->id, b->id) || !str_eq(a->description, b->description) ||
	    !str_eq(a->cte, b->cte) || !str_eq(a->disposition, b->disposition) ||
	    !params_eq(a->disp_params, a->ndisp_params, b->disp_params,
		b->ndisp_params) ||
	    !str_eq(a->language, b->language) ||
	    !str_eq(a->location, b->location) || !str_eq(a->md5, b->md5) ||
	    a->header_off != b->header_off || a->body_off != b->body_off ||
	    a->end_off != b->end_off || a->body_lines != b->body_lines ||
	    a->flags != b->flags || !env_eq(a->envelope, b->envelope) ||
	    a->nparts != b->nparts)
		return false;
	for (size_t i = 0; i < a->nparts; i++)
		if (!message_part_equal(&a->parts[i], &b->parts[i]))
			return false;
	return message_part_equal(a->message, b->message);
}
