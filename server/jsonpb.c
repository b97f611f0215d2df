/*
 * The gateway's JSON codec: protobuf-c messages to and from etcd's JSON.
 *
 * Encoding writes straight into a moor_buf (no intermediate tree), walking
 * the descriptor's fields in number order. Decoding happens in two steps:
 * a small scanner first finds where one JSON value ends, enforcing the depth
 * and size limits before anything is allocated (and telling a stream
 * "incomplete, wait for more" from "broken"); jansson then parses exactly
 * that value, and a descriptor walk fills a protobuf-c message allocated the
 * way protobuf_c_message_free_unpacked expects. The message under
 * construction is freeable at every step, so any error frees it whole.
 *
 * Two wrinkles of jansson: it refuses integer literals beyond int64 ("too
 * big integer"), yet uint64 member IDs above 2^63 are legal JSON numbers that
 * Go accepts; and it reads "-0" as the integer 0, losing the sign of a
 * negative zero double. The scanner notes such tokens and the parser is then
 * given a copy in which they are quoted; the number decoders take both forms.
 */
#include "server/jsonpb.h"

#include "common/assert.h"
#include "common/error.h"

#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ENC_MAX_DEPTH 100

/* ------------------------------------------------------------------------ */
/* Encoding                                                                  */

static const char b64_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int srv_jsonpb_append_base64(struct moor_buf *out, const void *data, size_t len)
{
	const unsigned char *p = data;
	size_t n = (len + 2) / 3 * 4;
	unsigned char *w;
	int rc;

	if (len > (SIZE_MAX / 4) * 3 - 3)
		return MOOR_ETOOLARGE;
	rc = moor_buf_reserve(out, n);
	if (rc)
		return rc;
	w = out->data + out->len;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;
		size_t left = len - i;

		if (left > 1)
			v |= (uint32_t)p[i + 1] << 8;
		if (left > 2)
			v |= p[i + 2];
		*w++ = (unsigned char)b64_std[v >> 18];
		*w++ = (unsigned char)b64_std[(v >> 12) & 63];
		*w++ = left > 1 ? (unsigned char)b64_std[(v >> 6) & 63] : '=';
		*w++ = left > 2 ? (unsigned char)b64_std[v & 63] : '=';
	}
	out->len += n;
	return 0;
}

/* Length of the valid UTF-8 sequence at p (1..4) and its code point, or 0
 * when the bytes there are not valid UTF-8 (overlong, surrogate, truncated). */
static size_t utf8_decode(const unsigned char *p, size_t left, uint32_t *cp)
{
	uint32_t c = p[0];
	size_t n;
	uint32_t min;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if ((c & 0xE0) == 0xC0)
		n = 2, c &= 0x1F, min = 0x80;
	else if ((c & 0xF0) == 0xE0)
		n = 3, c &= 0x0F, min = 0x800;
	else if ((c & 0xF8) == 0xF0)
		n = 4, c &= 0x07, min = 0x10000;
	else
		return 0;
	if (left < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return 0;
		c = (c << 6) | (p[i] & 0x3F);
	}
	if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
		return 0;
	*cp = c;
	return n;
}

int srv_jsonpb_append_string(struct moor_buf *out, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	size_t start = out->len, i = 0, run = 0;
	char esc[8];
	int rc;

	/* Worst case is 6 bytes per input byte; reserve the common case. */
	rc = moor_buf_reserve(out, len + 2);
	if (rc)
		return rc;
	out->data[out->len++] = '"';
	while (i < len) {
		unsigned char c = p[i];
		const char *rep = NULL;
		size_t rep_len = 0, adv = 1;
		uint32_t cp;

		if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\' && c != '<' && c != '>' &&
		    c != '&') {
			run++;
			i++;
			continue;
		}
		if (c < 0x80) {
			switch (c) {
			case '"':
				rep = "\\\"";
				break;
			case '\\':
				rep = "\\\\";
				break;
			case '\n':
				rep = "\\n";
				break;
			case '\r':
				rep = "\\r";
				break;
			case '\t':
				rep = "\\t";
				break;
			case '\b':
				rep = "\\b";
				break;
			case '\f':
				rep = "\\f";
				break;
			default:
				memcpy(esc, "\\u00", 4);
				esc[4] = hex[c >> 4];
				esc[5] = hex[c & 15];
				rep = esc;
				rep_len = 6;
			}
		} else {
			adv = utf8_decode(p + i, len - i, &cp);
			if (adv == 0) {
				rep = "\\ufffd";
				adv = 1;
			} else if (cp == 0x2028 || cp == 0x2029) {
				rep = cp == 0x2028 ? "\\u2028" : "\\u2029";
			} else {
				run += adv;
				i += adv;
				continue;
			}
		}
		if (!rep_len)
			rep_len = strlen(rep);
		if ((rc = moor_buf_append(out, p + i - run, run)) != 0 ||
		    (rc = moor_buf_append(out, rep, rep_len)) != 0)
			goto fail;
		run = 0;
		i += adv;
	}
	if ((rc = moor_buf_append(out, p + i - run, run)) != 0 ||
	    (rc = moor_buf_append(out, "\"", 1)) != 0)
		goto fail;
	return 0;
fail:
	out->len = start;
	return rc;
}

static int put(struct moor_buf *b, const char *s)
{
	return moor_buf_append(b, s, strlen(s));
}

/* A decimal integer, optionally quoted (64-bit fields are JSON strings);
 * snprintf would be a quarter of the encoder's time. */
static int put_int(struct moor_buf *b, bool neg, uint64_t mag, bool quoted)
{
	char tmp[24];
	char *w = tmp + sizeof tmp;

	if (quoted)
		*--w = '"';
	do {
		*--w = (char)('0' + mag % 10);
		mag /= 10;
	} while (mag);
	if (neg)
		*--w = '-';
	if (quoted)
		*--w = '"';
	return moor_buf_append(b, w, (size_t)(tmp + sizeof tmp - w));
}

static int put_signed(struct moor_buf *b, int64_t v, bool quoted)
{
	return put_int(b, v < 0, v < 0 ? (uint64_t)(-(v + 1)) + 1 : (uint64_t)v, quoted);
}

/*
 * A float as Go's encoding/json writes it: the shortest digits that read
 * back as the same value (of the field's width), in plain decimal, or in
 * exponent form ("1e+21", "1.5e-7") below 1e-6 and from 1e21 on; NaN and
 * the infinities as protobuf's JSON strings.
 */
static int enc_float(struct moor_buf *b, double v, int max_prec, bool is_float)
{
	char e[40], out[64], digits[24];
	int prec, exp, nd = 0, w = 0;
	double a = v < 0 ? -v : v;
	const char *mant, *ep;

	if (isnan(v))
		return put(b, "\"NaN\"");
	if (isinf(v))
		return put(b, v > 0 ? "\"Infinity\"" : "\"-Infinity\"");
	if (v == 0)
		return put(b, signbit(v) ? "-0" : "0");
	for (prec = 1; prec < max_prec; prec++) {
		snprintf(e, sizeof e, "%.*e", prec - 1, v);
		if (is_float ? strtof(e, NULL) == (float)v : strtod(e, NULL) == v)
			break;
	}
	snprintf(e, sizeof e, "%.*e", prec - 1, v);
	if (a < 1e-6 || a >= 1e21) {
		/* C's form is Go's except that Go drops a leading 0 of a
		 * negative exponent ("e-07" → "e-7"). */
		char *x = strchr(e, 'e');
		size_t n = strlen(e);

		if (x && x[1] == '-' && x[2] == '0' && n - (size_t)(x - e) == 4) {
			x[2] = x[3];
			x[3] = '\0';
		}
		return put(b, e);
	}
	/* Plain decimal from the digits and exponent of the 'e' form. */
	mant = e[0] == '-' ? e + 1 : e;
	ep = strchr(mant, 'e');
	for (const char *c = mant; c < ep; c++)
		if (*c != '.')
			digits[nd++] = *c;
	exp = atoi(ep + 1);
	if (v < 0)
		out[w++] = '-';
	if (exp < 0) {
		out[w++] = '0';
		out[w++] = '.';
		for (int i = -1; i > exp; i--)
			out[w++] = '0';
		for (int i = 0; i < nd; i++)
			out[w++] = digits[i];
	} else {
		for (int i = 0; i <= exp || i < nd; i++) {
			if (i == exp + 1)
				out[w++] = '.';
			out[w++] = i < nd ? digits[i] : '0';
		}
	}
	return moor_buf_append(b, out, (size_t)w);
}

static int enc_message(struct moor_buf *b, const ProtobufCMessage *m, unsigned depth);

/* One value of field f stored at p (a singular field or an array element). */
static int enc_value(struct moor_buf *b, const ProtobufCFieldDescriptor *f, const void *p,
                     unsigned depth)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		return put_signed(b, *(const int32_t *)p, false);
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		return put_int(b, false, *(const uint32_t *)p, false);
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		return put_signed(b, *(const int64_t *)p, true);
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return put_int(b, false, *(const uint64_t *)p, true);
	case PROTOBUF_C_TYPE_BOOL:
		return put(b, *(const protobuf_c_boolean *)p ? "true" : "false");
	case PROTOBUF_C_TYPE_FLOAT:
		return enc_float(b, *(const float *)p, 9, true);
	case PROTOBUF_C_TYPE_DOUBLE:
		return enc_float(b, *(const double *)p, 17, false);
	case PROTOBUF_C_TYPE_ENUM: {
		int v = *(const int *)p;
		const ProtobufCEnumValue *ev =
		    protobuf_c_enum_descriptor_get_value(f->descriptor, v);

		if (ev)
			return srv_jsonpb_append_string(b, ev->name, strlen(ev->name));
		return put_signed(b, v, false);
	}
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(char *const *)p;

		return srv_jsonpb_append_string(b, s ? s : "", s ? strlen(s) : 0);
	}
	case PROTOBUF_C_TYPE_BYTES: {
		const ProtobufCBinaryData *bd = p;
		int rc;

		if ((rc = put(b, "\"")) != 0 ||
		    (rc = srv_jsonpb_append_base64(b, bd->data, bd->len)) != 0)
			return rc;
		return put(b, "\"");
	}
	case PROTOBUF_C_TYPE_MESSAGE: {
		const ProtobufCMessage *sub = *(ProtobufCMessage *const *)p;

		return sub ? enc_message(b, sub, depth + 1) : put(b, "{}");
	}
	}
	return MOOR_EINVAL;
}

static size_t elem_size(ProtobufCType t)
{
	switch (t) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		return 4;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return 8;
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_FLOAT:
		return sizeof(float);
	case PROTOBUF_C_TYPE_DOUBLE:
		return sizeof(double);
	case PROTOBUF_C_TYPE_ENUM:
		return sizeof(int);
	case PROTOBUF_C_TYPE_STRING:
		return sizeof(char *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(ProtobufCMessage *);
	}
	return 0;
}

/* Whether a singular field without explicit presence holds a non-zero value
 * (proto3: only those are written). */
static bool value_nonzero(const ProtobufCFieldDescriptor *f, const void *p)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(char *const *)p;
		return s && s[0];
	}
	case PROTOBUF_C_TYPE_BYTES:
		return ((const ProtobufCBinaryData *)p)->len > 0;
	case PROTOBUF_C_TYPE_MESSAGE:
		return *(ProtobufCMessage *const *)p != NULL;
	case PROTOBUF_C_TYPE_FLOAT: {
		float v = *(const float *)p;
		return v != 0 || signbit(v);
	}
	case PROTOBUF_C_TYPE_DOUBLE: {
		double v = *(const double *)p;
		return v != 0 || signbit(v);
	}
	default: {
		static const unsigned char zero[8];
		return memcmp(p, zero, elem_size(f->type)) != 0;
	}
	}
}

static bool field_present(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
	const char *base = (const char *)m;
	const void *p = base + f->offset;

	if (f->label == PROTOBUF_C_LABEL_REPEATED)
		return *(const size_t *)(base + f->quantifier_offset) > 0;
	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
		return *(const uint32_t *)(base + f->quantifier_offset) == f->id;
	if (f->type == PROTOBUF_C_TYPE_MESSAGE)
		return *(ProtobufCMessage *const *)p != NULL;
	if (f->label == PROTOBUF_C_LABEL_OPTIONAL) {
		if (f->type == PROTOBUF_C_TYPE_STRING) {
			const char *s = *(char *const *)p;
			return s && s != f->default_value;
		}
		return *(const protobuf_c_boolean *)(base + f->quantifier_offset);
	}
	if (f->label == PROTOBUF_C_LABEL_REQUIRED)
		return f->type != PROTOBUF_C_TYPE_STRING || *(char *const *)p != NULL;
	return value_nonzero(f, p);
}

static int enc_field(struct moor_buf *b, const ProtobufCMessage *m,
                     const ProtobufCFieldDescriptor *f, unsigned depth)
{
	const char *base = (const char *)m;
	int rc;

	if ((rc = srv_jsonpb_append_string(b, f->name, strlen(f->name))) != 0 ||
	    (rc = put(b, ":")) != 0)
		return rc;
	if (f->label != PROTOBUF_C_LABEL_REPEATED)
		return enc_value(b, f, base + f->offset, depth);

	size_t n = *(const size_t *)(base + f->quantifier_offset);
	const char *arr = *(char *const *)(base + f->offset);
	size_t esz = elem_size(f->type);

	if ((rc = put(b, "[")) != 0)
		return rc;
	for (size_t i = 0; i < n; i++) {
		if (i && (rc = put(b, ",")) != 0)
			return rc;
		if ((rc = enc_value(b, f, arr + i * esz, depth)) != 0)
			return rc;
	}
	return put(b, "]");
}

static int enc_message(struct moor_buf *b, const ProtobufCMessage *m, unsigned depth)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	bool first = true;
	int rc;

	MOOR_ASSERT(d && d->magic == PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC);
	if (depth > ENC_MAX_DEPTH)
		return MOOR_EINVAL;
	if ((rc = put(b, "{")) != 0)
		return rc;
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];

		if (!field_present(m, f))
			continue;
		if (!first && (rc = put(b, ",")) != 0)
			return rc;
		first = false;
		if ((rc = enc_field(b, m, f, depth)) != 0)
			return rc;
	}
	return put(b, "}");
}

int srv_jsonpb_encode(const ProtobufCMessage *msg, struct moor_buf *out)
{
	size_t start = out->len;
	int rc = enc_message(out, msg, 0);

	if (rc)
		out->len = start;
	return rc;
}

int srv_jsonpb_encode_result(const ProtobufCMessage *msg, struct moor_buf *out)
{
	size_t start = out->len;
	int rc;

	if ((rc = put(out, "{\"result\":")) != 0 || (rc = enc_message(out, msg, 0)) != 0 ||
	    (rc = put(out, "}\n")) != 0)
		out->len = start;
	return rc;
}

int srv_jsonpb_encode_string(const ProtobufCMessage *msg, char **out, size_t *len)
{
	struct moor_buf b;
	int rc;

	moor_buf_init(&b, NULL);
	*out = NULL;
	if ((rc = enc_message(&b, msg, 0)) != 0 || (rc = moor_buf_append_u8(&b, 0)) != 0) {
		moor_buf_free(&b);
		return rc;
	}
	if (len)
		*len = b.len - 1;
	*out = (char *)b.data;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Scanning: where does the next JSON value end?                            */

enum scan_status { SCAN_DONE, SCAN_EMPTY, SCAN_PARTIAL };

struct scan {
	size_t start, end; /* the value is [start, end) */
	bool is_null;      /* the value is the literal null */
	bool big_ints;     /* holds numbers to quote for jansson */
};

static bool is_ws(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int set_err(struct srv_jsonpb_error *err, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int set_err(struct srv_jsonpb_error *err, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof err->msg, fmt, ap);
	va_end(ap);
	return rc;
}

/* Whether the integer literal [p, p+n) (digits, maybe a leading '-') is a
 * valid JSON integer that does not fit in an int64. */
static bool int_literal_overflows(const unsigned char *p, size_t n)
{
	bool neg = n && p[0] == '-';
	const char *lim = neg ? "9223372036854775808" : "9223372036854775807";

	if (neg)
		p++, n--;
	if (n == 0 || p[0] == '0')
		return false;
	for (size_t i = 0; i < n; i++)
		if (p[i] < '0' || p[i] > '9')
			return false;
	return n > 19 || (n == 19 && memcmp(p, lim, 19) > 0);
}

/* Whether jansson would misread the number token [p, p+n): an integer
 * beyond int64 (it refuses those) or "-0" (it reads an integer 0 and loses
 * the sign Go writes for a negative zero double). Such tokens are quoted. */
static bool number_needs_quotes(const unsigned char *p, size_t n)
{
	return int_literal_overflows(p, n) || (n == 2 && p[0] == '-' && p[1] == '0');
}

/* Length of the number-like token at p: digits, signs, '.', 'e'. */
static size_t number_token(const unsigned char *p, size_t left)
{
	size_t k = 0;

	while (k < left && ((p[k] >= '0' && p[k] <= '9') || p[k] == '-' || p[k] == '+' ||
	                    p[k] == '.' || p[k] == 'e' || p[k] == 'E'))
		k++;
	return k;
}

/*
 * Finds the JSON value starting after optional whitespace in [p, p+len):
 * DONE with its extent, EMPTY (only whitespace), PARTIAL (a prefix of a
 * value), or an error code with err set. Only objects, arrays and null are
 * values here: a request body is always an object.
 */
static int scan_value(const unsigned char *p, size_t len, size_t max_bytes, unsigned max_depth,
                      struct scan *s, struct srv_jsonpb_error *err)
{
	size_t i = 0;
	unsigned depth = 0;
	bool in_str = false, esc = false;

	memset(s, 0, sizeof *s);
	while (i < len && is_ws(p[i]))
		i++;
	s->start = i;
	if (i == len)
		return SCAN_EMPTY;
	if (p[i] == 'n') {
		size_t avail = len - i < 4 ? len - i : 4;

		if (memcmp(p + i, "null", avail) != 0)
			return set_err(err, MOOR_EINVAL,
			               "invalid JSON at offset %zu: expected an object", i);
		if (avail < 4)
			return SCAN_PARTIAL;
		s->end = i + 4;
		s->is_null = true;
		return SCAN_DONE;
	}
	if (p[i] != '{' && p[i] != '[') {
		if (p[i] >= 0x20 && p[i] < 0x7f)
			return set_err(err, MOOR_EINVAL,
			               "invalid JSON at offset %zu: expected an object, found '%c'",
			               i, p[i]);
		return set_err(err, MOOR_EINVAL,
		               "invalid JSON at offset %zu: expected an object, found byte 0x%02x",
		               i, p[i]);
	}
	for (size_t j = i; j < len; j++) {
		unsigned char c = p[j];

		if (j - i >= max_bytes)
			return set_err(err, MOOR_ETOOLARGE,
			               "JSON value exceeds the limit of %zu bytes", max_bytes);
		if (in_str) {
			if (esc)
				esc = false;
			else if (c == '\\')
				esc = true;
			else if (c == '"')
				in_str = false;
			continue;
		}
		if (c == '"') {
			in_str = true;
		} else if (c == '{' || c == '[') {
			if (++depth > max_depth)
				return set_err(err, MOOR_EINVAL,
				               "invalid JSON: nested deeper than %u levels",
				               max_depth);
		} else if (c == '}' || c == ']') {
			if (--depth == 0) {
				s->end = j + 1;
				return SCAN_DONE;
			}
		} else if (c == '-' || (c >= '0' && c <= '9')) {
			size_t k = number_token(p + j, len - j);

			if (number_needs_quotes(p + j, k))
				s->big_ints = true;
			j += k - 1;
		}
	}
	return SCAN_PARTIAL;
}

/* A copy of the value [p, p+n) with the numbers jansson would misread
 * quoted (see number_needs_quotes); NULL on out of memory. */
static char *quote_big_ints(const unsigned char *p, size_t n, size_t *out_len)
{
	size_t cap = n + 2 * (n / 3 + 1), w = 0;
	char *q = malloc(cap);
	bool in_str = false, esc = false;

	if (!q)
		return NULL;
	for (size_t j = 0; j < n; j++) {
		unsigned char c = p[j];

		if (in_str) {
			if (esc)
				esc = false;
			else if (c == '\\')
				esc = true;
			else if (c == '"')
				in_str = false;
			q[w++] = (char)c;
			continue;
		}
		if (c == '"') {
			in_str = true;
		} else if (c == '-' || (c >= '0' && c <= '9')) {
			size_t k = number_token(p + j, n - j);

			if (number_needs_quotes(p + j, k)) {
				/* Each such token is at least 2 bytes and followed by
				 * a delimiter, so two quotes per 3 input bytes fit. */
				q[w++] = '"';
				memcpy(q + w, p + j, k);
				w += k;
				q[w++] = '"';
			} else {
				memcpy(q + w, p + j, k);
				w += k;
			}
			j += k - 1;
			continue;
		}
		q[w++] = (char)c;
	}
	*out_len = w;
	return q;
}

/* ------------------------------------------------------------------------ */
/* Decoding                                                                  */

struct dec {
	ProtobufCAllocator *pa;
	unsigned flags;
	unsigned max_depth;
	struct srv_jsonpb_error *err;
	size_t path_len;
	char path[128]; /* the field being decoded: "success[0].request_put.key" */
};

static void *dec_alloc(struct dec *d, size_t n)
{
	return d->pa ? d->pa->alloc(d->pa->allocator_data, n) : malloc(n);
}

static int dec_fail(struct dec *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Sets the error message, prefixed with the field path, and returns EINVAL. */
static int dec_fail(struct dec *d, const char *fmt, ...)
{
	char *m = d->err->msg;
	size_t cap = sizeof d->err->msg;
	int n = 0;
	va_list ap;

	if (d->path_len)
		n = snprintf(m, cap, "field \"%s\": ", d->path);
	if (n < 0 || (size_t)n >= cap)
		n = 0;
	va_start(ap, fmt);
	vsnprintf(m + n, cap - (size_t)n, fmt, ap);
	va_end(ap);
	return MOOR_EINVAL;
}

static int dec_nomem(struct dec *d)
{
	snprintf(d->err->msg, sizeof d->err->msg, "out of memory decoding JSON");
	return MOOR_ENOMEM;
}

/* Appends ".name" or "[i]" to the path; returns the length to restore.
 * Called for every field, so no printf. */
static size_t path_push(struct dec *d, const char *name, size_t index)
{
	/* Room is kept for a closing "..." and the NUL. */
	size_t old = d->path_len, cap = sizeof d->path - 4, n;
	char num[24], *w = num + sizeof num;
	const char *part;

	if (name) {
		part = name;
		n = strlen(name);
	} else {
		*--w = ']';
		do {
			*--w = (char)('0' + index % 10);
			index /= 10;
		} while (index);
		*--w = '[';
		part = w;
		n = (size_t)(num + sizeof num - w);
	}
	if (old + (name && old ? 1 : 0) + n > cap) {
		/* Too deep to name fully: what fits, then "...". */
		if (old < 3 || memcmp(d->path + old - 3, "...", 3) != 0) {
			memcpy(d->path + old, "...", 4);
			d->path_len = old + 3;
		}
		return old;
	}
	if (name && old)
		d->path[d->path_len++] = '.';
	memcpy(d->path + d->path_len, part, n);
	d->path_len += n;
	d->path[d->path_len] = '\0';
	return old;
}

static void path_pop(struct dec *d, size_t old)
{
	d->path_len = old;
	d->path[old] = '\0';
}

static const char *json_kind(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "object";
	case JSON_ARRAY:
		return "array";
	case JSON_STRING:
		return "string";
	case JSON_INTEGER:
	case JSON_REAL:
		return "number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "boolean";
	case JSON_NULL:
		return "null";
	}
	return "value";
}

/* protoc's JSON name: underscores dropped, the letter after one upper-cased
 * ("range_end" → "rangeEnd", "remaining_TTL" → "remainingTTL"). */
static bool json_name_eq(const char *proto_name, const char *key)
{
	bool upper = false;

	for (; *proto_name; proto_name++) {
		char c = *proto_name;

		if (c == '_') {
			upper = true;
			continue;
		}
		if (upper && c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		upper = false;
		if (*key++ != c)
			return false;
	}
	return *key == '\0';
}

static const ProtobufCFieldDescriptor *find_field(const ProtobufCMessageDescriptor *desc,
                                                  const char *key)
{
	const ProtobufCFieldDescriptor *f =
	    protobuf_c_message_descriptor_get_field_by_name(desc, key);

	if (f)
		return f;
	for (unsigned i = 0; i < desc->n_fields; i++)
		if (json_name_eq(desc->fields[i].name, key))
			return &desc->fields[i];
	return NULL;
}

/* An integer given as a JSON number or a decimal string, as sign and
 * magnitude; `text` gets a printable form for messages. */
static int get_integer(struct dec *d, const json_t *v, const char *tname, bool *neg, uint64_t *mag,
                       char *text, size_t text_cap)
{
	if (json_is_integer(v)) {
		json_int_t x = json_integer_value(v);

		*neg = x < 0;
		*mag = x < 0 ? (uint64_t)(-(x + 1)) + 1 : (uint64_t)x;
		snprintf(text, text_cap, "%" JSON_INTEGER_FORMAT, x);
		return 0;
	}
	if (json_is_real(v)) {
		double r = json_real_value(v);

		snprintf(text, text_cap, "%.17g", r);
		/* Beyond 2^53 a double is not exact: the digits the client sent
		 * may not be the value jansson read. Within it, the cast is exact. */
		if (isfinite(r) && (r > 9007199254740992.0 || r < -9007199254740992.0))
			return dec_fail(d, "%s cannot be read exactly as %s; send it as a string",
			                text, tname);
		if (!isfinite(r) || r != (double)(int64_t)r)
			return dec_fail(d, "%s is not an integer (%s)", text, tname);
		*neg = r < 0;
		*mag = (uint64_t)(r < 0 ? -r : r);
		return 0;
	}
	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		size_t n = json_string_length(v), i = 0;
		uint64_t m = 0;

		snprintf(text, text_cap, "\"%.40s%s\"", s, n > 40 ? "..." : "");
		*neg = n > 0 && s[0] == '-';
		i = *neg;
		if (i == n)
			return dec_fail(d, "%s is not an integer (%s)", text, tname);
		for (; i < n; i++) {
			unsigned dig = (unsigned char)s[i] - '0';

			if (dig > 9)
				return dec_fail(d, "%s is not an integer (%s)", text, tname);
			if (m > (UINT64_MAX - dig) / 10)
				return dec_fail(d, "%s is out of range for %s", text, tname);
			m = m * 10 + dig;
		}
		*mag = m;
		return 0;
	}
	return dec_fail(d, "expected %s as a number or a decimal string, got %s", tname,
	                json_kind(v));
}

static int get_signed(struct dec *d, const json_t *v, int64_t min, int64_t max, const char *tname,
                      int64_t *out)
{
	char text[64];
	bool neg;
	uint64_t mag;
	int rc = get_integer(d, v, tname, &neg, &mag, text, sizeof text);

	if (rc)
		return rc;
	if (neg) {
		if (mag == 0)
			*out = 0;
		else if (mag - 1 <= (uint64_t)(-(min + 1)))
			*out = -(int64_t)(mag - 1) - 1;
		else
			return dec_fail(d, "%s is out of range for %s", text, tname);
	} else {
		if (mag > (uint64_t)max)
			return dec_fail(d, "%s is out of range for %s", text, tname);
		*out = (int64_t)mag;
	}
	return 0;
}

static int get_unsigned(struct dec *d, const json_t *v, uint64_t max, const char *tname,
                        uint64_t *out)
{
	char text[64];
	bool neg;
	uint64_t mag;
	int rc = get_integer(d, v, tname, &neg, &mag, text, sizeof text);

	if (rc)
		return rc;
	if ((neg && mag != 0) || mag > max)
		return dec_fail(d, "%s is out of range for %s", text, tname);
	*out = mag;
	return 0;
}

static int get_double(struct dec *d, const json_t *v, bool is_float, double *out)
{
	const char *tname = is_float ? "float" : "double";

	if (json_is_number(v)) {
		*out = json_number_value(v);
	} else if (json_is_string(v)) {
		const char *s = json_string_value(v);
		char *end;

		if (strcmp(s, "NaN") == 0)
			*out = NAN;
		else if (strcmp(s, "Infinity") == 0)
			*out = INFINITY;
		else if (strcmp(s, "-Infinity") == 0)
			*out = -INFINITY;
		else {
			*out = strtod(s, &end);
			if (!s[0] || *end || is_ws((unsigned char)s[0]) || !isfinite(*out) ||
			    (s[0] != '-' && (s[0] < '0' || s[0] > '9')))
				return dec_fail(d, "\"%.40s\" is not a %s", s, tname);
		}
		return 0;
	} else {
		return dec_fail(d, "expected %s as a number, got %s", tname, json_kind(v));
	}
	/* Out of range: what would round to an infinite float (halfway
	 * between FLT_MAX and 2^128 rounds up, to even). */
	if (is_float && isfinite(*out) && (*out >= 0x1.ffffffp127 || *out <= -0x1.ffffffp127))
		return dec_fail(d, "%.9g is out of range for float", *out);
	return 0;
}

/* base64 digit value + 1 for the standard and the URL-safe alphabet;
 * 0: not a digit of that alphabet. */
static const unsigned char b64_std_val[256] = {
    ['A'] = 1,  ['B'] = 2,  ['C'] = 3,  ['D'] = 4,  ['E'] = 5,  ['F'] = 6,  ['G'] = 7,  ['H'] = 8,
    ['I'] = 9,  ['J'] = 10, ['K'] = 11, ['L'] = 12, ['M'] = 13, ['N'] = 14, ['O'] = 15, ['P'] = 16,
    ['Q'] = 17, ['R'] = 18, ['S'] = 19, ['T'] = 20, ['U'] = 21, ['V'] = 22, ['W'] = 23, ['X'] = 24,
    ['Y'] = 25, ['Z'] = 26, ['a'] = 27, ['b'] = 28, ['c'] = 29, ['d'] = 30, ['e'] = 31, ['f'] = 32,
    ['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36, ['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40,
    ['o'] = 41, ['p'] = 42, ['q'] = 43, ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48,
    ['w'] = 49, ['x'] = 50, ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54, ['2'] = 55, ['3'] = 56,
    ['4'] = 57, ['5'] = 58, ['6'] = 59, ['7'] = 60, ['8'] = 61, ['9'] = 62, ['+'] = 63, ['/'] = 64,
};
static const unsigned char b64_url_val[256] = {
    ['A'] = 1,  ['B'] = 2,  ['C'] = 3,  ['D'] = 4,  ['E'] = 5,  ['F'] = 6,  ['G'] = 7,  ['H'] = 8,
    ['I'] = 9,  ['J'] = 10, ['K'] = 11, ['L'] = 12, ['M'] = 13, ['N'] = 14, ['O'] = 15, ['P'] = 16,
    ['Q'] = 17, ['R'] = 18, ['S'] = 19, ['T'] = 20, ['U'] = 21, ['V'] = 22, ['W'] = 23, ['X'] = 24,
    ['Y'] = 25, ['Z'] = 26, ['a'] = 27, ['b'] = 28, ['c'] = 29, ['d'] = 30, ['e'] = 31, ['f'] = 32,
    ['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36, ['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40,
    ['o'] = 41, ['p'] = 42, ['q'] = 43, ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48,
    ['w'] = 49, ['x'] = 50, ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54, ['2'] = 55, ['3'] = 56,
    ['4'] = 57, ['5'] = 58, ['6'] = 59, ['7'] = 60, ['8'] = 61, ['9'] = 62, ['-'] = 63, ['_'] = 64,
};

/* Decodes base64 (standard or URL-safe, padded or not; CR/LF skipped) into
 * a buffer from the decoder's allocator. */
static int get_bytes(struct dec *d, const json_t *v, ProtobufCBinaryData *out)
{
	const unsigned char *s;
	size_t n, digits = 0, pad = 0, w = 0;
	const unsigned char *val;
	uint32_t acc = 0;
	unsigned char *buf;

	if (!json_is_string(v))
		return dec_fail(d, "expected bytes as a base64 string, got %s", json_kind(v));
	s = (const unsigned char *)json_string_value(v);
	n = json_string_length(v);
	val = strpbrk((const char *)s, "-_") ? b64_url_val : b64_std_val;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = s[i];

		if (c == '\r' || c == '\n')
			continue;
		if (c == '=') {
			pad++;
			continue;
		}
		if (pad || !val[c])
			return dec_fail(d, "invalid base64 data at input byte %zu", i);
		digits++;
	}
	if (digits % 4 == 1 || pad > 2 || (pad && (digits + pad) % 4 != 0))
		return dec_fail(d, "invalid base64 data: bad length or padding");
	if (digits == 0) {
		/* Empty: also replaces a proto2 default. */
		out->data = NULL;
		out->len = 0;
		return 0;
	}
	buf = dec_alloc(d, digits / 4 * 3 + 2);
	if (!buf)
		return dec_nomem(d);
	for (size_t i = 0, k = 0; i < n; i++) {
		if (s[i] == '\r' || s[i] == '\n' || s[i] == '=')
			continue;
		acc = acc << 6 | (uint32_t)(val[s[i]] - 1);
		if (++k % 4 == 0) {
			buf[w++] = (unsigned char)(acc >> 16);
			buf[w++] = (unsigned char)(acc >> 8);
			buf[w++] = (unsigned char)acc;
			acc = 0;
		}
	}
	if (digits % 4 == 2) {
		buf[w++] = (unsigned char)(acc >> 4);
	} else if (digits % 4 == 3) {
		buf[w++] = (unsigned char)(acc >> 10);
		buf[w++] = (unsigned char)(acc >> 2);
	}
	out->data = buf;
	out->len = w;
	return 0;
}

static int dec_message(struct dec *d, const ProtobufCMessageDescriptor *desc, const json_t *j,
                       ProtobufCMessage *msg, unsigned depth);

/* One value into p (a singular field, a oneof member or an array element).
 * `always_alloc`: a string must be heap-allocated even when empty (array
 * elements and oneof members, which protobuf-c frees unconditionally). */
static int dec_value(struct dec *d, const ProtobufCFieldDescriptor *f, const json_t *v, void *p,
                     unsigned depth, bool always_alloc)
{
	int64_t sv;
	uint64_t uv;
	double dv;
	int rc;

	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		if ((rc = get_signed(d, v, INT32_MIN, INT32_MAX, "int32", &sv)) != 0)
			return rc;
		*(int32_t *)p = (int32_t)sv;
		return 0;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		if ((rc = get_unsigned(d, v, UINT32_MAX, "uint32", &uv)) != 0)
			return rc;
		*(uint32_t *)p = (uint32_t)uv;
		return 0;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		if ((rc = get_signed(d, v, INT64_MIN, INT64_MAX, "int64", &sv)) != 0)
			return rc;
		*(int64_t *)p = sv;
		return 0;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		if ((rc = get_unsigned(d, v, UINT64_MAX, "uint64", &uv)) != 0)
			return rc;
		*(uint64_t *)p = uv;
		return 0;
	case PROTOBUF_C_TYPE_BOOL:
		if (!json_is_boolean(v))
			return dec_fail(d, "expected bool (true or false), got %s", json_kind(v));
		*(protobuf_c_boolean *)p = json_is_true(v);
		return 0;
	case PROTOBUF_C_TYPE_FLOAT:
		if ((rc = get_double(d, v, true, &dv)) != 0)
			return rc;
		*(float *)p = (float)dv;
		return 0;
	case PROTOBUF_C_TYPE_DOUBLE:
		if ((rc = get_double(d, v, false, &dv)) != 0)
			return rc;
		*(double *)p = dv;
		return 0;
	case PROTOBUF_C_TYPE_ENUM: {
		const ProtobufCEnumDescriptor *ed = f->descriptor;

		if (json_is_string(v)) {
			const ProtobufCEnumValue *ev =
			    protobuf_c_enum_descriptor_get_value_by_name(ed, json_string_value(v));

			if (!ev)
				return dec_fail(d, "unknown value \"%.64s\" for enum %s",
				                json_string_value(v), ed->name);
			*(int *)p = ev->value;
			return 0;
		}
		if (!json_is_number(v))
			return dec_fail(d, "expected enum %s as a name or a number, got %s",
			                ed->name, json_kind(v));
		if ((rc = get_signed(d, v, INT32_MIN, INT32_MAX, "an enum number", &sv)) != 0)
			return rc;
		*(int *)p = (int)sv;
		return 0;
	}
	case PROTOBUF_C_TYPE_STRING: {
		size_t n;
		char *s;

		if (!json_is_string(v))
			return dec_fail(d, "expected string, got %s", json_kind(v));
		n = json_string_length(v);
		if (n == 0 && !always_alloc)
			return 0;
		s = dec_alloc(d, n + 1);
		if (!s)
			return dec_nomem(d);
		memcpy(s, json_string_value(v), n + 1);
		*(char **)p = s;
		return 0;
	}
	case PROTOBUF_C_TYPE_BYTES:
		return get_bytes(d, v, p);
	case PROTOBUF_C_TYPE_MESSAGE: {
		const ProtobufCMessageDescriptor *sd = f->descriptor;
		ProtobufCMessage *sub;

		if (!json_is_object(v))
			return dec_fail(d, "expected %s as an object, got %s", sd->name,
			                json_kind(v));
		sub = dec_alloc(d, sd->sizeof_message);
		if (!sub)
			return dec_nomem(d);
		sd->message_init(sub);
		*(ProtobufCMessage **)p = sub; /* freeable from here on */
		return dec_message(d, sd, v, sub, depth + 1);
	}
	}
	return dec_fail(d, "unsupported field type %d", (int)f->type);
}

static int dec_repeated(struct dec *d, const ProtobufCFieldDescriptor *f, const json_t *v,
                        char *base, unsigned depth)
{
	size_t n, esz = elem_size(f->type);
	size_t *count = (size_t *)(base + f->quantifier_offset);
	char *arr;
	int rc;

	if (!json_is_array(v))
		return dec_fail(d, "expected an array, got %s", json_kind(v));
	n = json_array_size(v);
	if (n == 0)
		return 0;
	if (n > SIZE_MAX / esz)
		return dec_nomem(d);
	arr = dec_alloc(d, n * esz);
	if (!arr)
		return dec_nomem(d);
	memset(arr, 0, n * esz);
	*(void **)(base + f->offset) = arr;
	*count = 0;
	for (size_t i = 0; i < n; i++) {
		const json_t *e = json_array_get(v, i);
		size_t mark = path_push(d, NULL, i);

		if (json_is_null(e))
			rc = dec_fail(d, "null is not allowed in a repeated field");
		else
			rc = dec_value(d, f, e, arr + i * esz, depth, true);
		/* A half-built sub-message is stored already: count it so that
		 * it is freed with the rest. */
		if (rc == 0 || (f->type == PROTOBUF_C_TYPE_MESSAGE &&
		                *(ProtobufCMessage **)(arr + i * esz) != NULL))
			(*count)++;
		path_pop(d, mark);
		if (rc)
			return rc;
	}
	return 0;
}

static int dec_field(struct dec *d, const ProtobufCMessageDescriptor *desc,
                     const ProtobufCFieldDescriptor *f, const json_t *v, ProtobufCMessage *msg,
                     unsigned depth)
{
	char *base = (char *)msg;

	if (json_is_null(v))
		return 0; /* null: the default */
	if (f->label == PROTOBUF_C_LABEL_REPEATED)
		return dec_repeated(d, f, v, base, depth);
	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
		uint32_t *which = (uint32_t *)(base + f->quantifier_offset);

		if (*which != 0 && *which != f->id) {
			const ProtobufCFieldDescriptor *other =
			    protobuf_c_message_descriptor_get_field(desc, *which);

			return dec_fail(d, "only one field of a oneof may be set, and \"%s\" is",
			                other ? other->name : "another");
		}
		/* Set the case first: from here the member is freed with the
		 * message, and it is still zero until a value is stored. */
		*which = f->id;
		return dec_value(d, f, v, base + f->offset, depth, true);
	}
	/* An empty string must replace a proto2 default and mark presence, so
	 * only a proto3 field (LABEL_NONE) may keep its empty default. */
	int rc = dec_value(d, f, v, base + f->offset, depth, f->label != PROTOBUF_C_LABEL_NONE);

	if (rc == 0 && f->label == PROTOBUF_C_LABEL_OPTIONAL &&
	    f->type != PROTOBUF_C_TYPE_MESSAGE && f->type != PROTOBUF_C_TYPE_STRING)
		*(protobuf_c_boolean *)(base + f->quantifier_offset) = 1;
	return rc;
}

static int dec_message(struct dec *d, const ProtobufCMessageDescriptor *desc, const json_t *j,
                       ProtobufCMessage *msg, unsigned depth)
{
	uint64_t seen[4] = {0, 0, 0, 0};
	const char *key;
	json_t *v;

	if (depth > d->max_depth)
		return dec_fail(d, "nested deeper than %u levels", d->max_depth);
	if (!json_is_object(j))
		return dec_fail(d, "expected %s as an object, got %s", desc->name, json_kind(j));
	json_object_foreach((json_t *)j, key, v)
	{
		const ProtobufCFieldDescriptor *f = find_field(desc, key);
		size_t idx, mark;
		int rc;

		if (!f) {
			if (d->flags & SRV_JSONPB_REJECT_UNKNOWN)
				return dec_fail(d, "unknown field \"%.64s\" in %s", key,
				                desc->name);
			continue;
		}
		idx = (size_t)(f - desc->fields);
		if (idx < 256) {
			if (seen[idx / 64] & (1ull << (idx % 64)))
				return dec_fail(d, "field \"%s\" of %s is given twice", f->name,
				                desc->name);
			seen[idx / 64] |= 1ull << (idx % 64);
		}
		mark = path_push(d, f->name, 0);
		rc = dec_field(d, desc, f, v, msg, depth);
		path_pop(d, mark);
		if (rc)
			return rc;
	}
	/* proto2 required fields (none in etcd's API; kept for genericity). */
	for (unsigned i = 0; i < desc->n_fields && i < 256; i++)
		if (desc->fields[i].label == PROTOBUF_C_LABEL_REQUIRED &&
		    !(seen[i / 64] & (1ull << (i % 64))))
			return dec_fail(d, "required field \"%s\" of %s is missing",
			                desc->fields[i].name, desc->name);
	return 0;
}

static void opts_resolve(const struct srv_jsonpb_opts *opts, struct srv_jsonpb_opts *o)
{
	memset(o, 0, sizeof *o);
	if (opts)
		*o = *opts;
	if (!o->max_bytes)
		o->max_bytes = SRV_JSONPB_MAX_BYTES;
	if (!o->max_depth)
		o->max_depth = SRV_JSONPB_MAX_DEPTH;
}

/* Parses the scanned value and builds the message. */
static int decode_scanned(const ProtobufCMessageDescriptor *desc, const unsigned char *data,
                          const struct scan *s, const struct srv_jsonpb_opts *o,
                          ProtobufCMessage **out, struct srv_jsonpb_error *err)
{
	struct dec d = {o->alloc, o->flags, o->max_depth, err, 0, {0}};
	const unsigned char *text = data + s->start;
	size_t text_len = s->end - s->start;
	char *quoted = NULL;
	ProtobufCMessage *msg;
	json_error_t jerr;
	json_t *root = NULL;
	int rc;

	MOOR_ASSERT(desc && desc->magic == PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC);
	if (!s->is_null) {
		if (s->big_ints) {
			quoted = quote_big_ints(text, text_len, &text_len);
			if (!quoted)
				return dec_nomem(&d);
			text = (const unsigned char *)quoted;
		}
		root = json_loadb((const char *)text, text_len, JSON_REJECT_DUPLICATES, &jerr);
		free(quoted);
		if (!root) {
			if (json_error_code(&jerr) == json_error_out_of_memory)
				return dec_nomem(&d);
			return set_err(err, MOOR_EINVAL, "invalid JSON: %s at offset %zu",
			               jerr.text, s->start + (size_t)jerr.position);
		}
	}
	msg = dec_alloc(&d, desc->sizeof_message);
	if (!msg) {
		json_decref(root);
		return dec_nomem(&d);
	}
	desc->message_init(msg);
	rc = root ? dec_message(&d, desc, root, msg, 0) : 0;
	json_decref(root);
	if (rc) {
		protobuf_c_message_free_unpacked(msg, o->alloc);
		return rc;
	}
	*out = msg;
	return 0;
}

int srv_jsonpb_decode(const ProtobufCMessageDescriptor *desc, const void *data, size_t len,
                      const struct srv_jsonpb_opts *opts, ProtobufCMessage **out,
                      struct srv_jsonpb_error *err)
{
	const unsigned char *p = data;
	struct srv_jsonpb_opts o;
	struct scan s;
	int rc;

	*out = NULL;
	err->msg[0] = '\0';
	opts_resolve(opts, &o);
	if (len > o.max_bytes)
		return set_err(err, MOOR_ETOOLARGE,
		               "request body of %zu bytes exceeds the limit of %zu bytes", len,
		               o.max_bytes);
	rc = scan_value(p, len, o.max_bytes, o.max_depth, &s, err);
	if (rc < 0)
		return rc;
	if (rc == SCAN_PARTIAL)
		return set_err(err, MOOR_EINVAL, "invalid JSON: unexpected end of input");
	if (rc == SCAN_EMPTY) {
		s.start = s.end = len;
		s.is_null = true;
	}
	for (size_t i = s.end; i < len; i++)
		if (!is_ws(p[i]))
			return set_err(
			    err, MOOR_EINVAL,
			    "invalid JSON: unexpected data after the object at offset %zu", i);
	return decode_scanned(desc, p, &s, &o, out, err);
}

int srv_jsonpb_decode_next(const ProtobufCMessageDescriptor *desc, const void *data, size_t len,
                           bool at_eof, const struct srv_jsonpb_opts *opts, ProtobufCMessage **out,
                           size_t *consumed, struct srv_jsonpb_error *err)
{
	struct srv_jsonpb_opts o;
	struct scan s;
	int rc;

	*out = NULL;
	*consumed = 0;
	err->msg[0] = '\0';
	opts_resolve(opts, &o);
	rc = scan_value(data, len, o.max_bytes, o.max_depth, &s, err);
	if (rc < 0)
		return rc;
	if (rc == SCAN_EMPTY) {
		*consumed = len;
		return 0;
	}
	if (rc == SCAN_PARTIAL) {
		if (at_eof)
			return set_err(err, MOOR_EINVAL, "invalid JSON: unexpected end of input");
		*consumed = s.start;
		return 0;
	}
	rc = decode_scanned(desc, data, &s, &o, out, err);
	if (rc == 0)
		*consumed = s.end;
	return rc;
}
