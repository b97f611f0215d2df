/*
 * What the API's files share: one call's state and the reply helpers.
 */
#ifndef MOOR_SERVER_API_INT_H
#define MOOR_SERVER_API_INT_H

#include "server/api.h"
#include "server/gateway_errors.h"

struct call {
	struct srv_api *api;
	struct srv_req *req;
	const struct srv_gw_route *route;
	ProtobufCMessage *msg;
	int proto;                  /* 1: protobuf bodies */
	uint64_t aux;               /* per-call: a member id, a deadline */
	uint64_t start_ns;          /* for the latency histogram */
	uv_timer_t *timer;          /* for calls that poll */
	struct call *mnext, *mprev; /* api->moving */
};

void call_free(struct call *c);
void reply_error(struct call *c, int code);
void reply_gw_error(struct call *c, const struct srv_gw_error *e);
/* A fresh lease id for a grant this member takes. */
int64_t api_lease_id_new(struct srv_api *api);
void fill_header(struct call *c, Etcdserverpb__ResponseHeader *h);
void fill_cluster_header(struct call *c, Etcdserverpb__ResponseHeader *h);
/* Encodes and sends a response message; takes no ownership. */
void reply_msg(struct call *c, const ProtobufCMessage *m);

/* The members as etcd's Member messages, with the storage they point into. */
struct members_view {
	struct srv_node_member ms[SRV_MAX_MEMBERS];
	Etcdserverpb__Member pm[SRV_MAX_MEMBERS], *pp[SRV_MAX_MEMBERS];
	char *purls[SRV_MAX_MEMBERS][SRV_MAX_URLS], *curls[SRV_MAX_MEMBERS][SRV_MAX_URLS];
	size_t n;
};
void members_view_fill(struct members_view *v, struct srv_node *node);

/* api_maint.c */
void api_snapshot(struct call *c);
void api_alarm(struct call *c);
void api_defragment(struct call *c);

/* api_cluster.c */
void api_member_change(struct call *c);
void api_move_leader(struct call *c);

/* api_lock.c: etcd's v3lock and v3election services. Each takes the
 * call (answers it and frees it, now or later). */
void api_lock_acquire(struct call *c);     /* Lock, Campaign */
void api_lock_release(struct call *c);     /* Unlock, Proclaim, Resign */
void api_election_leader(struct call *c);  /* Leader */
void api_election_observe(struct call *c); /* Observe (a stream) */

#endif
