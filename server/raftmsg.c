/*
 * Conversion between raft_message and moorraftpb.Message. The context
 * travels as 8 big-endian bytes; entries and snapshot data are referenced,
 * not copied, in both directions.
 */
#include "server/raftmsg.h"

#include "common/error.h"
#include "proto/raft.pb-c.h"

#include <stdlib.h>
#include <string.h>

struct srv_raftmsg_holder {
	Moorraftpb__Message *pb;
	struct raft_entry *entries;
	struct raft_snapshot snap;
};

static void conf_to_pb(const struct raft_conf_state *c, Moorraftpb__ConfState *pb, uint64_t *voters,
                       uint64_t *learners)
{
	memcpy(voters, c->voters, sizeof(uint64_t) * c->n_voters);
	memcpy(learners, c->learners, sizeof(uint64_t) * c->n_learners);
	pb->n_voters = c->n_voters;
	pb->voters = voters;
	pb->n_learners = c->n_learners;
	pb->learners = learners;
}

int srv_raftmsg_encode(const struct raft_message *m, struct moor_buf *out)
{
	Moorraftpb__Message pb = MOORRAFTPB__MESSAGE__INIT;
	Moorraftpb__Entry *ents = NULL, **eptrs = NULL;
	Moorraftpb__Snapshot snap = MOORRAFTPB__SNAPSHOT__INIT;
	Moorraftpb__SnapshotMetadata meta = MOORRAFTPB__SNAPSHOT_METADATA__INIT;
	Moorraftpb__ConfState cs = MOORRAFTPB__CONF_STATE__INIT;
	uint64_t voters[RAFT_MAX_MEMBERS], learners[RAFT_MAX_MEMBERS];
	uint8_t ctx[8];
	size_t len;
	int rc;

	pb.type = (Moorraftpb__MessageType)m->type;
	pb.to = m->to;
	pb.from = m->from;
	pb.term = m->term;
	pb.log_term = m->log_term;
	pb.index = m->index;
	pb.commit = m->commit;
	pb.reject = m->reject;
	pb.reject_hint = m->reject_hint;
	if (m->context) {
		moor_put_be64(ctx, m->context);
		pb.context.data = ctx;
		pb.context.len = 8;
	}
	if (m->n_entries) {
		ents = malloc(sizeof *ents * m->n_entries);
		eptrs = malloc(sizeof *eptrs * m->n_entries);
		if (!ents || !eptrs) {
			free(ents);
			free(eptrs);
			return MOOR_ENOMEM;
		}
		for (size_t i = 0; i < m->n_entries; i++) {
			const struct raft_entry *e = &m->entries[i];
			moorraftpb__entry__init(&ents[i]);
			ents[i].term = e->term;
			ents[i].index = e->index;
			ents[i].type = (Moorraftpb__EntryType)e->type;
			ents[i].data.data = e->data;
			ents[i].data.len = e->len;
			eptrs[i] = &ents[i];
		}
		pb.n_entries = m->n_entries;
		pb.entries = eptrs;
	}
	if (m->snapshot) {
		meta.index = m->snapshot->meta.index;
		meta.term = m->snapshot->meta.term;
		conf_to_pb(&m->snapshot->meta.conf, &cs, voters, learners);
		meta.conf_state = &cs;
		snap.metadata = &meta;
		snap.data.data = m->snapshot->data;
		snap.data.len = m->snapshot->len;
		pb.snapshot = &snap;
	}
	len = moorraftpb__message__get_packed_size(&pb);
	rc = moor_buf_reserve(out, len);
	if (rc == 0) {
		moorraftpb__message__pack(&pb, out->data + out->len);
		out->len += len;
	}
	free(ents);
	free(eptrs);
	return rc;
}

static int valid_type(int t)
{
	return t >= RAFT_MSG_PROP && t <= RAFT_MSG_TRANSFER_LEADER && t != 11;
}

int srv_raftmsg_decode(const uint8_t *data, size_t len, size_t max_entries, struct raft_message *m,
                       struct srv_raftmsg_holder **holder)
{
	struct srv_raftmsg_holder *h;
	Moorraftpb__Message *pb = moorraftpb__message__unpack(NULL, len, data);

	if (!pb)
		return MOOR_EPROTO;
	if (!valid_type(pb->type) || pb->n_entries > max_entries ||
	    (pb->context.len != 0 && pb->context.len != 8)) {
		moorraftpb__message__free_unpacked(pb, NULL);
		return MOOR_EPROTO;
	}
	h = calloc(1, sizeof *h);
	if (!h) {
		moorraftpb__message__free_unpacked(pb, NULL);
		return MOOR_ENOMEM;
	}
	h->pb = pb;
	memset(m, 0, sizeof *m);
	m->type = (enum raft_msg_type)pb->type;
	m->to = pb->to;
	m->from = pb->from;
	m->term = pb->term;
	m->log_term = pb->log_term;
	m->index = pb->index;
	m->commit = pb->commit;
	m->reject = pb->reject;
	m->reject_hint = pb->reject_hint;
	if (pb->context.len == 8)
		m->context = moor_get_be64(pb->context.data);
	if (pb->n_entries) {
		h->entries = calloc(pb->n_entries, sizeof *h->entries);
		if (!h->entries) {
			srv_raftmsg_free(h);
			return MOOR_ENOMEM;
		}
		for (size_t i = 0; i < pb->n_entries; i++) {
			const Moorraftpb__Entry *e = pb->entries[i];
			if (e->type != MOORRAFTPB__ENTRY_TYPE__ENTRY_NORMAL &&
			    e->type != MOORRAFTPB__ENTRY_TYPE__ENTRY_CONF_CHANGE) {
				srv_raftmsg_free(h);
				return MOOR_EPROTO;
			}
			h->entries[i].term = e->term;
			h->entries[i].index = e->index;
			h->entries[i].type = (enum raft_entry_type)e->type;
			h->entries[i].len = e->data.len;
			h->entries[i].data = e->data.len ? e->data.data : NULL;
		}
		m->entries = h->entries;
		m->n_entries = pb->n_entries;
	}
	if (pb->snapshot) {
		const Moorraftpb__SnapshotMetadata *md = pb->snapshot->metadata;
		const Moorraftpb__ConfState *cs = md ? md->conf_state : NULL;
		if (!md || !cs || cs->n_voters > RAFT_MAX_MEMBERS ||
		    cs->n_learners > RAFT_MAX_MEMBERS) {
			srv_raftmsg_free(h);
			return MOOR_EPROTO;
		}
		h->snap.meta.index = md->index;
		h->snap.meta.term = md->term;
		h->snap.meta.conf.n_voters = (uint32_t)cs->n_voters;
		h->snap.meta.conf.n_learners = (uint32_t)cs->n_learners;
		if (cs->n_voters)
			memcpy(h->snap.meta.conf.voters, cs->voters,
			       sizeof(uint64_t) * cs->n_voters);
		if (cs->n_learners)
			memcpy(h->snap.meta.conf.learners, cs->learners,
			       sizeof(uint64_t) * cs->n_learners);
		h->snap.len = pb->snapshot->data.len;
		h->snap.data = pb->snapshot->data.len ? pb->snapshot->data.data : NULL;
		m->snapshot = &h->snap;
	}
	if (m->type == RAFT_MSG_SNAP && !m->snapshot) {
		srv_raftmsg_free(h);
		return MOOR_EPROTO;
	}
	*holder = h;
	return 0;
}

void srv_raftmsg_free(struct srv_raftmsg_holder *h)
{
	if (!h)
		return;
	moorraftpb__message__free_unpacked(h->pb, NULL);
	free(h->entries);
	free(h);
}
