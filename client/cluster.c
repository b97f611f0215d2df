/*
 * Cluster and maintenance calls: members, status, hashkv, defragment,
 * leadership transfer, alarms, snapshot. Calls about one member (status,
 * hashkv, defragment) go to the endpoint named, without failover.
 */
#include "client/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void moor_members_free(struct moor_members *m)
{
	if (!m)
		return;
	free(m->members);
	if (m->priv_)
		protobuf_c_message_free_unpacked(m->priv_, NULL);
	free(m);
}

static void member_from(struct moor_member *o, const Etcdserverpb__Member *p)
{
	memset(o, 0, sizeof *o);
	if (!p)
		return;
	o->id = p->id;
	o->name = p->name ? p->name : "";
	o->peer_urls = (const char *const *)p->peerurls;
	o->n_peer_urls = p->n_peerurls;
	o->client_urls = (const char *const *)p->clienturls;
	o->n_client_urls = p->n_clienturls;
	o->is_learner = p->islearner;
}

/* Every member-list-shaped answer has header and members as its fields 1
 * and 2 (3 for member add, whose field 2 is the added member). */
static int members_wrap(ProtobufCMessage *msg, Etcdserverpb__ResponseHeader *hdr,
                        Etcdserverpb__Member **list, size_t n, Etcdserverpb__Member *added,
                        struct moor_members **out)
{
	struct moor_members *m = calloc(1, sizeof *m);

	if (m && n)
		m->members = calloc(n, sizeof *m->members);
	if (!m || (n && !m->members)) {
		free(m);
		protobuf_c_message_free_unpacked(msg, NULL);
		return cl_set_error(MOOR_ENOMEM, "out of memory");
	}
	cl_header(&m->header, hdr);
	for (size_t i = 0; i < n; i++)
		member_from(&m->members[i], list[i]);
	m->n_members = n;
	member_from(&m->added, added);
	m->priv_ = msg;
	if (out)
		*out = m;
	else
		moor_members_free(m);
	return 0;
}

int moor_member_list(moor_client *c, struct moor_members **out)
{
	Etcdserverpb__MemberListRequest q = ETCDSERVERPB__MEMBER_LIST_REQUEST__INIT;
	Etcdserverpb__MemberListResponse *m;
	int rc;

	*out = NULL;
	q.linearizable = true;
	rc = cl_call(c, "/v3/cluster/member/list", &q.base,
	             &etcdserverpb__member_list_response__descriptor, CL_READ, NULL,
	             (ProtobufCMessage **)&m);
	if (rc)
		return rc;
	return members_wrap(&m->base, m->header, m->members, m->n_members, NULL, out);
}

int moor_member_add(moor_client *c, const char *const *peer_urls, size_t n, bool learner,
                    struct moor_members **out)
{
	Etcdserverpb__MemberAddRequest q = ETCDSERVERPB__MEMBER_ADD_REQUEST__INIT;
	Etcdserverpb__MemberAddResponse *m;
	int rc;

	if (out)
		*out = NULL;
	q.peerurls = (char **)peer_urls;
	q.n_peerurls = n;
	q.islearner = learner;
	rc = cl_call(c, "/v3/cluster/member/add", &q.base,
	             &etcdserverpb__member_add_response__descriptor, CL_WRITE, NULL,
	             (ProtobufCMessage **)&m);
	if (rc)
		return rc;
	return members_wrap(&m->base, m->header, m->members, m->n_members, m->member, out);
}

int moor_member_remove(moor_client *c, uint64_t id, struct moor_members **out)
{
	Etcdserverpb__MemberRemoveRequest q = ETCDSERVERPB__MEMBER_REMOVE_REQUEST__INIT;
	Etcdserverpb__MemberRemoveResponse *m;
	int rc;

	if (out)
		*out = NULL;
	q.id = id;
	rc = cl_call(c, "/v3/cluster/member/remove", &q.base,
	             &etcdserverpb__member_remove_response__descriptor, CL_WRITE, NULL,
	             (ProtobufCMessage **)&m);
	if (rc)
		return rc;
	return members_wrap(&m->base, m->header, m->members, m->n_members, NULL, out);
}

int moor_member_update(moor_client *c, uint64_t id, const char *const *peer_urls, size_t n,
                       struct moor_members **out)
{
	Etcdserverpb__MemberUpdateRequest q = ETCDSERVERPB__MEMBER_UPDATE_REQUEST__INIT;
	Etcdserverpb__MemberUpdateResponse *m;
	int rc;

	if (out)
		*out = NULL;
	q.id = id;
	q.peerurls = (char **)peer_urls;
	q.n_peerurls = n;
	rc = cl_call(c, "/v3/cluster/member/update", &q.base,
	             &etcdserverpb__member_update_response__descriptor, CL_WRITE, NULL,
	             (ProtobufCMessage **)&m);
	if (rc)
		return rc;
	return members_wrap(&m->base, m->header, m->members, m->n_members, NULL, out);
}

int moor_member_promote(moor_client *c, uint64_t id, struct moor_members **out)
{
	Etcdserverpb__MemberPromoteRequest q = ETCDSERVERPB__MEMBER_PROMOTE_REQUEST__INIT;
	Etcdserverpb__MemberPromoteResponse *m;
	int rc;

	if (out)
		*out = NULL;
	q.id = id;
	rc = cl_call(c, "/v3/cluster/member/promote", &q.base,
	             &etcdserverpb__member_promote_response__descriptor, CL_WRITE, NULL,
	             (ProtobufCMessage **)&m);
	if (rc)
		return rc;
	return members_wrap(&m->base, m->header, m->members, m->n_members, NULL, out);
}

/* endpoint NULL: the current one, still without failover (status is about
 * one member). */
static const char *pin(moor_client *c, const char *endpoint, char *buf, size_t size)
{
	if (endpoint)
		return endpoint;
	cl_endpoint_current(c, buf, size, NULL);
	return buf;
}

int moor_status(moor_client *c, const char *endpoint, struct moor_status *out)
{
	Etcdserverpb__StatusRequest q = ETCDSERVERPB__STATUS_REQUEST__INIT;
	Etcdserverpb__StatusResponse *m;
	char ep[256];
	int rc;

	memset(out, 0, sizeof *out);
	rc = cl_call(c, "/v3/maintenance/status", &q.base,
	             &etcdserverpb__status_response__descriptor, CL_READ,
	             pin(c, endpoint, ep, sizeof ep), (ProtobufCMessage **)&m);
	if (rc)
		return rc;
	cl_header(&out->header, m->header);
	snprintf(out->version, sizeof out->version, "%s", m->version ? m->version : "");
	out->db_size = m->dbsize;
	out->db_size_in_use = m->dbsizeinuse;
	out->leader = m->leader;
	out->raft_index = m->raftindex;
	out->raft_term = m->raftterm;
	out->raft_applied_index = m->raftappliedindex;
	out->is_learner = m->islearner;
	for (size_t i = 0; i < m->n_errors; i++) {
		size_t len = strlen(out->errors);
		snprintf(out->errors + len, sizeof out->errors - len, "%s%s", i ? "; " : "",
		         m->errors[i]);
	}
	etcdserverpb__status_response__free_unpacked(m, NULL);
	return 0;
}

int cl_endpoint_has_leader(moor_client *c, const char *endpoint, int timeout_ms)
{
	Etcdserverpb__StatusRequest q = ETCDSERVERPB__STATUS_REQUEST__INIT;
	Etcdserverpb__StatusResponse *m;
	int ok = cl_call_t(c, "/v3/maintenance/status", &q.base,
	                   &etcdserverpb__status_response__descriptor, CL_READ, endpoint,
	                   timeout_ms, (ProtobufCMessage **)&m);

	if (ok != 0)
		return ok;
	ok = m->leader != 0;
	etcdserverpb__status_response__free_unpacked(m, NULL);
	return ok;
}

int moor_hashkv(moor_client *c, const char *endpoint, int64_t revision, uint32_t *hash,
                int64_t *hash_revision, int64_t *compact_revision)
{
	Etcdserverpb__HashKVRequest q = ETCDSERVERPB__HASH_KVREQUEST__INIT;
	Etcdserverpb__HashKVResponse *m;
	char ep[256];
	int rc;

	q.revision = revision;
	rc = cl_call(c, "/v3/maintenance/hashkv", &q.base,
	             &etcdserverpb__hash_kvresponse__descriptor, CL_READ,
	             pin(c, endpoint, ep, sizeof ep), (ProtobufCMessage **)&m);
	if (rc)
		return rc;
	if (hash)
		*hash = m->hash;
	if (hash_revision)
		*hash_revision = m->hash_revision;
	if (compact_revision)
		*compact_revision = m->compact_revision;
	etcdserverpb__hash_kvresponse__free_unpacked(m, NULL);
	return 0;
}

int moor_defragment(moor_client *c, const char *endpoint)
{
	Etcdserverpb__DefragmentRequest q = ETCDSERVERPB__DEFRAGMENT_REQUEST__INIT;
	ProtobufCMessage *m;
	char ep[256];
	int rc;

	rc = cl_call(c, "/v3/maintenance/defragment", &q.base,
	             &etcdserverpb__defragment_response__descriptor, CL_READ,
	             pin(c, endpoint, ep, sizeof ep), &m);
	if (rc == 0)
		protobuf_c_message_free_unpacked(m, NULL);
	return rc;
}

int moor_move_leader(moor_client *c, uint64_t target_id)
{
	Etcdserverpb__MoveLeaderRequest q = ETCDSERVERPB__MOVE_LEADER_REQUEST__INIT;
	ProtobufCMessage *m;
	int rc;

	q.targetid = target_id;
	rc = cl_call(c, "/v3/maintenance/transfer-leadership", &q.base,
	             &etcdserverpb__move_leader_response__descriptor, CL_WRITE, NULL, &m);
	if (rc == 0)
		protobuf_c_message_free_unpacked(m, NULL);
	return rc;
}

int moor_alarm(moor_client *c, enum moor_alarm_action action, uint64_t member_id, int type,
               struct moor_alarm **alarms, size_t *n)
{
	Etcdserverpb__AlarmRequest q = ETCDSERVERPB__ALARM_REQUEST__INIT;
	Etcdserverpb__AlarmResponse *m;
	int rc;

	*alarms = NULL;
	*n = 0;
	q.action = (Etcdserverpb__AlarmRequest__AlarmAction)action;
	q.memberid = member_id;
	q.alarm = (Etcdserverpb__AlarmType)type;
	rc = cl_call(c, "/v3/maintenance/alarm", &q.base, &etcdserverpb__alarm_response__descriptor,
	             action == MOOR_ALARM_GET ? CL_READ : CL_WRITE, NULL, (ProtobufCMessage **)&m);
	if (rc)
		return rc;
	if (m->n_alarms) {
		*alarms = calloc(m->n_alarms, sizeof **alarms);
		if (!*alarms) {
			etcdserverpb__alarm_response__free_unpacked(m, NULL);
			return cl_set_error(MOOR_ENOMEM, "out of memory");
		}
		for (size_t i = 0; i < m->n_alarms; i++) {
			(*alarms)[i].member_id = m->alarms[i]->memberid;
			(*alarms)[i].type = (int)m->alarms[i]->alarm;
		}
		*n = m->n_alarms;
	}
	etcdserverpb__alarm_response__free_unpacked(m, NULL);
	return 0;
}

/* The request is the (empty) SnapshotRequest as a plain body, like every
 * unary call; the answer is a sequence of SnapshotResponse frames (4-byte
 * big-endian length each) whose blobs, in order, are the file; the last has
 * remaining_bytes 0. */
int moor_snapshot(moor_client *c, int fd, uint64_t *bytes_out)
{
	Etcdserverpb__SnapshotRequest q = ETCDSERVERPB__SNAPSHOT_REQUEST__INIT;
	struct moor_buf in, out;
	char ep[256];
	uint64_t total = 0;
	size_t off = 0;
	bool last = false;
	int rc;

	moor_buf_init(&in, NULL);
	moor_buf_init(&out, NULL);
	(void)q; /* packs to zero bytes */
	rc = cl_http(c, "/v3/maintenance/snapshot", NULL, 0, CL_READ, pin(c, NULL, ep, sizeof ep),
	             &out);
	while (rc == 0 && !last) {
		Etcdserverpb__SnapshotResponse *m = NULL;
		int more = cl_frame_next(out.data, out.len, &off,
		                         &etcdserverpb__snapshot_response__descriptor,
		                         (ProtobufCMessage **)&m);
		if (more <= 0) {
			rc = more < 0 ? more
			              : cl_set_error(MOOR_EPROTO, "snapshot stream ended early");
			break;
		}
		for (size_t done = 0; done < m->blob.len && rc == 0;) {
			ssize_t w = write(fd, m->blob.data + done, m->blob.len - done);
			if (w < 0 && errno != EINTR)
				rc = cl_set_error(-errno, "writing the snapshot: %s",
				                  strerror(errno));
			else if (w > 0)
				done += (size_t)w;
		}
		total += m->blob.len;
		last = m->remaining_bytes == 0;
		etcdserverpb__snapshot_response__free_unpacked(m, NULL);
	}
	moor_buf_free(&in);
	moor_buf_free(&out);
	if (bytes_out)
		*bytes_out = total;
	return rc;
}
