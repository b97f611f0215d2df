/*
 * The cluster API: member add, remove, promote and update (proposed through
 * raft from any member, answered once this member has applied the change),
 * and leadership transfer (maintenance/transfer-leadership).
 */
#include "server/api_int.h"

#include "common/error.h"

#include <stdlib.h>
#include <string.h>

static void reply_members(struct call *c)
{
	struct members_view *v = malloc(sizeof *v);
	Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;

	if (!v) {
		reply_error(c, MOOR_ENOMEM);
		return;
	}
	members_view_fill(v, c->api->node);
	fill_cluster_header(c, &h);
	switch (c->route->rpc) {
	case SRV_RPC_MEMBER_ADD: {
		Etcdserverpb__MemberAddResponse r = ETCDSERVERPB__MEMBER_ADD_RESPONSE__INIT;
		Etcdserverpb__MemberAddRequest *q = (void *)c->msg;
		Etcdserverpb__Member m = ETCDSERVERPB__MEMBER__INIT;
		m.id = c->aux;
		m.n_peerurls = q->n_peerurls;
		m.peerurls = q->peerurls;
		m.islearner = q->islearner;
		r.header = &h;
		r.member = &m;
		r.n_members = v->n;
		r.members = v->pp;
		reply_msg(c, &r.base);
		break;
	}
	case SRV_RPC_MEMBER_REMOVE: {
		Etcdserverpb__MemberRemoveResponse r = ETCDSERVERPB__MEMBER_REMOVE_RESPONSE__INIT;
		r.header = &h;
		r.n_members = v->n;
		r.members = v->pp;
		reply_msg(c, &r.base);
		break;
	}
	case SRV_RPC_MEMBER_PROMOTE: {
		Etcdserverpb__MemberPromoteResponse r = ETCDSERVERPB__MEMBER_PROMOTE_RESPONSE__INIT;
		r.header = &h;
		r.n_members = v->n;
		r.members = v->pp;
		reply_msg(c, &r.base);
		break;
	}
	default: {
		Etcdserverpb__MemberUpdateResponse r = ETCDSERVERPB__MEMBER_UPDATE_RESPONSE__INIT;
		r.header = &h;
		r.n_members = v->n;
		r.members = v->pp;
		reply_msg(c, &r.base);
		break;
	}
	}
	free(v);
}

static void on_member_state(void *ctx, int rc)
{
	struct call *c = ctx;

	if (rc)
		reply_error(c, rc);
	else
		reply_members(c);
	call_free(c);
}

static void on_change_applied(void *ctx, int rc, void *resp, int64_t aux)
{
	struct call *c = ctx;
	int want;

	(void)aux;
	kv_response_free(resp);
	if (rc) {
		reply_error(c, rc);
		call_free(c);
		return;
	}
	switch (c->route->rpc) {
	case SRV_RPC_MEMBER_ADD:
		want = ((Etcdserverpb__MemberAddRequest *)c->msg)->islearner ? SRV_MEMBER_LEARNER
		                                                             : SRV_MEMBER_VOTER;
		break;
	case SRV_RPC_MEMBER_REMOVE:
		want = SRV_MEMBER_GONE;
		break;
	case SRV_RPC_MEMBER_PROMOTE:
		want = SRV_MEMBER_VOTER;
		break;
	default:
		on_member_state(c, 0);
		return;
	}
	rc = srv_node_wait_member(c->api->node, c->aux, want, on_member_state, c);
	if (rc) {
		reply_error(c, rc);
		call_free(c);
	}
}

static int parse_urls(char **s, size_t n, struct srv_url_list *out)
{
	memset(out, 0, sizeof *out);
	if (n == 0 || n > SRV_MAX_URLS)
		return MOOR_EINVAL;
	for (size_t i = 0; i < n; i++)
		if (srv_url_parse(s[i], &out->url[out->n++]) != 0)
			return MOOR_EINVAL;
	return 0;
}

void api_member_change(struct call *c)
{
	Moorpb__InternalRequest ir = MOORPB__INTERNAL_REQUEST__INIT;
	Moorpb__MemberChange mc = MOORPB__MEMBER_CHANGE__INIT;
	struct srv_url_list urls;
	int rc;

	switch (c->route->rpc) {
	case SRV_RPC_MEMBER_ADD: {
		Etcdserverpb__MemberAddRequest *q = (void *)c->msg;
		if (parse_urls(q->peerurls, q->n_peerurls, &urls) != 0) {
			struct srv_gw_error e;
			struct moor_buf b;
			srv_gw_error_set(&e, SRV_GRPC_INVALID_ARGUMENT,
			                 "peerURLs must be one to %d http(s)://host:port URLs",
			                 SRV_MAX_URLS);
			moor_buf_init(&b, NULL);
			srv_gw_write_error(&b, &e);
			srv_req_reply(c->req, (unsigned)e.http_status, "application/json", b.data,
			              b.len);
			moor_buf_free(&b);
			call_free(c);
			return;
		}
		mc.kind = MOORPB__MEMBER_CHANGE__KIND__ADD;
		mc.id = srv_node_member_id_for(c->api->node, &urls);
		mc.n_peer_urls = q->n_peerurls;
		mc.peer_urls = q->peerurls;
		mc.learner = q->islearner;
		break;
	}
	case SRV_RPC_MEMBER_REMOVE:
		mc.kind = MOORPB__MEMBER_CHANGE__KIND__REMOVE;
		mc.id = ((Etcdserverpb__MemberRemoveRequest *)c->msg)->id;
		break;
	case SRV_RPC_MEMBER_PROMOTE:
		mc.kind = MOORPB__MEMBER_CHANGE__KIND__PROMOTE;
		mc.id = ((Etcdserverpb__MemberPromoteRequest *)c->msg)->id;
		break;
	default: {
		Etcdserverpb__MemberUpdateRequest *q = (void *)c->msg;
		if (parse_urls(q->peerurls, q->n_peerurls, &urls) != 0) {
			reply_error(c, MOOR_EINVAL);
			call_free(c);
			return;
		}
		mc.kind = MOORPB__MEMBER_CHANGE__KIND__UPDATE;
		mc.id = q->id;
		mc.n_peer_urls = q->n_peerurls;
		mc.peer_urls = q->peerurls;
		break;
	}
	}
	c->aux = mc.id;
	ir.request_case = MOORPB__INTERNAL_REQUEST__REQUEST_MEMBER_CHANGE;
	ir.member_change = &mc;
	/* deferred first: the answer may come before the call returns */
	srv_req_defer(c->req);
	rc = srv_node_propose(c->api->node, &ir, on_change_applied, c);
	if (rc) {
		reply_error(c, rc);
		call_free(c);
		return;
	}
}

/* ---- transfer-leadership: asked, then watched until the leader moved ---- */

static void on_timer_closed(uv_handle_t *h)
{
	free(h);
}

static void move_done(struct call *c, int rc)
{
	struct srv_api *api = c->api;

	if (c->mprev)
		c->mprev->mnext = c->mnext;
	else if (api->moving == c)
		api->moving = c->mnext;
	if (c->mnext)
		c->mnext->mprev = c->mprev;
	uv_timer_stop(c->timer);
	uv_close((uv_handle_t *)c->timer, on_timer_closed);
	c->timer = NULL;
	if (rc) {
		reply_error(c, rc);
	} else {
		Etcdserverpb__MoveLeaderResponse r = ETCDSERVERPB__MOVE_LEADER_RESPONSE__INIT;
		Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
		fill_header(c, &h);
		r.header = &h;
		reply_msg(c, &r.base);
	}
	call_free(c);
}

static void on_move_poll(uv_timer_t *t)
{
	struct call *c = t->data;
	uint64_t target = ((Etcdserverpb__MoveLeaderRequest *)c->msg)->targetid;
	struct srv_node_info info;

	srv_node_info(c->api->node, &info);
	if (info.leader == target)
		move_done(c, 0);
	else if (uv_now(t->loop) >= c->aux)
		move_done(c, MOOR_ETIMEOUT);
}

void api_move_leader(struct call *c)
{
	uint64_t target = ((Etcdserverpb__MoveLeaderRequest *)c->msg)->targetid;
	struct srv_node_info info;
	uv_loop_t *loop;
	int rc;

	srv_node_info(c->api->node, &info);
	if (info.leader == target) {
		Etcdserverpb__MoveLeaderResponse r = ETCDSERVERPB__MOVE_LEADER_RESPONSE__INIT;
		Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
		fill_header(c, &h);
		r.header = &h;
		reply_msg(c, &r.base);
		call_free(c);
		return;
	}
	rc = target ? srv_node_transfer_leadership(c->api->node, target) : MOOR_EINVAL;
	c->timer = rc ? NULL : malloc(sizeof *c->timer);
	if (rc || !c->timer) {
		reply_error(c, rc ? rc : MOOR_ENOMEM);
		call_free(c);
		return;
	}
	loop = c->api->loop;
	uv_timer_init(loop, c->timer);
	c->timer->data = c;
	c->aux = uv_now(loop) + SRV_REQUEST_TIMEOUT_MS;
	c->mnext = c->api->moving;
	if (c->mnext)
		c->mnext->mprev = c;
	c->api->moving = c;
	uv_timer_start(c->timer, on_move_poll, 20, 20);
	srv_req_defer(c->req);
}

void srv_api_moves_cancel(struct srv_api *api)
{
	while (api->moving)
		move_done(api->moving, MOOR_ECLOSED);
}
