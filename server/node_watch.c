/*
 * The watch hub inside the node. The apply thread copies each committed
 * batch's events (kv hands them out only during its callback) into one
 * block that becomes a watch_batch; the loop gives it to the hub when the
 * apply job comes back, after the store holds those revisions. Catch-up
 * reads go to the store through kv_history_read, bounded by the revision
 * the hub has reached.
 */
#include "server/node_int.h"

#include "common/assert.h"
#include "common/error.h"

#include <stdlib.h>
#include <string.h>

#define LOG(n, lvl, ...) moor_log((n)->log, lvl, "watch", __VA_ARGS__)
#define SYNC_BUDGET_EVENTS 20000

/* ---- copying events off the apply thread ---- */

static size_t kv_size(const Mvccpb__KeyValue *kv)
{
	return kv ? sizeof *kv + kv->key.len + kv->value.len : 0;
}

static unsigned char *kv_copy(const Mvccpb__KeyValue *src, Mvccpb__KeyValue **dst, unsigned char *p)
{
	Mvccpb__KeyValue *kv = (Mvccpb__KeyValue *)(void *)p;

	*kv = *src;
	p += sizeof *kv;
	kv->key.data = p;
	memcpy(p, src->key.data, src->key.len);
	p += src->key.len;
	kv->value.data = src->value.len ? p : NULL;
	if (src->value.len)
		memcpy(p, src->value.data, src->value.len);
	p += src->value.len;
	*dst = kv;
	return p;
}

static void copied_batch_destroy(struct watch_batch *b)
{
	free(b); /* one block */
}

#define ALIGN8(x) (((x) + 7) & ~(size_t)7)

/* Called by kv on the apply thread inside kv_batch_commit. */
static void on_kv_events(void *ctx, Mvccpb__Event *const *events, size_t n_events)
{
	struct srv_node *n = ctx;
	struct watch_batch *b;
	size_t bytes = ALIGN8(sizeof *b) + ALIGN8(sizeof(Mvccpb__Event *) * n_events);
	unsigned char *p;

	if (!n_events)
		return;
	for (size_t i = 0; i < n_events; i++)
		bytes += ALIGN8(sizeof(Mvccpb__Event)) + ALIGN8(kv_size(events[i]->kv)) +
		         ALIGN8(kv_size(events[i]->prev_kv));
	b = malloc(bytes);
	MOOR_ASSERT(b); /* the daemon stops on out-of-memory */
	memset(b, 0, sizeof *b);
	p = (unsigned char *)b + ALIGN8(sizeof *b);
	b->events = (Mvccpb__Event **)(void *)p;
	p += ALIGN8(sizeof(Mvccpb__Event *) * n_events);
	for (size_t i = 0; i < n_events; i++) {
		Mvccpb__Event *e = (Mvccpb__Event *)(void *)p;
		*e = *events[i];
		p += ALIGN8(sizeof *e);
		e->prev_kv = NULL;
		if (events[i]->kv) {
			unsigned char *q = kv_copy(events[i]->kv, &e->kv, p);
			p += ALIGN8((size_t)(q - p));
		}
		if (events[i]->prev_kv) {
			unsigned char *q = kv_copy(events[i]->prev_kv, &e->prev_kv, p);
			p += ALIGN8((size_t)(q - p));
		}
		b->events[i] = e;
	}
	b->n_events = n_events;
	b->destroy = copied_batch_destroy;
	MOOR_ASSERT(!n->apply_events); /* one commit per job */
	n->apply_events = b;
}

/* ---- history for catch-up ---- */

struct history_batch {
	struct watch_batch b;
	struct kv_history h;
};

static void history_batch_destroy(struct watch_batch *b)
{
	struct history_batch *hb = (struct history_batch *)b;
	kv_history_free(&hb->h);
	free(hb);
}

static int history_read(void *ctx, const struct watch_history_query *q,
                        struct watch_history_result *res)
{
	struct srv_node *n = ctx;
	struct history_batch *hb = calloc(1, sizeof *hb);
	size_t keep = 0;
	int rc;

	if (!hb)
		return MOOR_ENOMEM;
	rc = kv_history_read(n->kv, q->from_rev, q->max_events, q->prev_kv, &hb->h);
	if (rc) {
		if (rc == MOOR_ECOMPACTED)
			res->compact_rev = hb->h.compact_revision;
		free(hb);
		return rc;
	}
	/* The store may be ahead of the hub: keep what the hub has seen. */
	while (keep < hb->h.n_events && hb->h.events[keep]->kv->mod_revision <= q->to_rev)
		keep++;
	res->next_rev = hb->h.next_rev < q->to_rev + 1 ? hb->h.next_rev : q->to_rev + 1;
	if (keep < hb->h.n_events)
		res->next_rev = q->to_rev + 1;
	if (!keep) {
		kv_history_free(&hb->h);
		free(hb);
		res->batch = NULL;
		return 0;
	}
	hb->b.events = hb->h.events;
	hb->b.n_events = keep;
	hb->b.destroy = history_batch_destroy;
	res->batch = &hb->b;
	return 0;
}

/* ---- catch-up work on the loop ---- */

static void on_sync_idle(uv_idle_t *idle)
{
	struct srv_node *n = idle->data;
	int rc = watch_hub_sync(n->hub, SYNC_BUDGET_EVENTS);

	if (rc < 0)
		LOG(n, MOOR_LOG_WARN, "watch catch-up: %s", moor_strerror(rc));
	if (rc <= 0)
		uv_idle_stop(idle);
}

static void on_hub_wakeup(void *ctx)
{
	struct srv_node *n = ctx;
	if (!n->stopping)
		uv_idle_start(&n->sync_idle, on_sync_idle);
}

void node_watch_config(struct srv_node *n, struct kv_config *kc)
{
	kc->on_events = on_kv_events;
	kc->events_ctx = n;
}

int node_watch_start(struct srv_node *n)
{
	struct watch_hub_config hc = {0};
	int rc;

	hc.logger = n->log;
	hc.store.read = history_read;
	hc.store.ctx = n;
	hc.revision = n->revision;
	hc.seed = n->id;
	hc.wakeup = on_hub_wakeup;
	hc.wakeup_ctx = n;
	rc = watch_hub_new(&hc, &n->hub);
	if (rc)
		return rc;
	uv_idle_init(n->loop, &n->sync_idle);
	n->sync_idle.data = n;
	return 0;
}

/* The loop: an apply job came back with its events. */
void node_watch_apply(struct srv_node *n, struct watch_batch *b, int64_t revision)
{
	int rc;

	if (b) {
		rc = watch_hub_apply(n->hub, b);
		if (rc) {
			LOG(n, MOOR_LOG_ERROR, "watch hub refused a batch: %s", moor_strerror(rc));
			b->destroy(b);
		}
	}
	if (revision > watch_hub_revision(n->hub))
		watch_hub_set_revision(n->hub, revision);
}

void node_watch_reset(struct srv_node *n)
{
	if (n->on_watch_reset)
		n->on_watch_reset(n->on_watch_reset_ctx);
	if (n->revision > watch_hub_revision(n->hub))
		watch_hub_set_revision(n->hub, n->revision);
}

void srv_node_set_watch_reset(struct srv_node *n, void (*fn)(void *ctx), void *ctx)
{
	n->on_watch_reset = fn;
	n->on_watch_reset_ctx = ctx;
}

struct watch_hub *srv_node_hub(const struct srv_node *n)
{
	return n->hub;
}
