/*
 * Snapshots in the node (see snapshot.h): compaction of the log, sending
 * the store to a member that needs it, receiving and installing one.
 */
#include "server/node_int.h"

#include "common/assert.h"
#include "common/crc32c.h"
#include "common/error.h"
#include "proto/raft.pb-c.h"
#include "server/snapshot.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOG(n, lvl, ...) moor_log((n)->log, lvl, "snapshot", __VA_ARGS__)

/* <data-dir>/snap/<what>-<peer>-<index>.<ext> */
static void snap_path(const struct srv_node *n, char *out, size_t len, const char *what,
                      uint64_t peer, uint64_t index, const char *ext)
{
	snprintf(out, len, "%s/snap/%s-%016llx-%llu.%s", n->cfg->data_dir, what,
	         (unsigned long long)peer, (unsigned long long)index, ext);
}

/* ---- compaction ---- */

struct flush_job {
	struct srv_job job;
	struct srv_node *n;
	uint64_t durable;
	uint64_t term;
	struct node_membership members; /* at `durable` */
	int rc;
};

static void flush_run(struct srv_job *j)
{
	struct flush_job *f = (struct flush_job *)j;
	struct kv_status st;

	/* On the apply thread, between two batches: the store, the index and
	 * the membership below are those of one applied state. */
	f->rc = kv_flush(f->n->kv, &f->durable);
	kv_status(f->n->kv, &st);
	f->term = st.applied_term;
	f->members = f->n->apply_members;
}

struct release_job {
	struct srv_job job;
	struct srv_node *n;
	struct wal_snapshot mark;
	int rc;
	unsigned released;
};

static void release_run(struct srv_job *j)
{
	struct release_job *r = (struct release_job *)j;
	struct wal_batch b = {.snapshot = &r->mark};

	r->rc = wal_append(r->n->wal, &b);
	if (r->rc == 0)
		r->rc = wal_sync(r->n->wal, NULL);
	if (r->rc == 0)
		r->rc = wal_release(r->n->wal, r->mark.index, &r->released);
}

static void release_done(struct srv_job *j)
{
	struct release_job *r = (struct release_job *)j;
	struct srv_node *n = r->n;

	if (r->rc)
		LOG(n, MOOR_LOG_WARN, "WAL release at %llu: %s (%s)",
		    (unsigned long long)r->mark.index, moor_strerror(r->rc), wal_errmsg(n->wal));
	else if (r->released)
		LOG(n, MOOR_LOG_INFO, "released %u WAL segments below index %llu", r->released,
		    (unsigned long long)r->mark.index);
	free(r);
}

static void conf_of(const struct node_membership *ms, struct raft_conf_state *cs)
{
	memset(cs, 0, sizeof *cs);
	for (int i = 0; i < ms->n; i++) {
		if (!ms->m[i].in_conf)
			continue;
		if (ms->m[i].learner)
			cs->learners[cs->n_learners++] = ms->m[i].id;
		else
			cs->voters[cs->n_voters++] = ms->m[i].id;
	}
}

static void flush_done(struct srv_job *j)
{
	struct flush_job *f = (struct flush_job *)j;
	struct srv_node *n = f->n;
	struct release_job *r;

	n->compacting = false;
	if (f->rc || n->stopping) {
		if (f->rc)
			LOG(n, MOOR_LOG_WARN, "store flush failed: %s", moor_strerror(f->rc));
		free(f);
		return;
	}
	/* The raft log in memory keeps one interval behind the flushed state,
	 * for followers that lag a little. */
	if (n->prev_flush_index > n->mem_compact_index) {
		struct raft_conf_state cs;
		conf_of(&n->prev_flush_members, &cs);
		if (raft_memstorage_compact(n->ms, n->prev_flush_index, &cs, NULL, 0) == 0)
			n->mem_compact_index = n->prev_flush_index;
	}
	n->prev_flush_index = f->durable;
	n->prev_flush_members = f->members;
	/* The WAL below the flushed state is no longer needed to recover. A
	 * store installed from a snapshot may be ahead of the log: the marker
	 * never goes past the log's last index (it would drop entries the log
	 * still needs); the next flush releases the rest. */
	uint64_t last = 0;
	struct raft_storage rs = raft_memstorage_storage(n->ms);
	rs.last_index(rs.ctx, &last);
	r = calloc(1, sizeof *r);
	if (r && f->durable > 1 && f->durable <= last) {
		r->n = n;
		r->mark.index = f->durable;
		r->mark.term = f->term;
		r->job.run = release_run;
		r->job.done = release_done;
		srv_worker_submit(&n->wal_worker, &r->job);
	} else {
		free(r);
	}
	free(f);
}

void node_snap_maybe_compact(struct srv_node *n)
{
	struct flush_job *f;

	if (n->compacting || n->stopping ||
	    n->applied_index < n->last_compact_trigger + n->snapshot_count)
		return;
	f = calloc(1, sizeof *f);
	if (!f)
		return;
	n->compacting = true;
	n->last_compact_trigger = n->applied_index;
	f->n = n;
	f->job.run = flush_run;
	f->job.done = flush_done;
	srv_worker_submit(&n->apply_worker, &f->job);
}

/* ---- sending ---- */

struct snap_out {
	struct srv_node *n;
	uint64_t to;
	int fd;
	char path[1100];
	uint64_t total, offset;
	uint32_t crc;
	struct raft_snapshot_meta meta;
	uint8_t *msg; /* the encoded MSG_SNAP */
	size_t msg_len;
	bool ready, failed;
	char err[1400];
};

struct snap_make_job {
	struct srv_job job;
	struct snap_out *o;
};

static void snap_out_free(struct snap_out *o)
{
	if (o->fd >= 0)
		close(o->fd);
	if (o->path[0])
		unlink(o->path);
	free(o->msg);
	free(o);
}

static void make_run(struct srv_job *j)
{
	struct snap_out *o = ((struct snap_make_job *)j)->o;
	struct srv_node *n = o->n;
	char dir[1100];
	uint64_t applied;
	int rc;

	snap_path(n, dir, sizeof dir, "out", o->to, o->meta.index, "ckpt");
	srv_snap_rmdir(dir);
	rc = kv_snapshot_create(n->kv, dir, &applied);
	if (rc) {
		snprintf(o->err, sizeof o->err, "checkpoint: %s", moor_strerror(rc));
		o->failed = true;
		return;
	}
	snap_path(n, o->path, sizeof o->path, "out", o->to, o->meta.index, "arc");
	rc = srv_snap_pack(dir, o->path, &o->total, &o->crc, o->err, sizeof o->err);
	srv_snap_rmdir(dir);
	if (rc == 0) {
		o->fd = open(o->path, O_RDONLY | O_CLOEXEC);
		if (o->fd < 0) {
			snprintf(o->err, sizeof o->err, "open %s: %s", o->path, strerror(errno));
			rc = -errno;
		}
	}
	o->failed = rc != 0;
	if (!o->failed)
		LOG(n, MOOR_LOG_INFO,
		    "snapshot for %016llx ready: store at index %llu, %llu bytes to send",
		    (unsigned long long)o->to, (unsigned long long)applied,
		    (unsigned long long)o->total);
}

static void report(struct srv_node *n, uint64_t to, bool ok)
{
	if (n->n_snap_reports < NODE_MAX_MEMBERS) {
		n->snap_reports[n->n_snap_reports].id = to;
		n->snap_reports[n->n_snap_reports].ok = ok;
		n->n_snap_reports++;
	}
}

static void out_finish(struct srv_node *n, int slot, bool ok)
{
	struct snap_out *o = n->snap_out[slot];

	if (!ok)
		LOG(n, MOOR_LOG_WARN, "snapshot to %016llx failed: %s", (unsigned long long)o->to,
		    o->err[0] ? o->err : "peer unreachable");
	else
		LOG(n, MOOR_LOG_INFO, "snapshot at index %llu sent to %016llx (%llu bytes)",
		    (unsigned long long)o->meta.index, (unsigned long long)o->to,
		    (unsigned long long)o->total);
	report(n, o->to, ok);
	if (ok)
		srv_counter_add(&n->m.snapshots_sent, 1);
	snap_out_free(o);
	n->snap_out[slot] = NULL;
}

static void make_done(struct srv_job *j)
{
	struct snap_make_job *mj = (struct snap_make_job *)j;
	struct snap_out *o = mj->o;
	struct srv_node *n = o->n;

	free(mj);
	node_install_resume(n);
	for (int i = 0; i < NODE_MAX_MEMBERS; i++)
		if (n->snap_out[i] == o) {
			if (o->failed || n->stopping)
				out_finish(n, i, false);
			else
				o->ready = true;
		}
	node_snap_pump(n);
}

/* The core wants a snapshot sent to m->to: start one unless one is going. */
void node_snap_send(struct srv_node *n, const struct raft_message *m)
{
	struct snap_make_job *mj;
	struct snap_out *o;
	int slot = -1;

	if (n->install_waiting) { /* the store is about to be replaced */
		report(n, m->to, false);
		return;
	}
	for (int i = 0; i < NODE_MAX_MEMBERS; i++) {
		if (n->snap_out[i] && n->snap_out[i]->to == m->to)
			return;
		if (!n->snap_out[i] && slot < 0)
			slot = i;
	}
	o = calloc(1, sizeof *o);
	mj = calloc(1, sizeof *mj);
	if (slot < 0 || !o || !mj) {
		free(o);
		free(mj);
		report(n, m->to, false);
		return;
	}
	o->n = n;
	o->to = m->to;
	o->fd = -1;
	o->meta = m->snapshot->meta;
	moor_buf_reset(&n->enc);
	if (srv_raftmsg_encode(m, &n->enc) != 0 || !(o->msg = malloc(n->enc.len))) {
		free(o);
		free(mj);
		report(n, m->to, false);
		return;
	}
	memcpy(o->msg, n->enc.data, n->enc.len);
	o->msg_len = n->enc.len;
	n->snap_out[slot] = o;
	mj->o = o;
	mj->job.run = make_run;
	mj->job.done = make_done;
	LOG(n, MOOR_LOG_INFO, "member %016llx needs a snapshot (index %llu): preparing it",
	    (unsigned long long)m->to, (unsigned long long)o->meta.index);
	srv_worker_submit(&n->snap_worker, &mj->job);
}

static int send_chunk(struct srv_node *n, struct snap_out *o)
{
	Moorraftpb__SnapshotChunk ch = MOORRAFTPB__SNAPSHOT_CHUNK__INIT;
	Moorraftpb__SnapshotMetadata md = MOORRAFTPB__SNAPSHOT_METADATA__INIT;
	uint64_t left = o->total - o->offset;
	size_t k = left < SRV_SNAP_CHUNK_BYTES ? (size_t)left : SRV_SNAP_CHUNK_BYTES;
	uint8_t *data = malloc(k ? k : 1);
	size_t len;
	int rc;

	if (!data)
		return MOOR_ENOMEM;
	if (pread(o->fd, data, k, (off_t)o->offset) != (ssize_t)k) {
		free(data);
		snprintf(o->err, sizeof o->err, "read %s: %s", o->path, strerror(errno));
		return -EIO;
	}
	md.index = o->meta.index;
	md.term = o->meta.term;
	ch.metadata = &md;
	ch.offset = o->offset;
	ch.total = o->total;
	ch.data.data = data;
	ch.data.len = k;
	ch.last = o->offset + k == o->total;
	if (ch.last) {
		ch.message.data = o->msg;
		ch.message.len = o->msg_len;
		ch.crc32c = o->crc;
	}
	len = moorraftpb__snapshot_chunk__get_packed_size(&ch);
	moor_buf_reset(&n->enc);
	rc = moor_buf_reserve(&n->enc, len + 1);
	if (rc == 0) {
		n->enc.data[0] = NODE_FRAME_SNAPSHOT;
		moorraftpb__snapshot_chunk__pack(&ch, n->enc.data + 1);
		n->enc.len = len + 1;
		rc = srv_peer_send(n->peers, o->to, n->enc.data, n->enc.len);
	}
	free(data);
	if (rc == 0)
		o->offset += k;
	return rc;
}

/* Sends more of every snapshot in flight while its peer's queue has room. */
void node_snap_pump(struct srv_node *n)
{
	for (int i = 0; i < NODE_MAX_MEMBERS; i++) {
		struct snap_out *o = n->snap_out[i];
		if (!o || !o->ready)
			continue;
		if (!srv_peer_connected(n->peers, o->to)) {
			out_finish(n, i, false);
			continue;
		}
		while (o->offset < o->total &&
		       srv_peer_queued_bytes(n->peers, o->to) < SRV_SNAP_MAX_QUEUED) {
			int rc = send_chunk(n, o);
			if (rc == MOOR_EUNAVAILABLE)
				break; /* queue full: next tick */
			if (rc) {
				out_finish(n, i, false);
				o = NULL;
				break;
			}
		}
		if (o && o->offset == o->total)
			out_finish(n, i, true);
	}
}

/* From node_pump, outside a ready batch. */
void node_snap_reports(struct srv_node *n)
{
	for (int i = 0; i < n->n_snap_reports; i++)
		raft_report_snapshot(n->raft, n->snap_reports[i].id, n->snap_reports[i].ok);
	n->n_snap_reports = 0;
}

/* ---- receiving ---- */

struct unpack_job {
	struct srv_job job;
	struct srv_node *n;
	char arc[1100], dir[1100];
	uint64_t index;
	uint8_t *msg;
	size_t msg_len;
	int rc;
	char err[256];
};

static void unpack_run(struct srv_job *j)
{
	struct unpack_job *u = (struct unpack_job *)j;

	srv_snap_rmdir(u->dir);
	u->rc = srv_snap_unpack(u->arc, u->dir, u->err, sizeof u->err);
	unlink(u->arc);
}

static void unpack_done(struct srv_job *j)
{
	struct unpack_job *u = (struct unpack_job *)j;
	struct srv_node *n = u->n;

	if (u->rc == 0 && !n->stopping && n->snap_in_dir[0] && u->index < n->snap_in_index) {
		/* an older copy than the one we hold: not needed */
		srv_snap_rmdir(u->dir);
	} else if (u->rc == 0 && !n->stopping) {
		if (n->snap_in_dir[0] && strcmp(n->snap_in_dir, u->dir) != 0)
			srv_snap_rmdir(n->snap_in_dir);
		snprintf(n->snap_in_dir, sizeof n->snap_in_dir, "%s", u->dir);
		srv_counter_add(&n->m.snapshots_received, 1);
		n->snap_in_index = u->index;
		LOG(n, MOOR_LOG_INFO, "snapshot at index %llu received and unpacked",
		    (unsigned long long)u->index);
		node_input_frame(n, u->msg, u->msg_len);
	} else if (u->rc) {
		LOG(n, MOOR_LOG_WARN, "snapshot at index %llu unusable: %s",
		    (unsigned long long)u->index, u->err);
		srv_snap_rmdir(u->dir);
	}
	free(u->msg);
	free(u);
	node_install_resume(n);
}

static void in_reset(struct srv_node *n)
{
	if (n->snap_in_fd >= 0) {
		close(n->snap_in_fd);
		n->snap_in_fd = -1;
	}
}

/* A SnapshotChunk frame from a peer. Returns non-zero to drop the peer's
 * connection (garbage). */
int node_snap_chunk(struct srv_node *n, uint64_t from, const uint8_t *data, size_t len)
{
	Moorraftpb__SnapshotChunk *ch = moorraftpb__snapshot_chunk__unpack(NULL, len, data);
	const char *arc = n->snap_in_arc;
	int rc = 0;

	if (!ch || !ch->metadata)
		goto bad;
	if (ch->offset == 0) {
		/* every transfer gets files of its own: a second copy of the same
		 * snapshot must not truncate one being unpacked or installed */
		in_reset(n);
		n->snap_in_seq++;
		snprintf(n->snap_in_arc, sizeof n->snap_in_arc, "%s/snap/in-%016llx-%llu-%llu.arc",
		         n->cfg->data_dir, (unsigned long long)from,
		         (unsigned long long)ch->metadata->index,
		         (unsigned long long)n->snap_in_seq);
		n->snap_in_fd =
		    open(n->snap_in_arc, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		n->snap_in_off = 0;
		n->snap_in_crc = 0;
		n->snap_in_from = from;
		if (n->snap_in_fd < 0) {
			LOG(n, MOOR_LOG_WARN, "cannot create %s: %s", arc, strerror(errno));
			goto out;
		}
	}
	if (n->snap_in_fd < 0 || from != n->snap_in_from || ch->offset != n->snap_in_off ||
	    ch->total > (1ull << 40) || ch->offset + ch->data.len > ch->total) {
		/* out of order or from an abandoned transfer: the leader starts over */
		in_reset(n);
		goto out;
	}
	if (write(n->snap_in_fd, ch->data.data, ch->data.len) != (ssize_t)ch->data.len) {
		LOG(n, MOOR_LOG_WARN, "cannot write %s: %s", arc, strerror(errno));
		in_reset(n);
		goto out;
	}
	n->snap_in_crc = moor_crc32c(n->snap_in_crc, ch->data.data, ch->data.len);
	n->snap_in_off += ch->data.len;
	if (ch->last) {
		struct unpack_job *u;
		fsync(n->snap_in_fd);
		in_reset(n);
		if (n->snap_in_off != ch->total || n->snap_in_crc != ch->crc32c) {
			LOG(n, MOOR_LOG_WARN,
			    "snapshot at index %llu from %016llx failed its check (%llu of %llu "
			    "bytes, crc %08x want %08x)",
			    (unsigned long long)ch->metadata->index, (unsigned long long)from,
			    (unsigned long long)n->snap_in_off, (unsigned long long)ch->total,
			    n->snap_in_crc, ch->crc32c);
			unlink(arc);
			goto out;
		}
		u = calloc(1, sizeof *u);
		if (!u || !(u->msg = malloc(ch->message.len ? ch->message.len : 1))) {
			free(u);
			goto out;
		}
		u->n = n;
		u->index = ch->metadata->index;
		snprintf(u->arc, sizeof u->arc, "%s", arc);
		snprintf(u->dir, sizeof u->dir, "%s/snap/in-%016llx-%llu-%llu.ckpt",
		         n->cfg->data_dir, (unsigned long long)from, (unsigned long long)u->index,
		         (unsigned long long)n->snap_in_seq);
		memcpy(u->msg, ch->message.data, ch->message.len);
		u->msg_len = ch->message.len;
		u->job.run = unpack_run;
		u->job.done = unpack_done;
		srv_worker_submit(&n->snap_worker, &u->job);
	}
out:
	moorraftpb__snapshot_chunk__free_unpacked(ch, NULL);
	return rc;
bad:
	if (ch)
		moorraftpb__snapshot_chunk__free_unpacked(ch, NULL);
	return MOOR_EPROTO;
}

/* ---- installing ---- */

/* The core handed us a snapshot in a ready batch: the store becomes the
 * checkpoint we received for it. The apply thread must be idle. */
int node_snap_install(struct srv_node *n, const struct raft_snapshot *snap)
{
	struct kv_status st;
	void *blob = NULL;
	size_t blen = 0;
	int rc;

	kv_status(n->kv, &st);
	if (st.applied_index < snap->meta.index) {
		if (!n->snap_in_dir[0] || n->snap_in_index < snap->meta.index) {
			LOG(n, MOOR_LOG_ERROR,
			    "raft installs a snapshot at index %llu but no store checkpoint for it "
			    "was received",
			    (unsigned long long)snap->meta.index);
			return MOOR_ECORRUPT;
		}
		/* The WAL already records this snapshot: keep a second name for
		 * its files until the store holds them, so that a crash in
		 * between finds them again at start (node_snap_recover). */
		char keep[1200];
		snprintf(keep, sizeof keep, "%s.keep", n->snap_in_dir);
		srv_snap_rmdir(keep);
		if (srv_snap_link(n->snap_in_dir, keep) != 0)
			LOG(n, MOOR_LOG_WARN, "cannot keep a copy of %s", n->snap_in_dir);
		rc = kv_snapshot_restore(n->kv, n->snap_in_dir);
		if (rc == 0)
			srv_snap_rmdir(keep);
		if (rc) {
			LOG(n, MOOR_LOG_ERROR, "cannot restore the store from %s: %s (%s)",
			    n->snap_in_dir, moor_strerror(rc), kv_errmsg(n->kv));
			return rc;
		}
	}
	srv_snap_rmdir(n->snap_in_dir);
	n->snap_in_dir[0] = '\0';
	rc = raft_memstorage_apply_snapshot(n->ms, snap);
	if (rc && rc != MOOR_ESNAPOUTOFDATE)
		return rc;
	kv_status(n->kv, &st);
	n->applied_index = n->handed_index = st.applied_index;
	n->revision = st.revision;
	n->mem_compact_index = snap->meta.index;
	n->last_compact_trigger = st.applied_index;
	rc = kv_meta_get(n->kv, "membership", &blob, &blen);
	if (rc == 0) {
		struct node_membership ms;
		if (node_membership_decode(blob, blen, &ms) == 0) {
			n->members = ms;
			n->apply_members = ms;
		}
		free(blob);
	}
	srv_lessor_free(&n->lessor);
	srv_lessor_init(&n->lessor);
	node_leases_load(n);
	node_alarms_load(n);
	node_membership_changed(n);
	node_watch_reset(n);
	LOG(n, MOOR_LOG_INFO,
	    "installed snapshot: raft index %llu, store at index %llu revision %lld",
	    (unsigned long long)snap->meta.index, (unsigned long long)st.applied_index,
	    (long long)st.revision);
	return 0;
}

/* At start, when the WAL records a snapshot the store does not hold yet
 * (the member stopped between the two): restore it from the files kept for
 * it. Returns 0 when the store is at or past `index`. */
int node_snap_recover(struct srv_node *n, uint64_t index, char *err, size_t errlen)
{
	char dir[1100], name[64];
	struct kv_status st;
	DIR *d;
	struct dirent *e;
	int rc = MOOR_ENOTFOUND;

	snprintf(dir, sizeof dir, "%s/snap", n->cfg->data_dir);
	snprintf(name, sizeof name, "-%llu-", (unsigned long long)index);
	d = opendir(dir);
	while (d && (e = readdir(d)) != NULL && rc == MOOR_ENOTFOUND) {
		const char *p = strstr(e->d_name, name);
		const char *ext = strstr(e->d_name, ".ckpt");
		char path[1400];
		/* in-<from>-<index>-<seq>.ckpt or .ckpt.keep */
		if (strncmp(e->d_name, "in-", 3) != 0 || !p || !ext ||
		    (strcmp(ext, ".ckpt") != 0 && strcmp(ext, ".ckpt.keep") != 0))
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		rc = kv_snapshot_restore(n->kv, path);
		LOG(n, rc ? MOOR_LOG_ERROR : MOOR_LOG_INFO,
		    "restoring the store from %s, the snapshot the WAL records at index %llu: %s",
		    path, (unsigned long long)index, moor_strerror(rc));
	}
	if (d)
		closedir(d);
	kv_status(n->kv, &st);
	if (st.applied_index >= index)
		return 0;
	snprintf(err, errlen,
	         "the WAL records a snapshot at index %llu but the store is at index %llu and the "
	         "snapshot's files are gone: remove this member, wipe its data directory and add "
	         "it again",
	         (unsigned long long)index, (unsigned long long)st.applied_index);
	return MOOR_ECORRUPT;
}

void node_snap_clean(struct srv_node *n)
{
	char dir[1100], path[1400];
	DIR *d;
	struct dirent *e;

	snprintf(dir, sizeof dir, "%s/snap", n->cfg->data_dir);
	d = opendir(dir);
	while (d && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		if (unlink(path) != 0)
			srv_snap_rmdir(path);
	}
	if (d)
		closedir(d);
}

void node_snap_stop(struct srv_node *n)
{
	for (int i = 0; i < NODE_MAX_MEMBERS; i++)
		if (n->snap_out[i]) {
			snap_out_free(n->snap_out[i]);
			n->snap_out[i] = NULL;
		}
	in_reset(n);
}
