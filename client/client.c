/*
 * The client handle (configuration, endpoints, the pool of connections)
 * and the conversion of decoded protobuf answers into moor.h's result
 * types, whose pointers point into the decoded message kept in priv_.
 */
#include "client/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static char *dup_or_null(const char *s, int *rc)
{
	char *d;

	if (!s || !*s)
		return NULL;
	d = strdup(s);
	if (!d)
		*rc = MOOR_ENOMEM;
	return d;
}

/* "host:port" → "http://host:port", or https:// when the client has TLS
 * settings (as etcd's client does); no trailing slash. */
static char *endpoint_norm(const char *e, bool tls)
{
	size_t n = strlen(e);
	char *out;

	while (n > 0 && e[n - 1] == '/')
		n--;
	if (n == 0)
		return NULL;
	if (strstr(e, "://")) {
		if (strncmp(e, "http://", 7) != 0 && strncmp(e, "https://", 8) != 0)
			return NULL;
		return strndup(e, n);
	}
	out = malloc(n + 9);
	if (out)
		snprintf(out, n + 9, "%s://%.*s", tls ? "https" : "http", (int)n, e);
	return out;
}

int moor_client_open(const struct moor_config *cfg, moor_client **out)
{
	moor_client *c;
	int rc = 0;

	*out = NULL;
	if (!cfg || cfg->n_endpoints == 0 || cfg->n_endpoints > MOOR_MAX_ENDPOINTS ||
	    !cfg->endpoints)
		return cl_set_error(MOOR_EINVAL, "between 1 and %d endpoints are needed",
		                    MOOR_MAX_ENDPOINTS);
	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != CURLE_OK)
		return cl_set_error(MOOR_ENOMEM, "curl_global_init failed");
	c = calloc(1, sizeof *c);
	if (!c)
		return cl_set_error(MOOR_ENOMEM, "out of memory");
	pthread_mutex_init(&c->mu, NULL);
	c->endpoints = calloc(cfg->n_endpoints, sizeof *c->endpoints);
	if (!c->endpoints) {
		rc = MOOR_ENOMEM;
		goto err;
	}
	bool tls = cfg->tls_ca_file || cfg->tls_cert_file || cfg->tls_key_file ||
	           cfg->tls_insecure_skip_verify;
	for (size_t i = 0; i < cfg->n_endpoints; i++) {
		if (!cfg->endpoints[i]) {
			rc = cl_set_error(MOOR_EINVAL, "endpoint %zu is NULL", i);
			goto err;
		}
		c->endpoints[i] = endpoint_norm(cfg->endpoints[i], tls);
		c->n_endpoints = i + 1;
		if (!c->endpoints[i]) {
			rc = cl_set_error(MOOR_EINVAL, "bad endpoint \"%s\"", cfg->endpoints[i]);
			goto err;
		}
	}
	c->dial_timeout_ms =
	    cfg->dial_timeout_ms > 0 ? cfg->dial_timeout_ms : MOOR_DEFAULT_DIAL_TIMEOUT_MS;
	c->request_timeout_ms =
	    cfg->request_timeout_ms > 0 ? cfg->request_timeout_ms : MOOR_DEFAULT_REQUEST_TIMEOUT_MS;
	c->ca_file = dup_or_null(cfg->tls_ca_file, &rc);
	c->cert_file = dup_or_null(cfg->tls_cert_file, &rc);
	c->key_file = dup_or_null(cfg->tls_key_file, &rc);
	if (rc)
		goto err;
	c->insecure = cfg->tls_insecure_skip_verify;
	c->serializable = cfg->serializable;
	c->log_fn = cfg->log_fn;
	c->log_ctx = cfg->log_ctx;
	atomic_init(&c->cur, 0);
	*out = c;
	return 0;
err:
	moor_client_close(c);
	return rc == MOOR_ENOMEM ? cl_set_error(rc, "out of memory") : rc;
}

void moor_client_close(moor_client *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n_pool; i++)
		curl_easy_cleanup(c->pool[i]);
	for (size_t i = 0; i < c->n_endpoints; i++)
		free(c->endpoints[i]);
	free(c->endpoints);
	free(c->ca_file);
	free(c->cert_file);
	free(c->key_file);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

size_t moor_prefix_end(const void *prefix, size_t len, uint8_t *buf)
{
	const uint8_t *p = prefix;

	for (size_t i = len; i > 0; i--) {
		if (p[i - 1] < 0xff) {
			memcpy(buf, p, i - 1);
			buf[i - 1] = (uint8_t)(p[i - 1] + 1);
			return i;
		}
	}
	buf[0] = 0; /* every key after prefix */
	return 1;
}

/* ---- results ---- */

void cl_header(struct moor_header *h, const Etcdserverpb__ResponseHeader *p)
{
	memset(h, 0, sizeof *h);
	if (!p)
		return;
	h->cluster_id = p->cluster_id;
	h->member_id = p->member_id;
	h->revision = p->revision;
	h->raft_term = p->raft_term;
}

/* Empty bytes decode as NULL; callers get "" so that memcmp, fwrite and
 * friends never see a null pointer. */
static const uint8_t empty[1];

void cl_kv(struct moor_kv *kv, const Mvccpb__KeyValue *p)
{
	memset(kv, 0, sizeof *kv);
	kv->key = kv->value = empty;
	if (!p)
		return;
	kv->key = p->key.data ? p->key.data : empty;
	kv->key_len = p->key.len;
	kv->value = p->value.data ? p->value.data : empty;
	kv->value_len = p->value.len;
	kv->create_revision = p->create_revision;
	kv->mod_revision = p->mod_revision;
	kv->version = p->version;
	kv->lease = p->lease;
}

static int kvs_from(struct moor_kv **out, size_t *n_out, Mvccpb__KeyValue **kvs, size_t n)
{
	*out = NULL;
	*n_out = 0;
	if (n == 0)
		return 0;
	*out = calloc(n, sizeof **out);
	if (!*out)
		return MOOR_ENOMEM;
	for (size_t i = 0; i < n; i++)
		cl_kv(&(*out)[i], kvs[i]);
	*n_out = n;
	return 0;
}

int cl_response_from_range(struct moor_response *r, Etcdserverpb__RangeResponse *m)
{
	r->type = MOOR_OP_GET;
	cl_header(&r->header, m->header);
	r->more = m->more;
	r->count = m->count;
	return kvs_from(&r->kvs, &r->n_kvs, m->kvs, m->n_kvs);
}

int cl_response_from_put(struct moor_response *r, Etcdserverpb__PutResponse *m)
{
	r->type = MOOR_OP_PUT;
	cl_header(&r->header, m->header);
	if (m->prev_kv)
		return kvs_from(&r->prev_kvs, &r->n_prev_kvs, &m->prev_kv, 1);
	return 0;
}

int cl_response_from_delete(struct moor_response *r, Etcdserverpb__DeleteRangeResponse *m)
{
	r->type = MOOR_OP_DELETE;
	cl_header(&r->header, m->header);
	r->deleted = m->deleted;
	return kvs_from(&r->prev_kvs, &r->n_prev_kvs, m->prev_kvs, m->n_prev_kvs);
}

int cl_response_from_txn(struct moor_response *r, Etcdserverpb__TxnResponse *m)
{
	int rc = 0;

	r->type = MOOR_OP_TXN;
	cl_header(&r->header, m->header);
	r->succeeded = m->succeeded;
	if (m->n_responses == 0)
		return 0;
	r->responses = calloc(m->n_responses, sizeof *r->responses);
	if (!r->responses)
		return MOOR_ENOMEM;
	r->n_responses = m->n_responses;
	for (size_t i = 0; i < m->n_responses && rc == 0; i++) {
		Etcdserverpb__ResponseOp *op = m->responses[i];
		struct moor_response *sub = &r->responses[i];

		switch (op->response_case) {
		case ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_RANGE:
			rc = cl_response_from_range(sub, op->response_range);
			break;
		case ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_PUT:
			rc = cl_response_from_put(sub, op->response_put);
			break;
		case ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_DELETE_RANGE:
			rc = cl_response_from_delete(sub, op->response_delete_range);
			break;
		case ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_TXN:
			rc = cl_response_from_txn(sub, op->response_txn);
			break;
		default:
			rc = MOOR_EPROTO;
			break;
		}
	}
	return rc;
}

void cl_response_clear(struct moor_response *r)
{
	free(r->kvs);
	free(r->prev_kvs);
	for (size_t i = 0; i < r->n_responses; i++)
		cl_response_clear(&r->responses[i]);
	free(r->responses);
	r->kvs = r->prev_kvs = NULL;
	r->responses = NULL;
	r->n_kvs = r->n_prev_kvs = r->n_responses = 0;
}

void moor_response_free(struct moor_response *r)
{
	if (!r)
		return;
	cl_response_clear(r);
	if (r->priv_)
		protobuf_c_message_free_unpacked(r->priv_, NULL);
	free(r);
}
